/**
 * The hook worker: a child process that runs JavaScript hooks in isolated-vm isolates, one isolate
 * per collection. It lives in its own process because a V8 out-of-memory inside an isolate can
 * abort the whole process (isolated-vm#527: a growing Map or a huge Array does, measured); the
 * server then only loses this worker, restarts it, and answers the affected requests with a 500.
 *
 * Protocol (IPC, JSON): see `WorkerRequest` / `WorkerMessage` in ./messages.ts.
 */
import ivm from 'isolated-vm';
import { HOOK_PARAMS, wrapHookSource, type HookVariant } from '../hook-params.js';
import type { HookSource, WorkerMessage, WorkerRequest } from './messages.js';
import { sandboxRuntime } from './sandbox-runtime.js';

interface Sandbox {
  isolate: ivm.Isolate;
  start: ivm.Reference<Function>;
  deliver: ivm.Reference<Function>;
  abort: ivm.Reference<Function>;
  /** Which file each compiled variant came from (for messages). */
  files: Map<string, string>;
}

interface LoadedCollection {
  hooks: HookSource[];
  timeoutMs: number;
  memoryMb: number;
  sandbox?: Sandbox;
  errors: Record<string, string>;
}

interface Invocation {
  runId: number;
  collection: string;
  file: string;
  deadline: number;
  timer: NodeJS.Timeout;
}

const collections = new Map<string, LoadedCollection>();
const invocations = new Map<number, Invocation>();
let namesJson = '[]';
let nextInvocation = 1;

function send(message: WorkerMessage): void {
  process.send?.(message);
}

function build(name: string, loaded: LoadedCollection): Sandbox {
  const isolate = new ivm.Isolate({ memoryLimit: loaded.memoryMb });
  const context = isolate.createContextSync();
  const hostCall = new ivm.Callback((inv: number, call: number, payload: string) => {
    send({ t: 'call', inv: invocations.get(inv)?.runId ?? -1, worker: inv, call, payload });
  }, { ignored: true });
  const hostDone = new ivm.Callback((inv: number, text: string) => complete(inv, { resultJson: text }), { ignored: true });
  const factory = isolate.compileScriptSync(`(${sandboxRuntime.toString()})`, { filename: 'deployd:runtime' }).runSync(context, { reference: true }) as ivm.Reference<Function>;
  const runtime = factory.applySync(undefined, [JSON.stringify(HOOK_PARAMS), hostCall, hostDone], { result: { reference: true }, timeout: 5000 }) as unknown as ivm.Reference<Record<string, Function>>;
  const start = runtime.getSync('start', { reference: true }) as ivm.Reference<Function>;
  const deliver = runtime.getSync('deliver', { reference: true }) as ivm.Reference<Function>;
  const abort = runtime.getSync('abort', { reference: true }) as ivm.Reference<Function>;
  const register = runtime.getSync('register', { reference: true }) as ivm.Reference<Function>;
  const files = new Map<string, string>();
  loaded.errors = {};
  for (const hook of loaded.hooks) {
    const variants: HookVariant[] = hook.event === 'beforerequest' ? ['beforerequest', 'beforerequest-nodata'] : [hook.event];
    for (const variant of variants) {
      files.set(variant, hook.file);
      try {
        const script = isolate.compileScriptSync(wrapHookSource(variant, hook.source), { filename: hook.file, lineOffset: -1 });
        const fn = script.runSync(context, { reference: true }) as ivm.Reference<Function>;
        register.applySync(undefined, [variant, fn.derefInto()], { timeout: 1000 });
      } catch (err) {
        loaded.errors[hook.event] = `${hook.file}: ${(err as Error).message}`;
      }
    }
  }
  return { isolate, start, deliver, abort, files };
}

function sandboxFor(name: string): { loaded: LoadedCollection; sandbox: Sandbox } | undefined {
  const loaded = collections.get(name);
  if (!loaded) return undefined;
  if (!loaded.sandbox || loaded.sandbox.isolate.isDisposed) loaded.sandbox = build(name, loaded);
  return { loaded, sandbox: loaded.sandbox };
}

function failure(message: string, status = 500): string {
  return JSON.stringify({ data: {}, errors: {}, hidden: [], protected: [], emits: [], logs: [], cancel: { message, status, isError: true } });
}

/** Turns an isolated-vm exception into the event's outcome. */
function describe(err: unknown, file: string, loaded: LoadedCollection): string {
  const message = (err as Error)?.message ?? String(err);
  if (/timed out/i.test(message)) return failure(`hook timed out: ${file}`);
  if (/disposed|memory limit/i.test(message)) {
    loaded.sandbox = undefined; // rebuilt on the next request
    return failure(`hook exceeded its memory limit: ${file}`);
  }
  return failure(`hook failed: ${file}: ${message}`);
}

function complete(inv: number, outcome: { resultJson: string }): void {
  const invocation = invocations.get(inv);
  if (!invocation) return;
  invocations.delete(inv);
  clearTimeout(invocation.timer);
  send({ t: 'result', id: invocation.runId, resultJson: outcome.resultJson });
}

function run(runId: number, name: string, variant: HookVariant, ctxJson: string): void {
  const found = sandboxFor(name);
  if (!found) {
    send({ t: 'result', id: runId, resultJson: failure(`no hooks loaded for ${name}`) });
    return;
  }
  const { loaded, sandbox } = found;
  const file = sandbox.files.get(variant) ?? `${name}/${variant}.js`;
  const inv = nextInvocation++;
  const timer = setTimeout(() => {
    try {
      sandbox.abort.applySync(undefined, [inv], { timeout: 100 });
    } catch {
      // the isolate may be gone; nothing to clean inside it
    }
    complete(inv, { resultJson: failure(`hook timed out: ${file}`) });
  }, loaded.timeoutMs);
  invocations.set(inv, { runId, collection: name, file, deadline: Date.now() + loaded.timeoutMs, timer });
  try {
    const settled = sandbox.start.applySync(undefined, [inv, variant, ctxJson, namesJson], { timeout: loaded.timeoutMs }) as unknown;
    if (typeof settled === 'string') complete(inv, { resultJson: settled });
  } catch (err) {
    complete(inv, { resultJson: describe(err, file, loaded) });
  }
}

function reply(inv: number, call: number, resultJson: string | undefined, errorJson: string | undefined): void {
  const invocation = invocations.get(inv);
  if (!invocation) return;
  const loaded = collections.get(invocation.collection);
  const sandbox = loaded?.sandbox;
  if (!loaded || !sandbox) return;
  const remaining = Math.max(1, invocation.deadline - Date.now());
  try {
    sandbox.deliver.applySync(undefined, [inv, call, resultJson, errorJson], { timeout: remaining });
  } catch (err) {
    complete(inv, { resultJson: describe(err, invocation.file, loaded) });
  }
}

process.on('message', (message: WorkerRequest) => {
  switch (message.t) {
    case 'load': {
      namesJson = JSON.stringify(message.collections);
      const previous = collections.get(message.collection);
      if (previous?.sandbox) previous.sandbox.isolate.dispose();
      const loaded: LoadedCollection = { hooks: message.hooks, timeoutMs: message.timeoutMs, memoryMb: message.memoryMb, errors: {} };
      collections.set(message.collection, loaded);
      if (message.hooks.length > 0) {
        try {
          loaded.sandbox = build(message.collection, loaded);
        } catch (err) {
          for (const hook of message.hooks) loaded.errors[hook.event] = `${hook.file}: ${(err as Error).message}`;
        }
      }
      send({ t: 'loaded', id: message.id, errors: loaded.errors });
      break;
    }
    case 'unload': {
      collections.get(message.collection)?.sandbox?.isolate.dispose();
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
  }
});

process.on('disconnect', () => process.exit(0));
send({ t: 'ready' });
