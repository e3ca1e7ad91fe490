/**
 * Runs JavaScript hooks in a small pool of worker processes (./worker.ts), each holding one
 * isolated-vm isolate per collection. Isolates and contexts are built when hooks load, never on the
 * request path. A worker that dies (a V8 out-of-memory can abort the process) fails only the
 * invocations it was running, and is restarted with every collection's hooks reloaded.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import { variantFor } from '../hook-params.js';
import type { HookLimits, HookRunner, HookSource, InternalCall, InternalHandler } from '../hook-runner.js';
import type { EventContext, HookEvent, HookResult } from '../protocol.js';
import type { WorkerMessage, WorkerRequest } from './messages.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');

interface PendingRun {
  worker: Worker;
  scope: unknown;
  file: string;
  resolve: (result: HookResult) => void;
}

interface LoadedHooks {
  hooks: HookSource[];
  limits: HookLimits;
}

class Worker {
  readonly proc: ChildProcess;
  inflight = 0;
  readonly ready: Promise<void>;

  constructor(onMessage: (worker: Worker, message: WorkerMessage) => void, onExit: (worker: Worker, code: number | null, signal: string | null) => void) {
    this.proc = fork(WORKER, [], {
      execArgv: ['--no-node-snapshot'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    this.ready = new Promise((resolve) => {
      const first = (message: WorkerMessage) => {
        if (message.t === 'ready') {
          this.proc.off('message', first);
          resolve();
        }
      };
      this.proc.on('message', first);
    });
    this.proc.on('message', (message: WorkerMessage) => onMessage(this, message));
    this.proc.on('exit', (code, signal) => onExit(this, code, signal));
  }

  send(request: WorkerRequest): void {
    if (this.proc.connected) this.proc.send(request);
  }
}

export class JsHookRunner implements HookRunner {
  private workers: Worker[] = [];
  private readonly runs = new Map<number, PendingRun>();
  private readonly loads = new Map<number, (errors: Record<string, string>) => void>();
  private readonly loaded = new Map<string, LoadedHooks>();
  private names: string[] = [];
  private internal?: InternalHandler;
  private nextId = 1;
  private closed = false;

  constructor(private readonly size: number, private readonly log: FastifyBaseLogger) {}

  private starting?: Promise<void>;

  /** Workers start with the first collection that has hooks; an app without hooks runs none. */
  start(): Promise<void> {
    this.starting ??= (async () => {
      for (let i = 0; i < this.size; i++) this.workers.push(this.spawn());
      await Promise.all(this.workers.map((w) => w.ready));
    })();
    return this.starting;
  }

  private spawn(): Worker {
    return new Worker((worker, message) => this.onMessage(worker, message), (worker, code, signal) => this.onExit(worker, code, signal));
  }

  setCollections(names: string[]): void {
    this.names = names;
    for (const worker of this.workers) worker.send({ t: 'names', collections: names });
  }

  setInternalHandler(handler: InternalHandler): void {
    this.internal = handler;
  }

  async load(collection: string, hooks: HookSource[], limits: HookLimits): Promise<Partial<Record<HookEvent, string>>> {
    this.loaded.set(collection, { hooks, limits });
    await this.start();
    const results = await Promise.all(this.workers.map((worker) => this.loadInto(worker, collection, { hooks, limits })));
    return results[0] ?? {};
  }

  private async loadInto(worker: Worker, collection: string, { hooks, limits }: LoadedHooks): Promise<Record<string, string>> {
    await worker.ready;
    const id = this.nextId++;
    const done = new Promise<Record<string, string>>((resolve) => this.loads.set(id, resolve));
    worker.send({ t: 'load', id, collection, hooks, timeoutMs: limits.timeoutMs, memoryMb: limits.memoryMb, collections: this.names });
    return done;
  }

  unload(collection: string): void {
    this.loaded.delete(collection);
    for (const worker of this.workers) worker.send({ t: 'unload', collection });
  }

  run(ctx: EventContext, scope?: unknown): Promise<HookResult> {
    if (this.workers.length === 0) return Promise.resolve(failed(`hooks are not running for ${ctx.collection}`));
    const worker = this.workers.reduce((best, w) => (w.inflight < best.inflight ? w : best));
    const id = this.nextId++;
    const file = `${ctx.collection}/${ctx.event}.js`;
    worker.inflight++;
    return new Promise<HookResult>((resolve) => {
      this.runs.set(id, { worker, scope, file, resolve });
      const request: WorkerRequest = { t: 'run', id, collection: ctx.collection, variant: variantFor(ctx.event, ctx.requestEvent), ctxJson: JSON.stringify(ctx) };
      // After `ready`, so a restarted worker receives its hooks (sent on `ready` too) first.
      void worker.ready.then(() => worker.send(request));
    });
  }

  private onMessage(worker: Worker, message: WorkerMessage): void {
    switch (message.t) {
      case 'loaded':
        this.loads.get(message.id)?.(message.errors);
        this.loads.delete(message.id);
        break;
      case 'result': {
        const run = this.runs.get(message.id);
        if (!run) return;
        this.runs.delete(message.id);
        worker.inflight--;
        run.resolve(JSON.parse(message.resultJson) as HookResult);
        break;
      }
      case 'call':
        void this.onCall(worker, message);
        break;
    }
  }

  private async onCall(worker: Worker, message: Extract<WorkerMessage, { t: 'call' }>): Promise<void> {
    const run = this.runs.get(message.inv);
    let outcome: { result?: unknown; error?: unknown };
    if (!run || !this.internal) outcome = { error: { message: 'internal client unavailable', status: 500 } };
    else {
      try {
        outcome = await this.internal(run.scope, JSON.parse(message.payload) as InternalCall);
      } catch (err) {
        outcome = { error: { message: (err as Error).message, status: 500 } };
      }
    }
    worker.send({
      t: 'reply',
      worker: message.worker,
      call: message.call,
      resultJson: outcome.error === undefined ? JSON.stringify(outcome.result ?? null) : undefined,
      errorJson: outcome.error === undefined ? undefined : JSON.stringify(outcome.error),
    });
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.workers = this.workers.filter((w) => w !== worker);
    for (const [id, run] of this.runs) {
      if (run.worker !== worker) continue;
      this.runs.delete(id);
      run.resolve(failed(`hook process crashed while running ${run.file}`));
    }
    if (this.closed) return;
    this.log.error({ code, signal }, 'hook worker exited; starting a new one');
    const replacement = this.spawn();
    this.workers.push(replacement);
    for (const [collection, hooks] of this.loaded) void this.loadInto(replacement, collection, hooks);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((worker) => new Promise<void>((resolve) => {
      if (worker.proc.exitCode !== null || worker.proc.signalCode !== null) return resolve();
      worker.proc.once('exit', () => resolve());
      worker.proc.disconnect();
      setTimeout(() => worker.proc.kill('SIGKILL'), 2000).unref();
    })));
  }
}

function failed(message: string): HookResult {
  return { data: {}, errors: {}, hidden: [], protected: [], emits: [], logs: [], cancel: { message, status: 500, isError: true } };
}
