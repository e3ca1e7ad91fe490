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
 * Supervision (./sidecars.ts): a sidecar that exits is restarted with exponential backoff (calls that
 * were in flight answer 503 "crashed; restarting", calls that arrive meanwhile wait for the restart,
 * up to 10 s or their deadline if longer, and then get their full deadline: ./sidecar-call.ts); a
 * call past its deadline answers 504 and the (possibly stuck) sidecar is killed and a replacement
 * started at once.
 *
 * The channel to each sidecar is mutual TLS (go-plugin AutoMTLS) unless turned off with
 * `autoMTLS: false` or DEPLOYD_GO_AUTOMTLS=off; one throw-away client certificate per runner.
 *
 * `dpd` from Go: ./dpd-bridge.ts. Build states, waiting and /health: ./build-states.ts. Failures
 * follow the one rule of ../hook-result.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import { failedResult } from '../hook-result.js';
import type { HookLimits, HookRunner, HookSource, InternalHandler, RunnerStatus, RunResult } from '../hook-runner.js';
import type { EventContext, HookEvent } from '../protocol.js';
import { findGo, GoBuildError, planGoBuild } from './build.js';
import { awaitRunnable, buildAndStart, buildStatus, type GoHookStatus } from './build-states.js';
import { DpdBridge } from './dpd-bridge.js';
import { collectionOf, toFiles, userFile, type HookSet } from './hook-set.js';
import { isExecutable } from './plugin-config.js';
import { callSidecar } from './sidecar-call.js';
import { Sidecars } from './sidecars.js';

export type { GoHookStatus };

/** hooks-go in this package (dist/src/hooks/go/ → the repository root). */
export const DEFAULT_SDK_DIR = fileURLToPath(new URL('../../../../hooks-go', import.meta.url));

export const DEFAULT_GO_TIMEOUT_MS = 2000;
export const DEFAULT_BUILD_WAIT_MS = 20_000;

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

/** How long a retired build folder is kept before it is removed (if no set uses it by then). */
const RETIRED_BUILD_GRACE_MS = 10_000;

export class GoHookRunner implements HookRunner {
  private readonly sets = new Map<string, HookSet>();
  private readonly sdkDir: string;
  private readonly buildWaitMs: number;
  private readonly defaultTimeoutMs: number;
  private readonly bridge = new DpdBridge();
  private readonly sidecars: Sidecars;
  private closed = false;
  /** Hook sets that need a build while no Go toolchain is found: their load errors. */
  private readonly withoutToolchain = new Map<string, string[]>();

  constructor(private readonly options: GoHookRunnerOptions) {
    this.sdkDir = options.sdkDir ?? DEFAULT_SDK_DIR;
    const envTimeout = Number(process.env.DEPLOYD_GO_TIMEOUT_MS);
    this.defaultTimeoutMs = options.timeoutMs ?? (envTimeout > 0 ? envTimeout : DEFAULT_GO_TIMEOUT_MS);
    const envWait = Number(process.env.DEPLOYD_GO_BUILD_WAIT_MS);
    this.buildWaitMs = options.buildWaitMs ?? (envWait > 0 ? envWait : DEFAULT_BUILD_WAIT_MS);
    this.sidecars = new Sidecars({
      autoMTLS: options.autoMTLS ?? !/^(0|off|false|no)$/i.test(process.env.DEPLOYD_GO_AUTOMTLS ?? ''),
      socketDir: () => options.socketDir, // read at each start: the server creates it on first use
      host: (set) => this.bridge.hostFor(set),
      log: options.log,
    });
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
    set.loaded = buildAndStart(set, set.hooks, {
      buildDir: this.options.buildDir,
      sdkDir: this.sdkDir,
      go: this.options.go,
      log: this.sidecars.pluginLog(set),
      start: async (s) => void (await this.sidecars.start(s)),
    }).then(
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
    this.bridge.setInternalHandler(handler);
  }

  async ready(hookSet: string, events: HookEvent[]): Promise<void> {
    const set = this.sets.get(hookSet);
    if (!set) return; // nothing loaded: load() returned its errors to the registry, which checks them
    // A build that failed for a reason other than the code is retried by the request itself (run()).
    if (set.state === 'failed' && set.retryable) return;
    const mine = events.filter((event) => set.files.has(event) || set.errors[event]);
    if (mine.length === 0) return;
    await awaitRunnable(set, mine, this.buildWaitMs, true);
  }

  async run(ctx: EventContext, scope?: unknown, hookSet: string = ctx.collection): Promise<RunResult> {
    const set = this.sets.get(hookSet);
    if (!set || (!set.files.has(ctx.event) && !set.errors[ctx.event])) return failedResult(`go hook ${set ? userFile(set, ctx.event) : `${ctx.collection}/${ctx.event}.go`} is not loaded`, 500);
    // A build or start that failed for a reason other than the code is tried again now.
    if (set.state === 'failed' && set.retryable && !set.closed && !this.closed) {
      this.options.log.info({ collection: set.collection }, 'building the Go hooks again after a failure');
      this.begin(set, true);
    }
    // Fail closed, for every event (AfterCommit included): the same answer as a load error.
    await awaitRunnable(set, [ctx.event], this.buildWaitMs, false);
    return callSidecar(set, ctx, scope, userFile(set, ctx.event), { sidecars: this.sidecars, bridge: this.bridge, log: this.options.log });
  }

  /** Each Go hook set's state, for /health (one entry per collection: its newest set). */
  buildStatus(): GoHookStatus[] {
    return buildStatus(this.sets.values());
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
}
