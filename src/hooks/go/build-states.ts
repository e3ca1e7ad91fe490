/**
 * A Go hook set's way to ready: built (round by round, leaving out files that do not compile),
 * then started; how a request waits for a set still building (Retry-After past a bound) or is
 * refused by one that failed; and the states /health reports.
 */
import { setTimeout as wait } from 'node:timers/promises';
import { Errors } from '../../errors.js';
import type { HookSource } from '../hook-runner.js';
import type { HookEvent } from '../protocol.js';
import { buildGoHooks, GoBuildError, type GoBuildCompileError } from './build.js';
import { toFiles, userFile, type HookSet } from './hook-set.js';
import type { PluginLog } from './plugin-log.js';

/** Retry-After (seconds) of the 503 a request gets while its collection's Go hooks build. */
const RETRY_AFTER_S = 5;

/** A Go hook set's state as /health reports it. */
export interface GoHookStatus {
  collection: string;
  state: 'building' | 'ready' | 'failed';
  events: string[];
  /** While building: seconds since the build began. */
  seconds?: number;
  /** When failed (or some events failed): event → why. */
  errors?: Partial<Record<HookEvent, string>>;
  /** When failed: whether the next request tries again (else: the next change of a file). */
  retry?: 'next request' | 'next change';
}

export interface BuildDeps {
  buildDir: string;
  sdkDir: string;
  go?: string;
  /** The build's own output, tagged with the set's files. */
  log: PluginLog;
  /** Starts the set's sidecar (set.proc); rejects when it cannot start. */
  start(set: HookSet): Promise<void>;
}

/** Builds (unless prebuilt) and starts the set's program; resolves to the events' errors. */
export async function buildAndStart(set: HookSet, hooks: HookSource[], deps: BuildDeps): Promise<Partial<Record<HookEvent, string>>> {
  const errors: Partial<Record<HookEvent, string>> = {};
  set.buildStartedAt = Date.now();
  if (!set.binary) {
    let files = toFiles(hooks);
    try {
      // Each round drops the files that have errors; stops when nothing is left to blame.
      for (let round = 0; round < hooks.length && files.length > 0; round++) {
        const res = await buildGoHooks({
          collection: set.collection,
          files,
          buildDir: deps.buildDir,
          sdkDir: deps.sdkDir,
          log: deps.log,
          go: deps.go,
          signal: set.abort.signal,
        });
        if ('binary' in res) {
          set.binary = res.binary;
          break;
        }
        const blamed = new Set<string>();
        for (const [file, list] of groupByFile(res.errors)) {
          const f = files.find((x) => x.file === file);
          if (!f) continue;
          blamed.add(file);
          errors[f.event as HookEvent] = list.map(formatCompileError).join('\n');
        }
        if (blamed.size === 0) {
          const text = res.errors.map(formatCompileError).join('\n');
          for (const f of files) errors[f.event as HookEvent] = text;
          files = [];
          break;
        }
        files = files.filter((f) => !blamed.has(f.file));
      }
    } catch (err) {
      if (set.closed) return errors;
      // Not the user's code: a missing toolchain, a failed download, an interrupted build.
      set.retryable = true;
      const message = err instanceof GoBuildError ? err.message : `cannot build Go hooks: ${(err as Error).message}`;
      for (const f of files) errors[f.event as HookEvent] = `${f.file}: ${message}`;
      return errors;
    }
    if (!set.binary || files.length === 0) {
      for (const f of files) errors[f.event as HookEvent] ??= `${f.file}: not built`;
      return errors;
    }
    for (const event of [...set.files.keys()]) if (!files.some((f) => f.event === event)) set.files.delete(event);
  }
  if (set.closed) return errors;
  try {
    await deps.start(set);
  } catch (err) {
    set.retryable = true;
    for (const [event, file] of set.files) errors[event] = `${file}: the Go hook program did not start: ${(err as Error).message}`;
  }
  return errors;
}

/**
 * Resolves once `events` of `set` can run: a set still building is waited for up to `waitMs`,
 * then refused with Errors.hookBuilding (503, Retry-After); an event that did not load or compile
 * is Errors.hookLoad (500, naming file:line), for every event: Go hooks fail closed.
 */
export async function awaitRunnable(set: HookSet, events: HookEvent[], waitMs: number, beforeWrite: boolean): Promise<void> {
  if (set.state === 'loading') {
    const waited = await Promise.race([set.loaded.then(() => true), wait(waitMs, undefined, { ref: false }).then(() => false)]);
    if (!waited) {
      const files = events.map((event) => userFile(set, event)).join(', ');
      throw Errors.hookBuilding(`go hook ${files} is still being built; ${beforeWrite ? 'nothing was stored; ' : ''}try again shortly`, RETRY_AFTER_S);
    }
  }
  for (const event of events) {
    const loadError = set.errors[event];
    if (loadError) throw Errors.hookLoad(loadError);
  }
}

/** Each collection's state for /health: its newest set (the running one while a hot edit builds). */
export function buildStatus(sets: Iterable<HookSet>): GoHookStatus[] {
  const byCollection = new Map<string, HookSet>();
  for (const set of sets) {
    const seen = byCollection.get(set.collection);
    if (!seen || (seen.state !== 'ready' && set.state === 'ready') || (seen.state === set.state && set.buildStartedAt > seen.buildStartedAt)) byCollection.set(set.collection, set);
  }
  return [...byCollection.values()].sort((a, b) => (a.collection < b.collection ? -1 : 1)).map((set) => {
    const out: GoHookStatus = {
      collection: set.collection,
      state: set.state === 'loading' ? 'building' : set.state,
      events: [...set.files.keys(), ...(Object.keys(set.errors) as HookEvent[]).filter((e) => !set.files.has(e))].sort(),
    };
    if (set.state === 'loading') out.seconds = Math.round((Date.now() - set.buildStartedAt) / 1000);
    if (set.state !== 'loading' && Object.keys(set.errors).length > 0) out.errors = { ...set.errors };
    if (set.state === 'failed') out.retry = set.retryable ? 'next request' : 'next change';
    return out;
  });
}

/** `todos/post.go:4:18: undefined: x` (no position when the build could not place it). */
export function formatCompileError(e: GoBuildCompileError): string {
  const where = e.line > 0 ? `${e.file}:${e.line}${e.column > 0 ? `:${e.column}` : ''}` : e.file;
  return `${where}: ${e.message}`;
}

function groupByFile(errors: GoBuildCompileError[]): Map<string, GoBuildCompileError[]> {
  const out = new Map<string, GoBuildCompileError[]>();
  for (const e of errors) {
    const list = out.get(e.file) ?? [];
    list.push(e);
    out.set(e.file, list);
  }
  return out;
}
