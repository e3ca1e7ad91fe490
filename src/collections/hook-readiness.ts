/**
 * Commit semantics, in one place: before a write stores anything, every hook it will run
 * (AfterCommit included) must be loaded and ready. A hook that cannot load (a syntax or compile
 * error, a Go build that failed or is still running past its bounded wait) refuses the write with
 * a 5xx naming the file, and nothing is stored. Once a write is committed it is never reported as
 * failed (see Collection's AfterCommit handling).
 */
import { Errors } from '../errors.js';
import type { HookRunner } from '../hooks/hook-runner.js';
import type { HookEvent } from '../hooks/protocol.js';

/** The hook events each kind of write runs, in order. */
export const WRITE_EVENTS: Record<'POST' | 'PUT' | 'DELETE', HookEvent[]> = {
  POST: ['beforerequest', 'validate', 'post', 'aftercommit'],
  PUT: ['beforerequest', 'validate', 'put', 'aftercommit'],
  DELETE: ['beforerequest', 'delete', 'aftercommit'],
};

export interface ReadinessInput {
  /** The runner's name for the collection's current hook version. */
  key?: string;
  events: Set<HookEvent>;
  errors: Partial<Record<HookEvent, string>>;
}

/** Rejects with the first hook of a `method` write that cannot run; resolves when all can. */
export async function assertWriteHooksReady(hooks: ReadinessInput, runner: HookRunner | undefined, method: keyof typeof WRITE_EVENTS, skipEvents: boolean): Promise<void> {
  if (skipEvents || !runner) return;
  const events = WRITE_EVENTS[method].filter((event) => hooks.events.has(event));
  if (events.length === 0) return;
  for (const event of events) {
    const loadError = hooks.errors[event];
    if (loadError) throw Errors.hookLoad(loadError);
  }
  const waiting = hooks.key === undefined ? undefined : runner.ready?.(hooks.key, events);
  if (waiting) await waiting;
}
