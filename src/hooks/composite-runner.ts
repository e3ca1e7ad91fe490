/**
 * Routes each event to the runner for its file type: a collection may have JavaScript hooks for
 * some events (`post.js`) and Go hooks for others (`validate.go`). load() splits a hook set by
 * file extension and loads each part under the same hook-set name in its runner; run() sends an
 * event to the runner that loaded it. The Go runner is only touched when a set has `.go` files.
 */
import type { HookLimits, HookRunner, HookSource, InternalHandler, RunnerStatus, RunResult } from './hook-runner.js';
import type { EventContext, HookEvent } from './protocol.js';

export function isGoHook(hook: HookSource): boolean {
  return hook.file.endsWith('.go') || hook.plugin !== undefined;
}

export class CompositeRunner implements HookRunner {
  /** hook set → its Go events (absent: no Go part). */
  private readonly goEvents = new Map<string, Set<HookEvent>>();
  /** hook sets with a JavaScript part. */
  private readonly jsSets = new Set<string>();

  constructor(
    private readonly js: HookRunner,
    private readonly go: HookRunner | undefined,
  ) {}

  async load(hookSet: string, hooks: HookSource[], limits: HookLimits): Promise<Partial<Record<HookEvent, string>>> {
    this.unload(hookSet);
    const goHooks = hooks.filter(isGoHook);
    const jsHooks = hooks.filter((h) => !isGoHook(h));
    const errors: Partial<Record<HookEvent, string>> = {};
    const parts: Promise<void>[] = [];
    if (jsHooks.length > 0 || goHooks.length === 0) {
      this.jsSets.add(hookSet);
      parts.push(this.js.load(hookSet, jsHooks, limits).then((e) => void Object.assign(errors, e)));
    }
    if (goHooks.length > 0) {
      this.goEvents.set(hookSet, new Set(goHooks.map((h) => h.event)));
      if (this.go) parts.push(this.go.load(hookSet, goHooks, limits).then((e) => void Object.assign(errors, e)));
      else for (const h of goHooks) errors[h.event] = `${h.file}: Go hooks are not enabled in this server`;
    }
    await Promise.all(parts);
    return errors;
  }

  unload(hookSet: string): void {
    if (this.jsSets.delete(hookSet)) this.js.unload(hookSet);
    if (this.goEvents.delete(hookSet)) this.go?.unload(hookSet);
  }

  setCollections(names: string[]): void {
    this.js.setCollections(names);
    this.go?.setCollections(names);
  }

  setInternalHandler(handler: InternalHandler): void {
    this.js.setInternalHandler(handler);
    this.go?.setInternalHandler(handler);
  }

  /** Which runner runs this event (for /metrics). */
  languageOf(ctx: EventContext, hookSet: string = ctx.collection): 'js' | 'go' {
    return this.go && this.goEvents.get(hookSet)?.has(ctx.event) ? 'go' : 'js';
  }

  ready(hookSet: string, events: HookEvent[]): Promise<void> | undefined {
    const goEvents = this.goEvents.get(hookSet);
    // JavaScript hooks are ready once loaded: only Go builds are waited for.
    if (!goEvents && !this.js.ready) return undefined;
    const go = events.filter((event) => goEvents?.has(event));
    const js = events.filter((event) => !goEvents?.has(event));
    const waiting = [go.length > 0 ? this.go?.ready?.(hookSet, go) : undefined, js.length > 0 ? this.js.ready?.(hookSet, js) : undefined].filter((p) => p !== undefined);
    return waiting.length === 0 ? undefined : Promise.all(waiting).then(() => undefined);
  }

  run(ctx: EventContext, scope?: unknown, hookSet: string = ctx.collection): Promise<RunResult> {
    if (this.go && this.goEvents.get(hookSet)?.has(ctx.event)) return this.go.run(ctx, scope, hookSet);
    return this.js.run(ctx, scope, hookSet);
  }

  status(): RunnerStatus {
    return { workers: this.js.status?.().workers ?? [], sidecars: this.go?.status?.().sidecars ?? [] };
  }

  async close(): Promise<void> {
    await Promise.all([this.js.close(), this.go?.close()]);
  }
}
