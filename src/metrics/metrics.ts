/**
 * Prometheus metrics (prom-client), one registry per server. Instrumentation stays at the edges:
 * the HTTP layer (an onResponse hook), the hook runner (a wrapper), and read-only views of the
 * real-time gateway, its history and the Go builds, sampled when `/metrics` is scraped.
 */
import client from 'prom-client';
import { DeploydError, Errors } from '../errors.js';
import type { HookLimits, HookRunner, HookSource, InternalHandler } from '../hooks/hook-runner.js';
import type { WorkerMemory } from '../hooks/js/js-runner.js';
import type { EventContext, HookEvent, HookResult } from '../hooks/protocol.js';
import type { EventLog, LogStats } from '../events/event-log.js';
import { FastCounter, FastHistogram } from './request-series.js';

/** What the gateway counts for us (src/realtime/gateway.ts `stats`). */
export interface GatewayStats {
  readonly connections: number;
  readonly stats: { delivered: number; dropped: number; slowClosed: number };
}

export type HookLanguage = 'js' | 'go';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class Metrics {
  readonly registry = new client.Registry();
  // Observed on every request: counted in plain numbers (./request-series.ts).
  private readonly requests = new FastCounter('dpd_http_requests_total', 'HTTP requests by collection (or route), method and status', ['collection', 'method', 'status'], this.registry);
  private readonly requestSeconds = new FastHistogram('dpd_http_request_duration_seconds', 'HTTP request latency by collection (or route) and method', ['collection', 'method'], LATENCY_BUCKETS, this.registry);
  // Observed on every hook run: plain numbers too (prom-client's labelled inc/observe cost 1.7 µs a run).
  private readonly hookCalls = new FastCounter(
    'dpd_hook_calls_total', 'Hook runs by language, event and outcome (ok; cancelled: cancel() with a message; error: a throw, crash or timeout)',
    ['language', 'event', 'outcome'], this.registry,
  );
  private readonly hookSeconds = new FastHistogram('dpd_hook_duration_seconds', 'Hook run time by language and event, IPC or gRPC included', ['language', 'event'], LATENCY_BUCKETS, this.registry);
  private readonly storeErrors = new client.Counter({
    name: 'dpd_store_errors_total',
    help: 'Requests that failed because the database was unreachable or busy, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  private readonly errors = new client.Counter({
    name: 'dpd_errors_total',
    help: 'Error answers by stable error code (DPD_ERR_*)',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  // Observed on every event.
  private readonly busLag = new FastHistogram(
    'dpd_realtime_bus_lag_seconds', 'From a commit to its event coming back from the bus for delivery (the Redis stream round trip with REDIS_URL)', [],
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5], this.registry,
  ).child();
  private readonly gaps = new client.Counter({
    name: 'dpd_realtime_resyncs_total',
    help: 'Times the history could not vouch for missed events and every client was asked to refetch',
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'dpd_process_' });
  }

  /** Called for every answered HTTP request; `route` is the collection, or a fixed route name. */
  request(route: string, method: string, status: number, seconds: number): void {
    const key = `${route}\u0000${method}\u0000${status}`;
    let series = this.requestSeries.get(key);
    if (!series) {
      series = { count: this.requests.child(route, method, String(status)), seconds: this.requestSeconds.child(route, method) };
      this.requestSeries.set(key, series);
    }
    series.count.inc();
    series.seconds.observe(seconds);
  }

  /** Per route, method and status, the request series (looked up once, not per request). */
  private readonly requestSeries = new Map<string, { count: { inc(): void }; seconds: { observe(value: number): void } }>();

  error(err: unknown): void {
    if (!(err instanceof DeploydError)) return;
    this.errors.inc({ code: err.code });
    if (err.code === Errors.storeBusy.code || err.code === Errors.storeUnavailable.code) this.storeErrors.inc({ code: err.code });
  }

  /** Wraps a runner so every hook run is counted and timed, by the language that ran it. */
  meterRunner(runner: HookRunner, languageOf: (ctx: EventContext, hookSet?: string) => HookLanguage): HookRunner {
    const metrics = this;
    return {
      load: (hookSet: string, hooks: HookSource[], limits: HookLimits) => runner.load(hookSet, hooks, limits),
      unload: (hookSet: string) => runner.unload(hookSet),
      setCollections: (names: string[]) => runner.setCollections(names),
      setInternalHandler: (handler: InternalHandler) => runner.setInternalHandler(handler),
      close: () => runner.close(),
      // Everything else a runner answers passes straight through (readiness before a write, status).
      ready: runner.ready ? (hookSet: string, events: HookEvent[]) => runner.ready!(hookSet, events) : undefined,
      status: runner.status ? () => runner.status!() : undefined,
      async run(ctx: EventContext, scope?: unknown, hookSet?: string): Promise<HookResult> {
        const language = languageOf(ctx, hookSet);
        const started = performance.now();
        let outcome = 'error';
        try {
          const result = await runner.run(ctx, scope, hookSet);
          outcome = !result.cancel ? 'ok' : result.cancel.isError || result.cancel.status >= 500 ? 'error' : 'cancelled';
          return result;
        } finally {
          metrics.hookCalls.child(language, ctx.event, outcome).inc();
          metrics.hookSeconds.child(language, ctx.event).observe((performance.now() - started) / 1000);
        }
      },
    };
  }

  /** Connections, frames and closes of the WebSocket gateway, read at scrape time. */
  observeGateway(gateway: GatewayStats): void {
    const gauge = (name: string, help: string, read: () => number) => new client.Gauge({
      name, help, registers: [this.registry],
      collect() { this.set(read()); },
    });
    gauge('dpd_ws_connections', 'Open WebSocket connections on this instance', () => gateway.connections);
    counter(this.registry, 'dpd_ws_deliveries_total', 'Frames sent to WebSocket clients (events and control messages)', () => gateway.stats.delivered);
    counter(this.registry, 'dpd_ws_drops_total', 'Frames not sent because the client had gone or was too slow', () => gateway.stats.dropped);
    counter(this.registry, 'dpd_ws_backpressure_closes_total', 'Clients closed with 1013 because too much was waiting for them', () => gateway.stats.slowClosed);
  }

  /** History size and bytes, bus status and lag. */
  observeHistory(history: EventLog): void {
    const registry = this.registry;
    let last: Promise<LogStats> | undefined;
    // One read per scrape for the two gauges (with Redis it is a round trip): a scrape starts every
    // gauge's collect() before any read settles, so the read is shared until it settles, never after
    // (a later scrape must see later events).
    const read = () => (last ??= history.stats().finally(() => { last = undefined; }));
    new client.Gauge({ name: 'dpd_realtime_history_events', help: 'Events kept for resuming (?since=)', registers: [registry], async collect() { this.set((await read()).events); } });
    new client.Gauge({ name: 'dpd_realtime_history_bytes', help: 'Approximate bytes the kept events take', registers: [registry], async collect() { this.set((await read()).bytes); } });
    new client.Gauge({
      name: 'dpd_realtime_bus_up', help: '1 while the shared bus (Redis) is reachable or in-process, 0 while degraded', registers: [registry],
      collect() { this.set(history.status() === 'degraded' ? 0 : 1); },
    });
    history.subscribe({
      event: ({ message }) => {
        const at = 'timestamp' in message ? Date.parse(message.timestamp) : NaN;
        if (Number.isFinite(at)) this.busLag.observe(Math.max(0, Date.now() - at) / 1000);
      },
      gap: () => this.gaps.inc(),
    });
  }

  /** Go hook sets by build state (loading: building or starting; ready; failed: compile or start error). */
  observeGoBuilds(states: () => Record<'loading' | 'ready' | 'failed', number>): void {
    new client.Gauge({
      name: 'dpd_go_hook_sets', help: 'Collections\' Go hook programs by build state', labelNames: ['state'] as const, registers: [this.registry],
      collect() {
        for (const [state, n] of Object.entries(states())) this.set({ state }, n);
      },
    });
  }

  /** The JavaScript hook workers' memory and their isolates' heaps, read at scrape time. */
  observeHookWorkers(read: () => Promise<WorkerMemory[]>): void {
    const registry = this.registry;
    let last: Promise<WorkerMemory[]> | undefined;
    // One query of the workers per scrape for the three gauges.
    const once = () => (last ??= read().finally(() => { last = undefined; }));
    new client.Gauge({
      name: 'dpd_hook_worker_rss_bytes', help: 'Resident memory of each JavaScript hook worker process (shared pages counted in each)', labelNames: ['pid', 'role'] as const, registers: [registry],
      async collect() {
        this.reset();
        for (const w of await once()) this.set({ pid: String(w.pid), role: w.role }, w.rssBytes);
      },
    });
    new client.Gauge({
      name: 'dpd_hook_worker_pss_bytes', help: 'Proportional memory of each JavaScript hook worker (shared pages split between the processes sharing them; Linux)', labelNames: ['pid', 'role'] as const, registers: [registry],
      async collect() {
        this.reset();
        for (const w of await once()) if (w.pssBytes !== undefined) this.set({ pid: String(w.pid), role: w.role }, w.pssBytes);
      },
    });
    new client.Gauge({
      name: 'dpd_hook_isolate_heap_bytes', help: 'Used heap of each hook isolate (one per hook set and worker), from isolated-vm getHeapStatistics', labelNames: ['hook_set', 'pid'] as const, registers: [registry],
      async collect() {
        this.reset();
        for (const w of await once()) for (const i of w.isolates) this.set({ hook_set: i.hookSet, pid: String(w.pid) }, i.usedHeapBytes + i.externalBytes);
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A counter whose value lives elsewhere (a monotonic number read at scrape time). */
function counter(registry: client.Registry, name: string, help: string, read: () => number): void {
  new client.Counter({
    name, help, registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}
