/**
 * One interface for every hook transport (Centrifugo's proxy pattern): the collection pipeline
 * hands an EventContext to a HookRunner and gets a HookResult back, whether the hook is JavaScript
 * in an isolate (./js) or Go in a sidecar (./go).
 */
import type { HookSource } from './js/messages.js';
import type { EventContext, HookEvent, HookResult, Json, JsonObject } from './protocol.js';

export type { HookSource };

export interface HookLimits {
  /** Wall time for one event, callbacks included. */
  timeoutMs: number;
  /** Heap of the collection's sandbox. */
  memoryMb: number;
  /**
   * The collection's own `"hooks": {"timeoutMs"}`, when its config.json sets one (Go hooks, whose
   * default deadline is longer than JavaScript's, use it instead of their default).
   */
  configuredTimeoutMs?: number;
}

export const DEFAULT_HOOK_LIMITS: HookLimits = { timeoutMs: 1000, memoryMb: 64 };

/** A `dpd.<collection>.get/post/put/del` call made from inside a hook. */
export interface InternalCall {
  collection: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  id?: string;
  query: JsonObject;
  body: JsonObject;
}

export interface InternalOutcome {
  result?: Json;
  error?: Json;
}

/** Performs internal calls; `scope` is whatever the caller passed to `run` (its request). */
export type InternalHandler = (scope: unknown, call: InternalCall) => Promise<InternalOutcome>;

/** What the admin API shows of the hook processes: JavaScript workers and Go sidecars. */
export interface RunnerStatus {
  workers: Array<{ pid: number | undefined; ready: boolean; inflight: number }>;
  sidecars: Array<{ hookSet: string; collection: string; state: 'loading' | 'ready' | 'failed'; pid: number | undefined; /** Start failures in a row (the restart backoff). */ failures: number; startedAt: string | null; errors: Record<string, string> }>;
}
/**
 * A HookResult as runners answer it: the wire protocol's fields plus what only the host knows.
 * Not part of hooks.proto (test/protocol.test.ts keeps the two in step).
 */
export type RunResult = HookResult & {
  /** The hook file that ran (`todos/post.js`), for log lines. */
  file?: string;
  /** A failure's stack in the user's file names (answered only with --dev). */
  stack?: string;
};

export interface HookRunner {
  /**
   * Compiles a set of hooks under `hookSet` (replacing a set of that name); resolves to load errors
   * by event. The registry names each version of a collection's hooks differently, so the old
   * version keeps serving requests that started with it until it is unloaded.
   */
  load(hookSet: string, hooks: HookSource[], limits: HookLimits): Promise<Partial<Record<HookEvent, string>>>;
  unload(hookSet: string): void;
  /** All collection names, for the `dpd` object hooks see. */
  setCollections(names: string[]): void;
  setInternalHandler(handler: InternalHandler): void;
  /**
   * Resolves once every one of `events` in `hookSet` can run (a Go build still in progress is
   * waited for, within a bound); rejects with a DeploydError naming the file when one cannot
   * (Errors.hookLoad, a load or compile error: 500; Errors.hookBuilding, still building past the
   * bound: 503 with Retry-After). A write asks this before
   * it stores anything, so a hook that cannot load never leaves a half-done write behind.
   * Undefined when there is nothing to wait for (no promise, no turn of the microtask queue).
   */
  ready?(hookSet: string, events: HookEvent[]): Promise<void> | undefined;
  /**
   * Runs `ctx.event` from the hook set `hookSet` (default: the collection's name). A failed run
   * resolves to a `failedResult`; a hook that cannot run at all rejects with the DeploydError
   * `ready` would have thrown (the rule in ./hook-result.ts).
   */
  run(ctx: EventContext, scope?: unknown, hookSet?: string): Promise<RunResult>;
  close(): Promise<void>;
  /** The runner's processes (the admin API's health view). */
  status?(): Partial<RunnerStatus>;
}
