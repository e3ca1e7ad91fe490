/**
 * How a hook runner reports a failure: one rule for JavaScript and Go.
 *
 * - A run that failed (the hook threw, panicked or returned an error, its process crashed, it ran
 *   past its deadline, its result could not be read) is a result, never a rejection:
 *   `failedResult(message, status)`, a cancel with `isError`. The request answers it as
 *   the hook failure it is, with that status (500; 503 crashed and restarting; 504 timed out).
 * - A hook that cannot run at all (its file did not load or compile, its Go program is still being
 *   built) is a thrown DeploydError, `Errors.hookLoad` or `Errors.hookBuilding`: the same error
 *   `HookRunner.ready()` throws before a write, so nothing ran and nothing was stored.
 *
 * (The isolate's own runtime, js/sandbox-runtime.ts, builds the same shape inside the sandbox,
 * where it cannot import this module.)
 */
import type { Cancel, HookResult } from './protocol.js';

/** A failed run: no data, no emits, a cancel marked as an error. */
export function failedResult(message: string, status = 500): HookResult {
  return { data: {}, errors: {}, hidden: [], protected: [], emits: [], logs: [], cancel: failure(message, status) };
}

/** The cancel of a failed run (for a result that keeps its log lines: reporting-runner.ts). */
export function failure(message: string, status = 500): Cancel {
  return { message, status, isError: true };
}
