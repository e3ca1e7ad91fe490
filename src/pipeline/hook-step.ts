/**
 * Running one of a collection's hooks inside a request: whether it runs (loaded, not skipped by
 * root's `$skipEvents`), failing closed when it did not load, the context it sees, and taking its
 * outcome (its emits queued with the request, a cancel made the request's error).
 */
import { Errors } from '../errors.js';
import type { HookRunner } from '../hooks/hook-runner.js';
import type { EventContext, HookEvent, HookResult, JsonObject } from '../hooks/protocol.js';
import { accepted } from './hook-outcome.js';
import type { Publication } from './publication.js';
import type { RequestScope } from './request-scope.js';

export interface CollectionHooks {
  /** The runner's name for this version of the collection's hooks. */
  key?: string;
  events: Set<HookEvent>;
  /** Load errors by event: requests needing that hook fail closed with this message. */
  errors: Partial<Record<HookEvent, string>>;
  /** Fields the Get hook hides by a literal name (read from its source): never queryable by non-root callers. */
  hides?: string[];
}

export interface HookInput {
  data: Record<string, unknown>;
  previous?: Record<string, unknown> | null;
  query?: Record<string, unknown>;
  method: string;
  requestEvent: string;
  success?: boolean;
}

/** The collection a hook belongs to; its hooks change when it is reloaded. */
export interface HookOwner {
  readonly name: string;
  readonly hooks: CollectionHooks;
}

export class HookStep {
  /** `secrets`: body fields no hook may see (a password). */
  constructor(
    private readonly owner: HookOwner,
    private readonly runner: HookRunner | undefined,
    private readonly publication: Publication,
    private readonly secrets: readonly string[],
  ) {}

  runs(scope: RequestScope, event: HookEvent): boolean {
    return !scope.skipEvents && this.owner.hooks.events.has(event) && this.runner !== undefined;
  }

  /** The hook's result, or undefined when the collection has no such hook (or the request skips hooks). */
  async run(scope: RequestScope, event: HookEvent, input: HookInput): Promise<HookResult | undefined> {
    if (!this.runs(scope, event)) return undefined;
    const loadError = this.owner.hooks.errors[event];
    if (loadError) throw Errors.hookLoad(loadError);
    const ctx: EventContext = {
      collection: this.owner.name,
      event,
      method: input.method,
      requestEvent: input.requestEvent,
      data: input.data as JsonObject,
      previous: (input.previous ?? null) as JsonObject | null,
      query: (input.query ?? {}) as JsonObject,
      caller: scope.caller,
      internal: scope.internal,
      requestId: scope.requestId,
      success: input.success ?? false,
      url: scope.request?.url ?? '/',
      body: this.body(scope.request?.body),
    };
    return this.runner!.run(ctx, scope, this.owner.hooks.key); // logs: see hooks/reporting-runner.ts
  }

  /** A hook outcome that must not fail: its emits are queued, a cancel or field errors become the request's error. */
  accept(scope: RequestScope, result: HookResult): HookResult {
    this.publication.queueHookResult(scope, result);
    return accepted(result);
  }

  /** The request body for hooks: an object, without secret fields (a password never reaches a hook). */
  private body(body: unknown): JsonObject {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return {};
    const input = body as Record<string, unknown>;
    if (!this.secrets.some((key) => key in input)) return input as JsonObject;
    const out = { ...input };
    for (const key of this.secrets) delete out[key];
    return out as JsonObject;
  }
}
