/**
 * Runs Go hooks (`resources/<collection>/<event>.go`, or a prebuilt go-plugin program named by
 * config.json `goPlugin`): a HookRunner over buildGoHooks (./build.ts) and GoPluginProcess
 * (./plugin-host.ts).
 *
 * Builds are off the request path. load() builds one program per hook set (content-addressed
 * under buildDir, so an unchanged set reuses its binary without running Go) and starts it as a
 * sidecar:
 * - the first version of a collection's Go hooks (server start, a new collection) loads in the
 *   background: load() returns at once, so the server listens and other collections serve while
 *   Go builds. A request for one of its events waits for the build and start up to buildWaitMs
 *   (default 20 s), then answers 503 "still being built"; a compile error found by that build
 *   answers 500 naming file:line, like a load error (fail closed);
 * - a new version of a collection that already has a running sidecar (a hot edit) is built and
 *   started before load() resolves, and the registry swaps it in only then: requests keep being
 *   served by the old sidecar meanwhile, and none fails.
 * The one thing checked synchronously is the toolchain: a set that needs a build without `go`
 * available is a load error at once (the server refuses to start, saying so).
 *
 * A file that does not compile gets its `file:line:col: message` as its event's error, and the
 * other files are built again without it, so the collection's other Go events keep working.
 *
 * Supervision: a sidecar that exits is restarted with exponential backoff (calls that were in
 * flight answer 503 "crashed; restarting", calls that arrive meanwhile wait for the restart, up to
 * 10 s or their deadline if longer, and then get their full deadline); a call past its deadline
 * answers 504 and the (possibly stuck) sidecar is killed and a replacement started at once.
 *
 * The channel to each sidecar is mutual TLS (go-plugin AutoMTLS) unless turned off with
 * `autoMTLS: false` or DEPLOYD_GO_AUTOMTLS=off; one throw-away client certificate per runner.
 *
 * `dpd` from Go (`ctx.Dpd("todos").Get(…)`): each sidecar is offered HostService over go-plugin's
 * broker (plugin-host.ts). Every Run carries a fresh invocation id, valid until its result is back;
 * a Dpd call naming it runs through the same internal handler as JavaScript's `dpd` (the caller's
 * identity and request stack, rules, hooks, recursion limit, emits after commit).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import { Errors } from '../../errors.js';
import { failedResult } from '../hook-result.js';
import type { HookLimits, HookRunner, HookSource, InternalHandler, RunnerStatus, RunResult } from '../hook-runner.js';
import { PROTO_EVENT, type EventContext, type HookEvent, type HookResult, type Json, type JsonObject, type LogLine } from '../protocol.js';
import { buildGoHooks, findGo, GoBuildError, planGoBuild, type GoBuildCompileError, type GoHookFile } from './build.js';
import { generateClientCertificate, type ClientCertificate } from './mtls.js';
import { isExecutable } from './plugin-config.js';
import { GoPluginError, GoPluginProcess, type PluginLog, type ProtoDpdRequest, type ProtoDpdResponse, type ProtoEventContext, type ProtoHookResult } from './plugin-host.js';

/** hooks-go in this package (dist/src/hooks/go/ → the repository root). */
export const DEFAULT_SDK_DIR = fileURLToPath(new URL('../../../../hooks-go', import.meta.url));

export const DEFAULT_GO_TIMEOUT_MS = 2000;
export const DEFAULT_BUILD_WAIT_MS = 20_000;
/** Retry-After (seconds) of the 503 a request gets while its collection's Go hooks build. */
const RETRY_AFTER_S = 5;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
/** How long a call waits for a replacement sidecar that is starting (its own deadline starts after). */
const RESTART_WAIT_MS = 10_000;
/** A sidecar that ran this long before exiting restarts without backoff. */
const STABLE_AFTER_MS = 10_000;

export interface GoHookRunnerOptions {
  /** Where built programs are kept (`<app>/.deployd/build`). */
  buildDir: string;
  /** The hooks-go module. */
  sdkDir?: string;
  /** Parent of the per-sidecar socket directories; default os.tmpdir(). */
  socketDir?: string;
  /** The go command; default "go" on PATH. */
  go?: string;
  /** go-plugin AutoMTLS on the sidecar channel; default on, unless DEPLOYD_GO_AUTOMTLS is off/0/false. */
  autoMTLS?: boolean;
  /**
   * How long a request waits for its collection's first Go build and start before a 503; default
   * DEPLOYD_GO_BUILD_WAIT_MS or 20 000 ms.
   */
  buildWaitMs?: number;
  /**
   * Deadline of one call when the collection's config.json sets no `"hooks": {"timeoutMs"}`;
   * default DEPLOYD_GO_TIMEOUT_MS or 2000 ms.
   */
  timeoutMs?: number;
  log: FastifyBaseLogger;
}

interface HookSet {
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

/** How long a retired build folder is kept before it is removed (if no set uses it by then). */
const RETIRED_BUILD_GRACE_MS = 10_000;

export class GoHookRunner implements HookRunner {
  private readonly sets = new Map<string, HookSet>();
  private readonly sdkDir: string;
  private readonly autoMTLS: boolean;
  private readonly buildWaitMs: number;
  private readonly defaultTimeoutMs: number;
  private clientCertificate?: Promise<ClientCertificate>;
  private closed = false;
  private internal?: InternalHandler;
  /** Invocations running now, by id: the request scope their `dpd` calls run in. */
  private readonly invocations = new Map<string, { scope: unknown; set: HookSet }>();
  private nextInvocation = 0;
  /** Hook sets that need a build while no Go toolchain is found: their load errors. */
  private readonly withoutToolchain = new Map<string, string[]>();

  constructor(private readonly options: GoHookRunnerOptions) {
    this.sdkDir = options.sdkDir ?? DEFAULT_SDK_DIR;
    this.autoMTLS = options.autoMTLS ?? !/^(0|off|false|no)$/i.test(process.env.DEPLOYD_GO_AUTOMTLS ?? '');
    const envTimeout = Number(process.env.DEPLOYD_GO_TIMEOUT_MS);
    this.defaultTimeoutMs = options.timeoutMs ?? (envTimeout > 0 ? envTimeout : DEFAULT_GO_TIMEOUT_MS);
    const envWait = Number(process.env.DEPLOYD_GO_BUILD_WAIT_MS);
    this.buildWaitMs = options.buildWaitMs ?? (envWait > 0 ? envWait : DEFAULT_BUILD_WAIT_MS);
  }

  /** How many hook sets are building or starting, serving, or failed (for /metrics). */
  states(): Record<HookSet['state'], number> {
    const counts = { loading: 0, ready: 0, failed: 0 };
    for (const set of this.sets.values()) if (!set.closed) counts[set.state]++;
    return counts;
  }

  async load(hookSet: string, hooks: HookSource[], limits: HookLimits): Promise<Partial<Record<HookEvent, string>>> {
    this.unload(hookSet);
    const errors: Partial<Record<HookEvent, string>> = {};
    if (hooks.length === 0) return errors;
    const collection = collectionOf(hooks.find((h) => !h.plugin)?.file ?? '', hookSet);
    // A prebuilt program serves the events config.json gives it; .go files beside it are
    // reported as conflicts by the registry and not built.
    const pluginHooks = hooks.filter((h) => h.plugin !== undefined);
    const used = pluginHooks.length > 0 ? pluginHooks : hooks;
    const set: HookSet = {
      name: hookSet,
      collection,
      files: new Map(used.map((h) => [h.event, h.file])),
      timeoutMs: limits?.configuredTimeoutMs ?? this.defaultTimeoutMs,
      state: 'loading',
      loaded: Promise.resolve(),
      errors: {},
      failures: 0,
      startedAt: 0,
      closed: false,
      abort: new AbortController(),
      hooks,
      retryable: false,
      buildStartedAt: Date.now(),
    };
    if (pluginHooks.length > 0) {
      set.binary = pluginHooks[0]!.plugin;
      if (!isExecutable(set.binary!)) {
        for (const h of pluginHooks) errors[h.event] = `${h.file}: ${set.binary} is not an executable file`;
        return errors;
      }
    } else {
      // Checked now, not in the background: without Go the server must refuse to start.
      try {
        const plan = planGoBuild({ collection, files: toFiles(hooks), buildDir: this.options.buildDir, sdkDir: this.sdkDir });
        set.plannedBinary = plan.binary;
        if (!plan.built) findGo(this.options.go ?? 'go');
      } catch (err) {
        const message = err instanceof GoBuildError ? err.message : `cannot build Go hooks: ${(err as Error).message}`;
        for (const h of hooks) errors[h.event] = `${h.file}: ${message}`;
        if (err instanceof GoBuildError && err.code === 'NO_GO') this.withoutToolchain.set(hookSet, Object.values(errors));
        return errors;
      }
    }
    // A hot edit: the collection runs a sidecar already, which serves until this one is ready.
    const replacing = [...this.sets.values()].some((s) => s.collection === collection && s.state === 'ready' && !s.closed);
    this.sets.set(hookSet, set);
    this.begin(set, !replacing);
    if (!replacing) return errors; // the first version: requests wait for it (see run)
    await set.loaded;
    return { ...set.errors };
  }

  /** Builds and starts `set` in the background (again, after a failure that may pass: see run). */
  private begin(set: HookSet, logErrors: boolean): void {
    set.state = 'loading';
    set.retryable = false;
    set.errors = {};
    set.loaded = this.prepare(set, set.hooks).then(
      (errs) => {
        set.errors = errs;
        set.state = set.proc ? 'ready' : 'failed';
        // (A hot edit returns its errors to the registry, which logs them.)
        if (logErrors) for (const [event, message] of Object.entries(errs)) {
          this.options.log.error({ collection: set.collection, event, retry: set.retryable ? 'on the next request' : 'on the next change' }, `go hook failed to load: ${message}`);
        }
      },
      (err: Error) => {
        set.state = 'failed';
        set.retryable = true;
        for (const event of set.files.keys()) set.errors[event] = `${set.files.get(event)}: ${err.message}`;
      },
    );
  }

  /** Builds (unless prebuilt) and starts the set's program; resolves to the events' errors. */
  private async prepare(set: HookSet, hooks: HookSource[]): Promise<Partial<Record<HookEvent, string>>> {
    const errors: Partial<Record<HookEvent, string>> = {};
    set.buildStartedAt = Date.now();
    if (!set.binary) {
      let files = toFiles(hooks);
      const pluginLog = this.pluginLog(set);
      try {
        // Each round drops the files that have errors; stops when nothing is left to blame.
        for (let round = 0; round < hooks.length && files.length > 0; round++) {
          const res = await buildGoHooks({
            collection: set.collection,
            files,
            buildDir: this.options.buildDir,
            sdkDir: this.sdkDir,
            log: pluginLog,
            go: this.options.go,
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
      const proc = await this.spawn(set);
      if (set.closed) {
        void proc.stop();
        return errors;
      }
      set.proc = proc;
      this.supervise(set, proc);
    } catch (err) {
      set.retryable = true;
      for (const [event, file] of set.files) errors[event] = `${file}: the Go hook program did not start: ${(err as Error).message}`;
    }
    return errors;
  }

  unload(hookSet: string): void {
    this.withoutToolchain.delete(hookSet);
    const set = this.sets.get(hookSet);
    if (!set) return;
    this.sets.delete(hookSet);
    set.closed = true;
    set.abort.abort();
    // Retired for good (not a server stop): its program goes too, unless another set uses it.
    void (async () => {
      await set.proc?.stop();
      await set.loaded;
      this.removeBuild(set);
    })();
  }

  /** Deletes `<buildDir>/<hash>/` of a retired set whose program no live set uses. */
  private removeBuild(set: HookSet): void {
    const binary = set.binary ?? set.plannedBinary;
    if (!binary || this.closed || set.plannedBinary === undefined) return; // prebuilt goPlugin programs are the user's
    const dir = path.dirname(binary);
    if (path.dirname(dir) !== path.resolve(this.options.buildDir)) return;
    const usedElsewhere = () => [...this.sets.values()].some((other) => (other.binary ?? other.plannedBinary) === binary);
    if (usedElsewhere()) return;
    // Later, and only if still unused: a reload that brings the same sources back (an edit undone,
    // the admin API restoring a file it refused) starts a new set building into this very folder.
    const timer = setTimeout(() => {
      if (this.closed || usedElsewhere()) return;
      fs.rm(dir, { recursive: true, force: true }, (err) => {
        if (err) this.options.log.warn({ collection: set.collection, dir, err: err.message }, 'could not remove a retired Go hook build');
        else this.options.log.info({ collection: set.collection, dir }, 'removed a retired Go hook build');
      });
    }, RETIRED_BUILD_GRACE_MS);
    timer.unref();
  }

  setCollections(_names: string[]): void {
    // Go's ctx.Dpd takes any collection name; the internal handler answers 404 for unknown ones.
  }

  setInternalHandler(handler: InternalHandler): void {
    this.internal = handler;
  }

  /** HostService/Dpd from `set`'s sidecar. */
  private async dpd(set: HookSet, req: ProtoDpdRequest): Promise<ProtoDpdResponse> {
    const fail = (status: number, message: string): ProtoDpdResponse => ({
      error_json: Buffer.from(JSON.stringify({ message, status, statusCode: status })),
    });
    const running = this.invocations.get(String(req.invocation_id));
    if (!running || running.set !== set) return fail(400, 'dpd call from a hook that is not running (finish dpd calls before the hook returns)');
    if (!this.internal) return fail(500, 'internal client unavailable');
    const method = req.method;
    if (method !== 'GET' && method !== 'POST' && method !== 'PUT' && method !== 'DELETE') return fail(400, `dpd: unknown method ${JSON.stringify(method)}`);
    if (!req.collection) return fail(400, 'dpd: no collection named');
    const query = parse(req.query_json) ?? {};
    const body = parse(req.body_json) ?? {};
    if (!isObject(query) || !isObject(body)) return fail(400, 'dpd: query and body must be JSON objects');
    const outcome = await this.internal(running.scope, { collection: req.collection, method, id: req.id || undefined, query, body });
    if (outcome.error !== undefined) return { error_json: Buffer.from(JSON.stringify(outcome.error)) };
    return { result_json: Buffer.from(JSON.stringify(outcome.result ?? null)) };
  }

  async ready(hookSet: string, events: HookEvent[]): Promise<void> {
    const set = this.sets.get(hookSet);
    if (!set) return; // nothing loaded: load() returned its errors to the registry, which checks them
    // A build that failed for a reason other than the code is retried by the request itself (run()).
    if (set.state === 'failed' && set.retryable) return;
    const mine = events.filter((event) => set.files.has(event) || set.errors[event]);
    if (mine.length === 0) return;
    if (set.state === 'loading') {
      const waited = await Promise.race([set.loaded.then(() => true), sleep(this.buildWaitMs).then(() => false)]);
      if (!waited) {
        const files = mine.map((event) => set.files.get(event) ?? `${set.collection}/${event}.go`).join(', ');
        throw Errors.hookBuilding(`go hook ${files} is still being built; nothing was stored; try again shortly`, RETRY_AFTER_S);
      }
    }
    for (const event of mine) {
      const loadError = set.errors[event];
      if (loadError) throw Errors.hookLoad(loadError);
    }
  }

  async run(ctx: EventContext, scope?: unknown, hookSet: string = ctx.collection): Promise<HookResult> {
    const set = this.sets.get(hookSet);
    let file = set?.files.get(ctx.event) ?? `${ctx.collection}/${ctx.event}.go`;
    if (!set || (!set.files.has(ctx.event) && !set.errors[ctx.event])) return failedResult(`go hook ${file} is not loaded`, 500);
    // A build or start that failed for a reason other than the code is tried again now.
    if (set.state === 'failed' && set.retryable && !set.closed && !this.closed) {
      this.options.log.info({ collection: set.collection }, 'building the Go hooks again after a failure');
      this.begin(set, true);
    }
    if (set.state === 'loading') {
      const waited = await Promise.race([set.loaded.then(() => true), sleep(this.buildWaitMs).then(() => false)]);
      if (!waited) {
        throw Errors.hookBuilding(`go hook ${file} is still being built; try again shortly`, RETRY_AFTER_S);
      }
    }
    // Fail closed, for every event (AfterCommit included): the same answer as a load error.
    const loadError = set.errors[ctx.event];
    if (loadError) throw Errors.hookLoad(loadError);
    file = set.files.get(ctx.event) ?? file;
    let proc = set.proc;
    if (!proc || !proc.alive) {
      // A replacement is starting (a crash, a timeout): this call waits for it rather than failing
      // an innocent request; its own deadline starts once the sidecar is there.
      const restarted = await Promise.race([this.restart(set), sleep(Math.max(set.timeoutMs, RESTART_WAIT_MS)).then(() => 'late' as const)]);
      if (restarted === 'late') return failedResult(`go hook ${file} timed out`, 504);
      if (!restarted) return failedResult(`go hook ${file} crashed; restarting`, 503);
      proc = restarted;
    }
    const deadline = Date.now() + set.timeoutMs;
    let res: ProtoHookResult;
    const invocation = String(++this.nextInvocation);
    this.invocations.set(invocation, { scope, set });
    try {
      const request = toProto(ctx);
      request.invocation_id = invocation;
      res = await proc.run(request, Math.max(1, deadline - Date.now()));
    } catch (err) {
      const code = err instanceof GoPluginError ? err.code : 'RPC';
      // grpc-js under load sometimes reports an expired deadline as CANCELLED: count it as one.
      if (code === 'DEADLINE' || (code === 'RPC' && Date.now() >= deadline)) {
        this.options.log.error({ collection: set.collection, file, pid: proc.pid }, 'go hook timed out; replacing its sidecar');
        if (set.proc === proc) {
          // Forgotten at once, so the next call waits for the replacement (started now) instead of
          // racing the kill into a "crashed" answer.
          set.proc = undefined;
          void proc.stop();
          void this.restart(set);
        }
        return failedResult(`go hook ${file} timed out`, 504);
      }
      if (code === 'EXITED' || code === 'STOPPED' || !proc.alive) return failedResult(`go hook ${file} crashed; restarting`, 503);
      return failedResult(`go hook ${file} failed: ${(err as Error).message}`, 500);
    } finally {
      this.invocations.delete(invocation);
    }
    const out: RunResult = fromProto(res, ctx);
    out.file = file;
    if (out.cancel?.isError) {
      out.cancel.message = placeFailure(out.cancel.message, file, set);
      // The SDK logs a panic's stack at debug: it is the failure's stack (answered with --dev).
      const panic = out.logs.find((line) => line.level === 'debug' && line.message.startsWith('panic: '));
      if (panic) out.stack = inUserFiles(panic.message, set);
    }
    return out;
  }

  /** Each Go hook set's state, for /health (one entry per collection: its newest set). */
  buildStatus(): GoHookStatus[] {
    const byCollection = new Map<string, HookSet>();
    for (const set of this.sets.values()) {
      const seen = byCollection.get(set.collection);
      // While a hot edit builds, the running version is what serves: report it.
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

  /** The load errors of hook sets that need a build while no Go toolchain is found (the server refuses to start). */
  toolchainMissing(): string[] {
    return [...this.withoutToolchain.values()].flat();
  }

  /** Resolves when every hook set loading now has been built and started (or failed). */
  async settled(): Promise<void> {
    await Promise.all([...this.sets.values()].map((s) => s.loaded));
  }

  /** The sidecars, for the admin API (`/_admin/status`). */
  status(): Pick<RunnerStatus, 'sidecars'> {
    return {
      sidecars: [...this.sets.values()].map((set) => ({
        hookSet: set.name,
        collection: set.collection,
        state: set.state,
        pid: set.proc?.pid,
        failures: set.failures,
        startedAt: set.startedAt ? new Date(set.startedAt).toISOString() : null,
        errors: { ...set.errors } as Record<string, string>,
      })),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const sets = [...this.sets.values()];
    this.sets.clear();
    await Promise.all(
      sets.map(async (set) => {
        set.closed = true;
        set.abort.abort();
        await set.loaded;
        const proc = set.proc ?? (await set.starting?.catch(() => undefined));
        await proc?.stop();
      }),
    );
  }

  // ---- sidecars -----------------------------------------------------------------------------------

  /** The sidecar's own output (hclog, stdout/stderr) → the server log, tagged with its hook files. */
  private pluginLog(set: HookSet): PluginLog {
    const log = this.options.log;
    return (level, message, fields) => {
      const lvl = level === 'trace' ? 'debug' : level;
      log[lvl]({ collection: set.collection, hookFiles: [...set.files.values()], goHooks: true, ...fields }, message);
    };
  }

  private async spawn(set: HookSet): Promise<GoPluginProcess> {
    set.startedAt = Date.now();
    let clientCertificate: ClientCertificate | undefined;
    if (this.autoMTLS) {
      this.clientCertificate ??= generateClientCertificate();
      try {
        clientCertificate = await this.clientCertificate;
      } catch (err) {
        this.clientCertificate = undefined;
        throw new Error(`${(err as Error).message} (AutoMTLS needs the openssl command; DEPLOYD_GO_AUTOMTLS=off turns it off)`);
      }
    }
    const proc = await GoPluginProcess.start({
      binary: set.binary!,
      name: `${set.collection} go hooks`,
      socketDir: this.options.socketDir ?? os.tmpdir(),
      log: this.pluginLog(set),
      autoMTLS: this.autoMTLS,
      clientCertificate,
      host: { dpd: (req) => this.dpd(set, req) },
    });
    this.options.log.info({ collection: set.collection, pid: proc.pid, address: proc.address, tls: proc.tls, ms: Date.now() - set.startedAt }, 'go hook sidecar started');
    return proc;
  }

  /** Restarts the set's sidecar when it exits on its own. */
  private supervise(set: HookSet, proc: GoPluginProcess): void {
    void proc.exited.then((exit) => {
      if (set.closed || set.proc !== proc) return;
      this.options.log.error({ collection: set.collection, pid: proc.pid, code: exit.code, signal: exit.signal }, 'go hook sidecar exited; restarting it');
      void proc.stop(); // close the channel and remove the socket directory
      void this.restart(set);
    });
  }

  /** The running sidecar, starting a new one (once, with backoff) when it is gone. */
  private restart(set: HookSet): Promise<GoPluginProcess | undefined> {
    if (set.proc?.alive) return Promise.resolve(set.proc);
    set.starting ??= (async () => {
      if (Date.now() - set.startedAt > STABLE_AFTER_MS) set.failures = 0;
      const backoff = set.failures === 0 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (set.failures - 1));
      set.failures++;
      for (;;) {
        if (backoff > 0) await sleep(backoff);
        if (set.closed) return undefined;
        try {
          const proc = await this.spawn(set);
          if (set.closed) {
            void proc.stop();
            return undefined;
          }
          set.proc = proc;
          this.supervise(set, proc);
          return proc;
        } catch (err) {
          this.options.log.error({ collection: set.collection, err: (err as Error).message }, 'go hook sidecar failed to restart');
          set.failures++;
          await sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (set.failures - 1)));
        }
      }
    })().finally(() => {
      set.starting = undefined;
    });
    return set.starting;
  }
}

/**
 * A failure's message with its place in the user's file: a panic's `hook_post/post.go:12` (the
 * generated copy, line for line) becomes `todos/post.go:12`; a returned error gets the file in front.
 */
function placeFailure(message: string, file: string, set: HookSet): string {
  let placed = false;
  const out = message.replace(/(?:[^\s:]*\/)?hook_([a-z]+)\/[a-z]+\.go:(\d+)/g, (_all, event: string, line: string) => {
    placed = true;
    return `${set.files.get(event as HookEvent) ?? `${set.collection}/${event}.go`}:${line}`;
  });
  return placed || out.startsWith(file) ? out : `${file}: ${out}`;
}

/** A Go stack with the generated copies' paths (`/…/src/hook_post/post.go:12`) as the user's files. */
function inUserFiles(text: string, set: HookSet): string {
  return text.replace(/(?:[^\s:]*\/)?hook_([a-z]+)\/[a-z]+\.go:(\d+)/g, (_all, event: string, line: string) => `${set.files.get(event as HookEvent) ?? `${set.collection}/${event}.go`}:${line}`);
}

function toFiles(hooks: HookSource[]): GoHookFile[] {
  return hooks.filter((h) => h.plugin === undefined).map((h) => ({ event: h.event, file: h.file, source: h.source }));
}

// ---- conversion -------------------------------------------------------------------------------------

export function toProto(ctx: EventContext): ProtoEventContext {
  return {
    collection: ctx.collection,
    event: PROTO_EVENT[ctx.event],
    method: ctx.method,
    request_event: ctx.requestEvent,
    data_json: json(ctx.data),
    previous_json: ctx.previous === null ? Buffer.alloc(0) : json(ctx.previous),
    query_json: json(ctx.query),
    caller: { is_root: ctx.caller.isRoot, me_json: ctx.caller.me ? json(ctx.caller.me) : Buffer.alloc(0) },
    internal: ctx.internal,
    request_id: ctx.requestId,
    success: ctx.success,
    url: ctx.url ?? '/',
    body_json: json(ctx.body ?? {}),
  };
}

export function fromProto(res: ProtoHookResult, ctx: EventContext): HookResult {
  const data = parse(res.data_json);
  const out: HookResult = {
    data: isObject(data) ? data : ctx.data,
    errors: { ...(res.errors ?? {}) },
    hidden: [...(res.hidden ?? [])],
    protected: [...(res.protected ?? [])],
    emits: (res.emits ?? []).map((e) => {
      const usersQuery = parse(e.users_query_json);
      return {
        event: e.event,
        data: parse(e.data_json) ?? null,
        ...(e.room ? { room: e.room } : {}),
        ...(e.users_collection ? { usersCollection: e.users_collection, usersQuery: isObject(usersQuery) ? usersQuery : {} } : {}),
      };
    }),
    logs: (res.logs ?? []).map((l) => {
      const fields = parse(l.fields_json);
      const level = (['debug', 'info', 'warn', 'error'] as const).find((x) => x === l.level) ?? 'info';
      const line: LogLine = { level, message: l.message };
      if (isObject(fields)) line.fields = fields;
      return line;
    }),
  };
  if (res.cancel) out.cancel = { message: res.cancel.message, status: res.cancel.status, isError: res.cancel.is_error };
  if (res.response) {
    const addFields = parse(res.response.add_fields_json);
    out.response = {
      replaceData: res.response.replace_data,
      ...(res.response.replace_data ? { data: parse(res.response.data_json) ?? null } : {}),
      addFields: isObject(addFields) ? addFields : {},
      messages: [...(res.response.messages ?? [])],
      status: res.response.status ?? 0,
    };
  }
  const query = parse(res.query_json);
  if (isObject(query)) out.query = query;
  if (res.session_rooms) {
    out.sessionRooms = { join: [...(res.session_rooms.join ?? [])], leave: [...(res.session_rooms.leave ?? [])], leaveAll: !!res.session_rooms.leave_all };
  }
  return out;
}

function json(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v ?? {}), 'utf8');
}

function parse(buf: Buffer | Uint8Array | undefined | null): Json | undefined {
  if (!buf || buf.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.from(buf).toString('utf8')) as Json;
  } catch {
    return undefined;
  }
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** `todos/post.go` → `todos` (nested collections keep their path). */
function collectionOf(file: string, hookSet: string): string {
  const slash = file.lastIndexOf('/');
  if (slash > 0) return file.slice(0, slash);
  const hash = hookSet.lastIndexOf('#');
  return hash > 0 ? hookSet.slice(0, hash) : hookSet;
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

/** `todos/post.go:4:18: undefined: x` (no position when the build could not place it). */
export function formatCompileError(e: GoBuildCompileError): string {
  const where = e.line > 0 ? `${e.file}:${e.line}${e.column > 0 ? `:${e.column}` : ''}` : e.file;
  return `${where}: ${e.message}`;
}
