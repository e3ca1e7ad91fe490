/**
 * One version of a collection's Go hooks (a hook set): its files, its build state, its sidecar.
 * The runner's parts (go-runner.ts, build-states.ts, sidecars.ts, sidecar-call.ts) share it.
 */
import type { HookSource } from '../hook-runner.js';
import type { HookEvent } from '../protocol.js';
import type { GoHookFile } from './build.js';
import type { GoPluginProcess } from './plugin-host.js';

export interface HookSet {
  name: string;
  collection: string;
  /** Built, or being built: set when the program is known. */
  binary?: string;
  /** The program a build of these files produces (`<buildDir>/<hash>/plugin`), known before it is built. */
  plannedBinary?: string;
  /** event → what messages call the hook (`todos/post.go`, or the goPlugin path). */
  files: Map<HookEvent, string>;
  timeoutMs: number;
  /** 'loading' until the program is built and its first sidecar started (or that failed). */
  state: 'loading' | 'ready' | 'failed';
  /** Settles when state leaves 'loading'. */
  loaded: Promise<void>;
  /** Events that cannot run, with why (compile errors, a failed start). */
  errors: Partial<Record<HookEvent, string>>;
  proc?: GoPluginProcess;
  /** Set while a (re)start is pending. */
  starting?: Promise<GoPluginProcess | undefined>;
  failures: number;
  startedAt: number;
  closed: boolean;
  /** Kills a build in progress when the set is unloaded or the runner closes. */
  abort: AbortController;
  /** What load() was given (a retry builds it again). */
  hooks: HookSource[];
  /**
   * The last build or start failed for a reason other than the user's code (the toolchain, the
   * network, an interrupted build, a start that failed): the next request tries again.
   */
  retryable: boolean;
  /** When the current build began, for Retry-After and /health. */
  buildStartedAt: number;
}

/** What messages call the file of `event` (`todos/post.go`, or the goPlugin path). */
export function userFile(set: HookSet, event: HookEvent): string {
  return set.files.get(event) ?? `${set.collection}/${event}.go`;
}

/** `todos/post.go` → `todos` (nested collections keep their path). */
export function collectionOf(file: string, hookSet: string): string {
  const slash = file.lastIndexOf('/');
  if (slash > 0) return file.slice(0, slash);
  const hash = hookSet.lastIndexOf('#');
  return hash > 0 ? hookSet.slice(0, hash) : hookSet;
}

/** The `.go` files of a set (not its prebuilt goPlugin program). */
export function toFiles(hooks: HookSource[]): GoHookFile[] {
  return hooks.filter((h) => h.plugin === undefined).map((h) => ({ event: h.event, file: h.file, source: h.source }));
}

/** A Go stack with the generated copies' paths (`/…/src/hook_post/post.go:12`) as the user's files. */
export function inUserFiles(text: string, set: HookSet): string {
  return text.replace(/(?:[^\s:]*\/)?hook_([a-z]+)\/[a-z]+\.go:(\d+)/g, (_all, event: string, line: string) => `${userFile(set, event as HookEvent)}:${line}`);
}

/**
 * A failure's message with its place in the user's file: a panic's `hook_post/post.go:12` (the
 * generated copy, line for line) becomes `todos/post.go:12`; a returned error gets the file in front.
 */
export function placeFailure(message: string, file: string, set: HookSet): string {
  const out = inUserFiles(message, set);
  return out !== message || out.startsWith(file) ? out : `${file}: ${out}`;
}
