/**
 * The hook worker: a child process that runs JavaScript hooks in isolated-vm isolates, one isolate
 * per collection. It lives in its own process because a V8 out-of-memory inside an isolate can
 * abort the whole process (isolated-vm#527: a growing Map or a huge Array does, measured); the
 * server then only loses this worker, restarts it, and answers the affected requests with a 500.
 *
 * Every call into an isolate is a synchronous `applySync` on this process's main thread, with
 * isolated-vm's time limit: a trivial hook costs one message in and one out, with no hop to an
 * isolate thread and back (half the wake-ups of an asynchronous `apply`, measured in
 * bench/js-hooks.js). A hook spinning to its limit therefore holds up this whole worker; the server
 * routes around a worker that has been busy for a while (./js-runner.ts), onto another worker or
 * the warm spare. A hook waiting on a `dpd` call holds nothing: the worker says it is `parked`.
 * A call whose termination does not take wedges this worker, and the server kills it past the
 * limit plus a grace period.
 *
 * Each invocation belongs to the sandbox it started in. A reload builds a new sandbox for the
 * collection and retires the old one, which is disposed once its last invocation has finished,
 * so an edit never breaks a request in flight: it finishes with the code it started with.
 *
 * Protocol (IPC, JSON): see `WorkerRequest` / `WorkerMessage` in ./messages.ts.
 */
import ivm from 'isolated-vm';
import { failedResult } from '../hook-result.js';
import { HOOK_PARAMS, wrapHookSource, type HookVariant } from '../hook-params.js';
import type { HookSource, IsolateMemory, WorkerMessage, WorkerRequest } from './messages.js';
import { sandboxRuntime } from './sandbox-runtime.js';

/**
 * Runs in a new context before the runtime locks it down, and removes:
 *   - the legacy RegExp statics (`RegExp.$1`, `RegExp.input`, `lastMatch`, …): they hold the last
 *     match made in the context, whichever invocation made it, so a request could read data of
 *     an earlier one;
 *   - `Atomics.waitAsync`: with a timeout, V8 posts a delayed task, which isolated-vm 5.0.4
 *     answers by aborting the whole process ("terminate called without an active exception");
 *   - `WebAssembly`, whose memories are not counted against the isolate's memory limit (it is not
 *     even exposed: `--noexpose-wasm` in ./js-runner.ts; this is in case that flag is missing).
 */
const PREPARE_CONTEXT = `(function () {
  for (var names = Object.getOwnPropertyNames(RegExp), i = 0; i < names.length; i++) {
    var d = Object.getOwnPropertyDescriptor(RegExp, names[i]);
    if (d && (d.get || d.set)) delete RegExp[names[i]];
  }
  if (typeof Atomics !== 'undefined') delete Atomics.waitAsync;
  if (typeof WebAssembly !== 'undefined') delete globalThis.WebAssembly;
})()`;

/** Freezes a compiled hook function, so nothing a request stores on it survives to the next. */
const FREEZE_HOOK = `(function (fn) {
  if (fn.prototype) Object.freeze(fn.prototype);
  return Object.freeze(fn);
})`;

interface Sandbox {
  collection: string;
  isolate: ivm.Isolate;
  start: ivm.Reference<Function>;
  deliver: ivm.Reference<Function>;
  abort: ivm.Reference<Function>;
  /** Which file each compiled variant came from (for messages). */
  files: Map<string, string>;
  /** Invocations started here and not yet answered. */
  invocations: Set<number>;
  /** Calls into the isolate not yet returned. */
  calls: number;
  timeoutMs: number;
  /** Replaced by a reload (or unloaded): disposed once idle. */
  retired: boolean;
  /** Disposed (memory limit, or retired and drained). */
  dead: boolean;
}

interface LoadedCollection {
  name: string;
  hooks: HookSource[];
  timeoutMs: number;
  memoryMb: number;
  sandbox?: Sandbox;
  errors: Record<string, string>;
}

interface Invocation {
  runId: number;
  sandbox: Sandbox;
  file: string;
  /** Its time limit, counted from when its hook code started. */
  deadline: number;
  /** Set once it parks (waits on a `dpd` call or a callback): answers it at the deadline. */
  timer?: NodeJS.Timeout;
}

const collections = new Map<string, LoadedCollection>();
const invocations = new Map<number, Invocation>();
let namesJson = '[]';
let nextInvocation = 1;

function send(message: WorkerMessage): void {
  // With a callback, a send to a server that has just gone away is dropped instead of thrown.
  if (process.connected) process.send?.(message, undefined, undefined, () => {});
}

function build(loaded: LoadedCollection): Sandbox {
  const isolate = new ivm.Isolate({ memoryLimit: loaded.memoryMb });
  try {
    const context = isolate.createContextSync();
    isolate.compileScriptSync(PREPARE_CONTEXT, { filename: 'deployd:prepare' }).runSync(context, { timeout: 1000 });
    const hostCall = new ivm.Callback((inv: number, call: number, payload: string) => {
      send({ t: 'call', inv: invocations.get(inv)?.runId ?? -1, worker: inv, call, payload });
    }, { ignored: true });
    const hostDone = new ivm.Callback((inv: number, text: string) => complete(inv, text), { ignored: true });
    const freeze = isolate.compileScriptSync(FREEZE_HOOK, { filename: 'deployd:freeze' }).runSync(context, { reference: true }) as ivm.Reference<Function>;
    const factory = isolate.compileScriptSync(`(${sandboxRuntime.toString()})`, { filename: 'deployd:runtime' }).runSync(context, { reference: true }) as ivm.Reference<Function>;
    const runtime = factory.applySync(undefined, [JSON.stringify(HOOK_PARAMS), hostCall, hostDone], { result: { reference: true }, timeout: 5000 }) as unknown as ivm.Reference<Record<string, Function>>;
    const start = runtime.getSync('start', { reference: true }) as ivm.Reference<Function>;
    const deliver = runtime.getSync('deliver', { reference: true }) as ivm.Reference<Function>;
    const abort = runtime.getSync('abort', { reference: true }) as ivm.Reference<Function>;
    const register = runtime.getSync('register', { reference: true }) as ivm.Reference<Function>;
    const files = new Map<string, string>();
    const errors: Record<string, string> = {};
    for (const hook of loaded.hooks) {
      const variants: HookVariant[] = hook.event === 'beforerequest' ? ['beforerequest', 'beforerequest-nodata'] : [hook.event];
      for (const variant of variants) {
        files.set(variant, hook.file);
        try {
          const script = isolate.compileScriptSync(wrapHookSource(variant, hook.source), { filename: hook.file, lineOffset: -1 });
          const fn = script.runSync(context, { reference: true, timeout: 1000 }) as ivm.Reference<Function>;
          const frozen = freeze.applySync(undefined, [fn.derefInto()], { result: { reference: true }, timeout: 1000 }) as unknown as ivm.Reference<Function>;
          register.applySync(undefined, [variant, frozen.derefInto(), hook.file], { timeout: 1000 });
        } catch (err) {
          errors[hook.event] ??= `${hook.file}: ${(err as Error).message}`;
        }
      }
    }
    loaded.errors = errors;
    return { collection: loaded.name, isolate, start, deliver, abort, files, invocations: new Set(), calls: 0, timeoutMs: loaded.timeoutMs, retired: false, dead: false };
  } catch (err) {
    if (!isolate.isDisposed) isolate.dispose();
    throw err;
  }
}

/** The collection's current sandbox, rebuilt if the last one died (memory limit). */
function sandboxFor(loaded: LoadedCollection): Sandbox {
  if (!loaded.sandbox || loaded.sandbox.dead) loaded.sandbox = build(loaded);
  return loaded.sandbox;
}

function failure(message: string, status = 500): string {
  return JSON.stringify(failedResult(message, status));
}

/** Disposes a sandbox nobody needs any more: retired by a reload and without work in flight. */
function release(sandbox: Sandbox): void {
  if (sandbox.retired && !sandbox.dead && sandbox.invocations.size === 0 && sandbox.calls === 0) kill(sandbox);
}

function kill(sandbox: Sandbox): void {
  sandbox.dead = true;
  if (!sandbox.isolate.isDisposed) {
    try {
      sandbox.isolate.dispose();
    } catch {
      // already going away
    }
  }
}

/**
 * The isolate is gone (memory limit): answer everything that was running in it and build the
 * collection a fresh one, off the request path.
 */
function lost(sandbox: Sandbox, culprit: number | undefined): void {
  if (sandbox.dead) return;
  kill(sandbox);
  // Every invocation here has begun (its code starts inside the call that creates it): none is run again.
  for (const inv of [...sandbox.invocations]) {
    const invocation = invocations.get(inv);
    const file = invocation?.file ?? `${sandbox.collection}/?.js`;
    const message = inv === culprit
      ? `hook exceeded its memory limit: ${file}`
      : `hook aborted: ${file}: its sandbox was reset after a hook of ${sandbox.collection} exceeded the memory limit`;
    complete(inv, failure(message));
  }
  const loaded = collections.get(sandbox.collection);
  if (loaded && loaded.sandbox === sandbox) {
    loaded.sandbox = undefined;
    setImmediate(() => {
      if (collections.get(loaded.name) !== loaded || loaded.sandbox) return;
      try {
        loaded.sandbox = build(loaded);
      } catch {
        // retried by the next request, which then reports the error
      }
    });
  }
}

function complete(inv: number, resultJson: string): void {
  const invocation = invocations.get(inv);
  if (!invocation) return;
  invocations.delete(inv);
  clearTimeout(invocation.timer);
  invocation.sandbox.invocations.delete(inv);
  send({ t: 'result', id: invocation.runId, resultJson });
  release(invocation.sandbox);
}

/**
 * Calls into the isolate for invocation `inv`, on this thread, with at most `timeoutMs`. When the
 * call returns without an outcome (the hook waits on a `dpd` call or a callback), the server is told
 * this worker is free again.
 */
function enter(inv: number, sandbox: Sandbox, fn: ivm.Reference<Function>, args: unknown[], timeoutMs: number): void {
  if (sandbox.dead) {
    lostAlready(inv);
    return;
  }
  sandbox.calls++;
  try {
    const settled = fn.applySync(undefined, args, { timeout: Math.max(1, Math.ceil(timeoutMs)) }) as unknown;
    if (typeof settled === 'string') complete(inv, settled);
  } catch (err) {
    failedCall(inv, sandbox, err);
  } finally {
    sandbox.calls--;
    const waiting = invocations.get(inv);
    if (waiting) {
      // Waiting on a `dpd` call or a callback: its time limit is now this timer's (a call that ends
      // inside applySync, the usual case, needs none).
      waiting.timer ??= setTimeout(() => timedOut(inv), Math.max(0, waiting.deadline - Date.now()));
      send({ t: 'parked', id: waiting.runId });
    }
    release(sandbox);
  }
}

/** A call into the isolate threw: the memory limit, the time limit, or a failure of the runtime itself. */
function failedCall(inv: number, sandbox: Sandbox, err: unknown): void {
  const message = (err as Error)?.message ?? String(err);
  const file = invocations.get(inv)?.file ?? `${sandbox.collection}/?.js`;
  if (sandbox.isolate.isDisposed || /disposed/i.test(message)) {
    if (!sandbox.dead) lost(sandbox, /memory limit/i.test(message) ? inv : undefined);
    else lostAlready(inv);
  } else if (/timed out/i.test(message)) timedOut(inv);
  else complete(inv, failure(`hook failed: ${file}: ${message}`));
}

/** An invocation whose sandbox died before (or while) it could be called. */
function lostAlready(inv: number): void {
  const invocation = invocations.get(inv);
  if (invocation) complete(inv, failure(`hook aborted: ${invocation.file}: its sandbox was reset`));
}

/** The invocation is out of time: answer it and have the runtime forget it. */
function timedOut(inv: number): void {
  const invocation = invocations.get(inv);
  if (!invocation) return;
  const { sandbox, file } = invocation;
  complete(inv, failure(`hook timed out: ${file}`));
  if (!sandbox.dead) {
    try {
      sandbox.abort.applySync(undefined, [inv], { timeout: 100 });
    } catch {
      // the isolate is going away: nothing left to forget
    }
  }
}

function run(runId: number, name: string, variant: HookVariant, ctxJson: string): void {
  const loaded = collections.get(name);
  if (!loaded || loaded.hooks.length === 0) {
    send({ t: 'result', id: runId, resultJson: failure(`no hooks loaded for ${name}`) });
    return;
  }
  let sandbox: Sandbox;
  try {
    sandbox = sandboxFor(loaded);
  } catch (err) {
    send({ t: 'result', id: runId, resultJson: failure(`hooks of ${name} failed to load: ${(err as Error).message}`) });
    return;
  }
  const file = sandbox.files.get(variant) ?? `${name}/${variant}.js`;
  const inv = nextInvocation++;
  // Its code begins now (no message says so: the server counts the run it sent first and has no
  // answer for as begun), and its time limit with it.
  invocations.set(inv, { runId, sandbox, file, deadline: Date.now() + sandbox.timeoutMs });
  sandbox.invocations.add(inv);
  enter(inv, sandbox, sandbox.start, [inv, variant, ctxJson, namesJson], loaded.timeoutMs);
}

function reply(inv: number, call: number, resultJson: string | undefined, errorJson: string | undefined): void {
  const invocation = invocations.get(inv);
  if (!invocation) return; // answered already (time limit, crash of its sandbox)
  const remaining = invocation.deadline - Date.now();
  if (remaining <= 0) {
    timedOut(inv);
    return;
  }
  // The sandbox the invocation started in, even if a reload has replaced it since.
  enter(inv, invocation.sandbox, invocation.sandbox.deliver, [inv, call, resultJson, errorJson], remaining);
}

function retire(loaded: LoadedCollection | undefined): void {
  const sandbox = loaded?.sandbox;
  if (!sandbox) return;
  sandbox.retired = true;
  release(sandbox);
}

/** The heap of each collection's current isolate (one per hook set, shared by all its events). */
function isolateMemory(): IsolateMemory[] {
  const out: IsolateMemory[] = [];
  for (const loaded of collections.values()) {
    const sandbox = loaded.sandbox;
    if (!sandbox || sandbox.dead) continue;
    try {
      const heap = sandbox.isolate.getHeapStatisticsSync();
      out.push({ hookSet: loaded.name, usedHeapBytes: heap.used_heap_size, totalHeapBytes: heap.total_heap_size, externalBytes: heap.externally_allocated_size });
    } catch {
      // disposed between the check and the read
    }
  }
  return out;
}

process.on('message', handle);

function handle(message: WorkerRequest): void {
  switch (message.t) {
    case 'batch':
      for (const one of message.messages) handle(one);
      break;
    case 'load': {
      namesJson = JSON.stringify(message.collections);
      const previous = collections.get(message.collection);
      const loaded: LoadedCollection = { name: message.collection, hooks: message.hooks, timeoutMs: message.timeoutMs, memoryMb: message.memoryMb, errors: {} };
      if (message.hooks.length > 0) {
        try {
          loaded.sandbox = build(loaded);
        } catch (err) {
          for (const hook of message.hooks) loaded.errors[hook.event] = `${hook.file}: ${(err as Error).message}`;
        }
      }
      collections.set(message.collection, loaded);
      retire(previous);
      send({ t: 'loaded', id: message.id, errors: loaded.errors });
      break;
    }
    case 'unload': {
      retire(collections.get(message.collection));
      collections.delete(message.collection);
      break;
    }
    case 'names':
      namesJson = JSON.stringify(message.collections);
      break;
    case 'run':
      run(message.id, message.collection, message.variant, message.ctxJson);
      break;
    case 'reply':
      reply(message.worker, message.call, message.resultJson, message.errorJson);
      break;
    case 'memory':
      send({ t: 'memory', id: message.id, rssBytes: process.memoryUsage.rss(), isolates: isolateMemory() });
      break;
  }
}

process.on('disconnect', () => process.exit(0));
send({ t: 'ready' });
