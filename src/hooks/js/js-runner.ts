/**
 * Runs JavaScript hooks in a small pool of worker processes (./worker.ts), each holding one
 * isolated-vm isolate per collection. Isolates and contexts are built when hooks load, never on the
 * request path. A worker that dies (a V8 out-of-memory can abort the process) fails only the
 * invocations it was running, and is restarted with every collection's hooks reloaded; one that
 * stops answering (past an event's time limit plus a grace period) is killed and restarted too.
 *
 * A worker runs hook code on its main thread, one call at a time (./worker.ts), so an event goes to
 * the worker with the fewest calls waiting on it, skipping one that has been on a call for longer
 * than STALLED_MS (a hook spinning towards its time limit): when every worker is stalled, the warm
 * spare serves too. A hook waiting on a `dpd` call does not occupy its worker.
 *
 * The pool starts with one worker (~45 MiB each, most of it the node binary) and holds up to `size`
 * (default: one per core). A worker is added (hooks loaded before it serves) when every serving
 * worker has calls waiting; one without work for `idleMs` is stopped, down to one. Each worker holds
 * one isolate per hook set (a collection's hooks at one version), shared by all its events and
 * requests. `memory()` reports each worker's RSS and PSS and each isolate's heap (`/metrics`).
 *
 * A runaway hook fails only the requests running it. The warm spare (a worker with hooks loaded that
 * serves nothing) starts only once an app shows it needs one: the first time every serving worker
 * is stalled (it serves then, instead of queueing behind the spinning hook), or the first time a
 * worker dies. From then on it takes a dead worker's place at once, and a new spare starts behind
 * it; a worker that dies before any spare exists is restarted with every hook set loaded. Either
 * way an event that was waiting in the dead worker without its hook code having begun is sent
 * again, once, to a live worker; one that may have begun fails, since part of it may have run.
 * No message says a run began (that would be a third message per call): a worker takes its
 * messages in order and answers each with a result or `parked`, so the run it was sent first and
 * has not answered is the one it may be running (its `head`); one that has parked or called `dpd`
 * has begun.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import { variantFor } from '../hook-params.js';
import { failedResult } from '../hook-result.js';
import { DEFAULT_HOOK_LIMITS, type HookLimits, type HookRunner, type HookSource, type InternalCall, type InternalHandler, type RunnerStatus, type RunResult } from '../hook-runner.js';
import type { EventContext, HookEvent, HookResult } from '../protocol.js';
import type { IsolateMemory, WorkerMessage, WorkerRequest } from './messages.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');

/**
 * A worker that has not answered an event this long after its time limit is wedged (its own
 * timer answers at the limit): it is killed and replaced.
 */
const UNRESPONSIVE_GRACE_MS = 3000;

/**
 * A worker that has been on one call this long is routed around: trivial hooks take microseconds,
 * and a spinning one keeps its worker until its time limit.
 */
const STALLED_MS = 50;

/** A serving worker idle this long is stopped (down to one). */
const DEFAULT_IDLE_MS = 60_000;

/** How long `memory()` waits for a worker to answer. */
const MEMORY_QUERY_MS = 1000;

/** One worker per core. */
export function defaultHookWorkers(): number {
  return Math.max(1, os.availableParallelism());
}

export interface JsHookRunnerOptions {
  /** A serving worker without work this long is stopped, keeping one (default 60 s). */
  idleMs?: number;
}

/** What a hook worker process holds: `/metrics` and bench/js-hooks.js report it. */
export interface WorkerMemory {
  pid: number | undefined;
  role: 'worker' | 'spare';
  rssBytes: number;
  /** Its proportional share of memory shared with other processes (the node binary): Linux only. */
  pssBytes?: number;
  isolates: IsolateMemory[];
}

/** Before restarting a worker that exited without ever becoming ready. */
const RESPAWN_DELAY_MS = 1000;

/**
 * `--no-node-snapshot`: isolated-vm needs it on Node 20+ (only these processes load it; the server
 * starts from the snapshot). `--noexpose-wasm`: isolates get no `WebAssembly`, whose memories are not
 * counted against an isolate's memory limit (a 16 MB isolate can commit gigabytes with `WebAssembly.Memory`).
 */
const WORKER_EXEC_ARGV = ['--no-node-snapshot', '--noexpose-wasm'];

interface PendingRun {
  worker: Worker;
  collection: string;
  scope: unknown;
  file: string;
  resolve: (result: HookResult) => void;
  watchdog: NodeJS.Timeout;
  request: WorkerRequest;
  timeoutMs: number;
  /** Its hook code started (it parked or called `dpd`); the worker's head run may have begun too. */
  began: boolean;
  /** Sent again once already (after its first worker died before it began). */
  retried: boolean;
}

interface PendingLoad {
  worker: Worker;
  collection: string;
  resolve: (errors: Record<string, string>) => void;
}

interface LoadedHooks {
  hooks: HookSource[];
  limits: HookLimits;
}

class Worker {
  readonly proc: ChildProcess;
  inflight = 0;
  /** Events in flight by collection. */
  readonly byCollection = new Map<string, number>();
  /** Resolves once the worker is ready, or once it has exited (then `alive` is false). */
  readonly ready: Promise<void>;
  alive = true;
  wasReady = false;
  /**
   * Runs this worker has to get to, or is running, by id → since when (oldest first): sent and not
   * yet answered, parked or calling `dpd`.
   */
  readonly jobs = new Map<number, number>();
  /** When a job last came or went. */
  lastActive = Date.now();
  /** Messages sent in this turn of the event loop, written together by `flush`. */
  private outbox: WorkerRequest[] = [];
  /** The head run whose watchdog is armed. */
  watched?: number;
  /** Killed for not answering its head: none of the runs behind that one began. */
  wedged = false;

  constructor(onMessage: (worker: Worker, message: WorkerMessage) => void, onExit: (worker: Worker, code: number | null, signal: string | null) => void) {
    this.proc = fork(WORKER, [], {
      execArgv: WORKER_EXEC_ARGV,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    this.ready = new Promise((resolve) => {
      const first = (message: WorkerMessage) => {
        if (message.t === 'ready') {
          this.proc.off('message', first);
          this.wasReady = true;
          this.lastActive = Date.now();
          resolve();
        }
      };
      this.proc.on('message', first);
      this.proc.once('exit', () => resolve());
    });
    this.proc.on('message', (message: WorkerMessage) => onMessage(this, message));
    this.proc.on('exit', (code, signal) => {
      this.alive = false;
      onExit(this, code, signal);
    });
    // A failed spawn or a send to a dying worker: 'exit' follows (or the send is moot).
    this.proc.on('error', () => {});
  }

  /**
   * Queues a message; what is sent in one turn of the event loop goes in one write (a `batch` when
   * there are several): under load that is one wake-up of the worker for several runs instead of
   * one each. The order of messages is kept.
   */
  send(request: WorkerRequest): void {
    if (this.outbox.push(request) === 1) setImmediate(() => this.flush());
  }

  /** Writes the queued messages now. */
  flush(): void {
    const messages = this.outbox;
    if (messages.length === 0) return;
    this.outbox = [];
    if (!this.proc.connected) return;
    try {
      this.proc.send(messages.length === 1 ? messages[0] : { t: 'batch', messages });
    } catch {
      // the channel closed under us; 'exit' handles the worker's runs
    }
  }

  /** The run this worker is on, or gets to next: the first it was sent of those it has not answered. */
  head(): number | undefined {
    return this.jobs.keys().next().value;
  }

  /** On one call for longer than STALLED_MS. */
  stalled(now: number): boolean {
    return now - this.busySince() > STALLED_MS;
  }

  /** Since when it has had its oldest call (Infinity when it has none). */
  busySince(): number {
    return this.jobs.size === 0 ? Infinity : this.jobs.values().next().value as number;
  }

  queued(runId: number): void {
    this.jobs.delete(runId);
    this.lastActive = Date.now();
    this.jobs.set(runId, this.lastActive);
  }

  unqueued(runId: number): void {
    if (this.jobs.delete(runId)) this.lastActive = Date.now();
  }

  busy(collection: string): number {
    return this.byCollection.get(collection) ?? 0;
  }

  began(collection: string): void {
    this.inflight++;
    this.byCollection.set(collection, this.busy(collection) + 1);
  }

  ended(collection: string): void {
    this.inflight--;
    const n = this.busy(collection) - 1;
    if (n > 0) this.byCollection.set(collection, n);
    else this.byCollection.delete(collection);
  }
}

export class JsHookRunner implements HookRunner {
  private workers: Worker[] = [];
  /** A started worker with every hook set loaded, that takes the place of the next one to die. */
  private spare?: Worker;
  private readonly runs = new Map<number, PendingRun>();
  private readonly loads = new Map<number, PendingLoad>();
  private readonly loaded = new Map<string, LoadedHooks>();
  private names: string[] = [];
  private internal?: InternalHandler;
  private nextId = 1;
  private closed = false;
  private readonly memoryQueries = new Map<number, (answer: Extract<WorkerMessage, { t: 'memory' }>) => void>();
  private readonly idleMs: number;
  private reaper?: NodeJS.Timeout;
  /** A worker being added (loading its hooks), not serving yet. */
  private growing?: Worker;

  constructor(private readonly size: number, private readonly log: FastifyBaseLogger, options: JsHookRunnerOptions = {}) {
    this.idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  }

  private starting?: Promise<void>;

  /**
   * One worker starts with the first collection that has hooks (an app without hooks runs none);
   * more join under load (grow) and the spare once it is needed (startSpare).
   */
  start(): Promise<void> {
    this.starting ??= (async () => {
      this.workers.push(this.spawn());
      if (this.size > 1) {
        this.reaper = setInterval(() => this.reapIdle(), Math.max(10, Math.min(this.idleMs / 4, 10_000)));
        this.reaper.unref();
      }
      await Promise.all(this.workers.map((w) => w.ready));
    })();
    return this.starting;
  }

  private spawn(): Worker {
    return new Worker((worker, message) => this.onMessage(worker, message), (worker, code, signal) => this.onExit(worker, code, signal));
  }

  setCollections(names: string[]): void {
    this.names = names;
    for (const worker of this.all()) worker.send({ t: 'names', collections: names });
  }

  setInternalHandler(handler: InternalHandler): void {
    this.internal = handler;
  }

  async load(collection: string, hooks: HookSource[], limits: HookLimits): Promise<Partial<Record<HookEvent, string>>> {
    this.loaded.set(collection, { hooks, limits });
    await this.start();
    const serving = this.workers.map((worker) => this.loadInto(worker, collection, { hooks, limits }));
    // The spare and a worker being added load now too, not waited for: neither serves this set
    // before the load, which reaches a worker ahead of any event for the set. (Sent only once the
    // serving workers had answered, a worker added meanwhile could join them without the set.)
    for (const other of [this.spare, this.growing]) if (other) void this.loadInto(other, collection, { hooks, limits });
    const results = await Promise.all(serving);
    return results.find((r) => r !== undefined) ?? {};
  }

  /** Loads into one worker; `undefined` when the worker died first (its replacement loads everything). */
  private async loadInto(worker: Worker, collection: string, { hooks, limits }: LoadedHooks): Promise<Record<string, string> | undefined> {
    await worker.ready;
    if (!worker.alive) return undefined;
    const id = this.nextId++;
    const done = new Promise<Record<string, string>>((resolve) => this.loads.set(id, { worker, collection, resolve }));
    worker.send({ t: 'load', id, collection, hooks, timeoutMs: limits.timeoutMs, memoryMb: limits.memoryMb, collections: this.names });
    return done;
  }

  unload(collection: string): void {
    this.loaded.delete(collection);
    // After `ready`, like a load: a worker still starting gets the set's load first, then this.
    for (const worker of this.all()) void worker.ready.then(() => worker.send({ t: 'unload', collection }));
  }

  /** The serving workers, the spare and a worker being added. */
  private all(): Worker[] {
    return [...this.workers, ...(this.spare ? [this.spare] : []), ...(this.growing ? [this.growing] : [])];
  }

  /** Stops a serving worker that has had nothing to do for `idleMs`, keeping one. */
  private reapIdle(): void {
    if (this.closed || this.workers.length <= 1) return;
    const now = Date.now();
    const loading = new Set([...this.loads.values()].map((load) => load.worker));
    const idle = this.workers.find((w) => w.wasReady && !loading.has(w) && w.inflight === 0 && w.jobs.size === 0 && now - w.lastActive >= this.idleMs);
    if (!idle) return;
    this.workers = this.workers.filter((w) => w !== idle);
    this.log.debug({ pid: idle.proc.pid, workers: this.workers.length }, 'hook worker idle; stopped');
    idle.flush();
    idle.proc.disconnect();
  }

  /** Adds a worker (below `size`) when every serving one has calls waiting; it serves once its hooks are loaded. */
  private grow(): void {
    if (this.closed || this.growing || this.workers.length >= this.size) return;
    const worker = this.spawn();
    this.growing = worker;
    void Promise.all([...this.loaded].map(([collection, hooks]) => this.loadInto(worker, collection, hooks))).then(() => {
      if (this.growing !== worker) return;
      this.growing = undefined;
      if (worker.alive && !this.closed) this.workers.push(worker);
    });
  }

  /** Each worker's RSS (and PSS on Linux) and its isolates' heaps; a worker that does not answer within a second is left out. */
  async memory(): Promise<WorkerMemory[]> {
    const roles = [...this.workers.map((w) => [w, 'worker'] as const), ...(this.spare ? [[this.spare, 'spare'] as const] : [])];
    const answers = await Promise.all(roles.map(async ([worker, role]) => {
      if (!worker.alive || !worker.wasReady) return undefined;
      const id = this.nextId++;
      const answer = await new Promise<Extract<WorkerMessage, { t: 'memory' }> | undefined>((resolve) => {
        const timer = setTimeout(() => { this.memoryQueries.delete(id); resolve(undefined); }, MEMORY_QUERY_MS);
        this.memoryQueries.set(id, (message) => { clearTimeout(timer); resolve(message); });
        worker.send({ t: 'memory', id });
      });
      if (!answer) return undefined;
      const memory: WorkerMemory = { pid: worker.proc.pid, role, rssBytes: answer.rssBytes, isolates: answer.isolates };
      const pss = pssBytes(worker.proc.pid);
      if (pss !== undefined) memory.pssBytes = pss;
      return memory;
    }));
    return answers.filter((a): a is WorkerMemory => a !== undefined);
  }

  /**
   * The worker for an event of `collection`: of those not stalled, the fewest calls waiting, then
   * the fewest events of the collection in flight, then the fewest in all. When every worker is
   * stalled, the spare or a worker being added, unless they are on an older call themselves.
   */
  private pick(collection: string): Worker {
    const now = Date.now();
    let candidates = this.workers.filter((w) => !w.stalled(now));
    if (candidates.every((w) => w.jobs.size > 0)) this.grow();
    if (candidates.length === 0) {
      // The first time every worker is stalled the spare starts. Of the spare, a worker being added
      // (either may still be starting: it gets the event once its hooks are loaded) and the stalled
      // workers, the one whose oldest call is the most recent: the least likely to be spinning.
      this.startSpare(0);
      const all = [this.spare, this.growing, ...this.workers].filter((w): w is Worker => w?.alive === true);
      return all.reduce((best, w) => (w.busySince() > best.busySince() ? w : best));
    }
    return candidates.reduce((best, w) => {
      const order = w.jobs.size - best.jobs.size || w.busy(collection) - best.busy(collection) || w.inflight - best.inflight;
      return order < 0 ? w : best;
    });
  }

  /**
   * Sends a run to `worker`, with a watchdog. Queued behind a runaway call it begins within that
   * call's limit; a worker that has not even begun it by the limit plus a grace period is wedged.
   */
  private dispatch(id: number, run: PendingRun): void {
    const worker = run.worker;
    worker.began(run.collection);
    clearTimeout(run.watchdog);
    worker.queued(id);
    this.watch(worker);
    // After `ready`, so a restarted worker receives its hooks (sent on `ready` too) first.
    void worker.ready.then(() => worker.send(run.request));
  }

  run(ctx: EventContext, scope?: unknown, hookSet?: string): Promise<HookResult> {
    if (this.workers.length === 0) return Promise.resolve(failedResult(`hooks are not running for ${ctx.collection}`));
    const collection = hookSet ?? ctx.collection;
    const id = this.nextId++;
    const file = `${ctx.collection}/${ctx.event}.js`;
    const timeoutMs = this.loaded.get(collection)?.limits.timeoutMs ?? DEFAULT_HOOK_LIMITS.timeoutMs;
    const request: WorkerRequest = { t: 'run', id, collection, variant: variantFor(ctx.event, ctx.requestEvent), ctxJson: JSON.stringify(ctx) };
    return new Promise<RunResult>((resolve) => {
      const run: PendingRun = { worker: this.pick(collection), collection, scope, file, resolve, watchdog: undefined as unknown as NodeJS.Timeout, request, timeoutMs, began: false, retried: false };
      this.runs.set(id, run);
      this.dispatch(id, run);
    });
  }

  /**
   * Arms the watchdog of the worker's head run when the head changes: queued behind a runaway call
   * a run begins within that call's limit, so a worker that has been on one head for its limit plus
   * a grace period is wedged. (`stalled` keeps counting from when a job was queued: a worker
   * that has had a job waiting for a while is routed around, whatever it is on now.)
   */
  private watch(worker: Worker): void {
    const head = worker.head();
    if (head === worker.watched) return;
    worker.watched = head;
    const run = head === undefined ? undefined : this.runs.get(head);
    if (head === undefined || !run) return;
    clearTimeout(run.watchdog);
    run.watchdog = setTimeout(() => this.unresponsive(worker, head), run.timeoutMs + UNRESPONSIVE_GRACE_MS);
  }

  /** Ends a run: answers it once and releases its slot on the worker. */
  private settle(id: number, result: RunResult): void {
    const run = this.runs.get(id);
    if (!run) return;
    this.runs.delete(id);
    clearTimeout(run.watchdog);
    run.worker.ended(run.collection);
    run.worker.unqueued(id);
    this.watch(run.worker);
    result.file ??= run.file;
    run.resolve(result);
  }

  /** The worker has been on this run past its limit and grace without answering: it is wedged. */
  private unresponsive(worker: Worker, id: number): void {
    const run = this.runs.get(id);
    if (!run) return;
    // It was the worker's head (or parked): it may have begun, so it is not sent elsewhere. When it
    // was the head, the runs behind it have not begun.
    if (worker.head() === id) worker.wedged = true;
    this.settle(id, failedResult(`hook timed out: ${run.file}`));
    if (!this.workers.includes(worker) && worker !== this.spare) return;
    this.log.error({ pid: worker.proc.pid, file: run.file }, 'hook worker stopped answering; killing it');
    worker.proc.kill('SIGKILL');
  }

  private onMessage(worker: Worker, message: WorkerMessage): void {
    switch (message.t) {
      case 'loaded':
        this.loads.get(message.id)?.resolve(message.errors);
        this.loads.delete(message.id);
        break;
      case 'result': {
        if (this.runs.get(message.id)?.worker !== worker) return;
        let result: HookResult;
        try {
          result = JSON.parse(message.resultJson) as HookResult;
        } catch {
          result = failedResult(`hook result could not be read: ${this.runs.get(message.id)!.file}`);
        }
        this.settle(message.id, result);
        break;
      }
      case 'memory':
        this.memoryQueries.get(message.id)?.(message);
        this.memoryQueries.delete(message.id);
        break;
      case 'call':
        this.begun(worker, message.inv);
        void this.onCall(worker, message);
        break;
      case 'parked':
        this.begun(worker, message.id);
        break;
    }
  }

  /** The run's hook code has started (it parked or called `dpd`): the worker is on to its next job. */
  private begun(worker: Worker, id: number): void {
    const run = this.runs.get(id);
    if (run?.worker === worker) run.began = true;
    worker.unqueued(id);
    this.watch(worker);
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
    if (this.runs.get(message.inv)?.worker === worker) {
      worker.queued(message.inv);
      this.watch(worker);
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
    if (worker === this.spare) {
      this.spare = undefined;
      if (!this.closed) this.startSpare(worker.wasReady ? 0 : RESPAWN_DELAY_MS);
      // It may have been serving while every worker was stalled.
      this.strand(worker);
      return;
    }
    if (worker === this.growing) this.growing = undefined;
    if (!this.workers.includes(worker)) {
      // Stopped idle, or died while being added: nothing it was loading is waited for any more.
      for (const [id, load] of [...this.loads].filter(([, l]) => l.worker === worker)) {
        this.loads.delete(id);
        load.resolve({});
      }
      // A worker being added may have been given events while every serving worker was stalled.
      this.strand(worker);
      return;
    }
    this.workers = this.workers.filter((w) => w !== worker);
    const orphans = [...this.loads].filter(([, load]) => load.worker === worker);
    for (const [id] of orphans) this.loads.delete(id);
    const stranded = [...this.runs].filter(([, run]) => run.worker === worker);
    if (this.closed) {
      for (const [id, run] of stranded) this.settle(id, failedResult(`hook process crashed while running ${run.file}`));
      for (const [, load] of orphans) load.resolve({});
      return;
    }
    let replacement: Worker;
    if (this.spare?.alive && this.spare.wasReady) {
      // The warm spare serves from now on; a new spare starts behind it.
      replacement = this.spare;
      this.spare = undefined;
      this.workers.push(replacement);
      this.log.error({ code, signal, pid: worker.proc.pid }, 'hook worker exited; its spare took over');
      this.startSpare(0);
    } else {
      // A worker that dies before it is even ready would die again at once: do not spin on it.
      const delay = worker.wasReady ? 0 : RESPAWN_DELAY_MS;
      this.log.error({ code, signal, restartInMs: delay }, 'hook worker exited; starting a new one');
      if (delay > 0) {
        for (const [id, run] of stranded) this.settle(id, failedResult(`hook process crashed while running ${run.file}`));
        setTimeout(() => {
          if (this.closed) return void orphans.forEach(([, load]) => load.resolve({}));
          const late = this.spawn();
          this.workers.push(late);
          for (const [collection, hooks] of this.loaded) void this.loadInto(late, collection, hooks);
          for (const [, load] of orphans) load.resolve({});
        }, delay).unref();
        return;
      }
      replacement = this.spawn();
      this.workers.push(replacement);
      for (const [collection, hooks] of this.loaded) void this.loadInto(replacement, collection, hooks);
      // A worker died: from now on a spare stands by to take the next one's place at once.
      this.startSpare(0);
    }
    // A load the dead worker never answered is answered by the replacement.
    for (const [, load] of orphans) {
      const hooks = this.loaded.get(load.collection);
      if (!hooks) load.resolve({});
      else void this.loadInto(replacement, load.collection, hooks).then((errors) => load.resolve(errors ?? {}));
    }
    this.strand(worker);
  }

  /** The runs of a dead worker: failed when they may have begun, else sent again (once) to a live worker. */
  private strand(worker: Worker): void {
    const head = worker.wedged ? undefined : worker.head();
    for (const [id, run] of [...this.runs].filter(([, r]) => r.worker === worker)) {
      run.worker.ended(run.collection);
      if (this.closed || this.workers.length === 0 || run.began || id === head || run.retried) {
        this.runs.delete(id);
        clearTimeout(run.watchdog);
        run.resolve(failedResult(`hook process crashed while running ${run.file}`));
        continue;
      }
      // Its hook code never began in the dead worker: send it again, once.
      run.retried = true;
      run.worker = this.pick(run.collection);
      this.dispatch(id, run);
    }
  }

  /** Starts a new spare (after `delayMs`) and loads every hook set into it. */
  private startSpare(delayMs: number): void {
    const start = () => {
      if (this.closed || this.spare) return;
      const spare = this.spawn();
      this.spare = spare;
      for (const [collection, hooks] of this.loaded) void this.loadInto(spare, collection, hooks);
    };
    if (delayMs === 0) start();
    else setTimeout(start, delayMs).unref();
  }

  status(): Pick<RunnerStatus, 'workers'> {
    return { workers: this.workers.map((w) => ({ pid: w.proc.pid, ready: w.wasReady && w.alive, inflight: w.inflight })) };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    await Promise.all(this.all().map((worker) => new Promise<void>((resolve) => {
      if (worker.proc.exitCode !== null || worker.proc.signalCode !== null) return resolve();
      worker.proc.once('exit', () => resolve());
      worker.flush();
      worker.proc.disconnect();
      setTimeout(() => worker.proc.kill('SIGKILL'), 2000).unref();
    })));
  }
}

/** The process's proportional set size (its share of pages shared with other processes), from /proc. */
function pssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined; // not Linux, or the worker just exited
  }
}
