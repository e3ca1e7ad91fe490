/**
 * Composition root: wires the store, the collection registry, authentication and the HTTP routes.
 * Nothing here has behaviour of its own.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import cors from '@fastify/cors';
import fastifyStatic from '@fastify/static';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { adminRoutes } from './admin/admin-routes.js';
import { dashboardRoutes } from './admin/dashboard-routes.js';
import { EventMonitor } from './admin/monitor.js';
import type { ClusterPresence } from './admin/presence.js';
import { RecentLogs } from './admin/recent-logs.js';
import { installBodyParsers } from './api/body-parsers.js';
import { clientRoutes } from './api/client-routes.js';
import { metricsRoutes } from './api/metrics-routes.js';
import { openApiRoutes } from './api/openapi.js';
import { collectionRoutes } from './api/collection-routes.js';
import { clientErrorHandler, frameworkErrorHandler, installErrorHandling } from './api/error-handler.js';
import { authRoutes } from './api/auth-routes.js';
import { Authenticator } from './auth/authenticator.js';
import { LoginThrottle, RedisLedger } from './auth/login-throttle.js';
import { Sessions } from './auth/sessions.js';
import { loadMasterKey, type MasterKey } from './auth/master-key.js';
import type { EventLog } from './events/event-log.js';
import { LocalEventLog } from './events/local-log.js';
import { internalClient } from './collections/internal-client.js';
import { collectionReadAccess } from './collections/read-access.js';
import { Registry } from './collections/registry.js';
import { DEFAULT_HOOK_LIMITS, type HookLimits } from './hooks/hook-runner.js';
import { CompositeRunner } from './hooks/composite-runner.js';
import { ReportingRunner } from './hooks/reporting-runner.js';
import { DEFAULT_SDK_DIR, GoHookRunner } from './hooks/go/go-runner.js';
import { defaultHookWorkers, JsHookRunner } from './hooks/js/js-runner.js';
import { DEFAULT_QUERY_LIMITS } from './query/filter.js';
import { readRealtimeConfig } from './realtime/config.js';
import { RealtimeGateway } from './realtime/gateway.js';
import { Metrics } from './metrics/metrics.js';
import { openStore } from './store/open-store.js';
import { Errors } from './errors.js';
import { defaultLogFormat, logStream, type LogFormat } from './logging.js';
import type { Store } from './store/store.js';

export interface ServerOptions {
  appDir: string;
  port?: number;
  host?: string;
  dev?: boolean;
  /** Largest request body in bytes. */
  maxBody?: number;
  /** `--db` / `DATABASE_URL`; the embedded SQLite file when absent. */
  databaseUrl?: string;
  /** `MASTER_KEY`; generated into .deployd/security.json when absent. */
  masterKey?: string;
  /** CORS allow-list; any origin is echoed when empty (Deployd). */
  corsOrigins?: string[];
  /** Largest `$limit` (and the default page size). */
  maxLimit?: number;
  logLevel?: string;
  /** `json` (default when stdout is not a terminal) or `pretty` (a terminal, or --dev). */
  logFormat?: LogFormat;
  /** Trust X-Forwarded-* from a proxy in front (TLS termination, client addresses for throttling). */
  trustProxy?: boolean;
  /** Watch resources/ for config and hook changes (on by default). */
  watch?: boolean;
  /** The watcher's safety-net sweep: re-read resources/ this often (default 2000 ms; 0: off; env DEPLOYD_WATCH_SWEEP_MS). */
  watchSweepMs?: number;
  /** File-system change events (default on; env DEPLOYD_WATCH_EVENTS=off leaves only the sweep, for mounts that report no changes). */
  watchEvents?: boolean;
  /** Defaults for every hook event: wall time and sandbox heap. */
  hookLimits?: Partial<HookLimits>;
  /** Hook worker processes (default 2). */
  hookWorkers?: number;
  /** `REDIS_URL`: share real-time events with every instance using the same Redis. */
  redisUrl?: string;
  /** Serve Prometheus metrics at /metrics (on by default; `--no-metrics`). */
  metrics?: boolean;
  /** `METRICS_TOKEN`: a Bearer token that may read /metrics (besides the master key). */
  metricsToken?: string;
  /** `INSTANCE_ID`: this instance's name in the dashboard (default host:port). */
  instanceId?: string;
}

export interface DeploydServer {
  app: FastifyInstance;
  store: Store;
  /** Committed changes and hook emits, after each successful request (every instance's, with Redis). */
  events: EventLog;
  registry: Registry;
  masterKey: MasterKey;
  /** This instance's name (INSTANCE_ID, else host:port). */
  instance(): string;
  listen(): Promise<string>;
  close(): Promise<void>;
}

const MAX_DEPTH = 32;

/** deployd-ts's own version (package.json), for the OpenAPI document. */
export function packageVersion(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}
/** How long a start waits for Redis before serving with real-time on this instance only. */
const REDIS_START_TIMEOUT_MS = 3000;

/** The Redis side (ioredis, ~10 MiB resident), loaded only with REDIS_URL. */
async function loadRedis() {
  const [{ Redis }, { RedisEventLog }, { connectionOptions }, { ClusterPresence }] = await Promise.all([
    import('ioredis'), import('./events/redis-log.js'), import('./events/redis-stream.js'), import('./admin/presence.js'),
  ]);
  return { Redis, RedisEventLog, connectionOptions, ClusterPresence };
}

export async function createServer(options: ServerOptions): Promise<DeploydServer> {
  const appDir = path.resolve(options.appDir);
  const dev = options.dev ?? false;
  const bodyLimit = options.maxBody ?? 1024 * 1024;
  const limits = { ...DEFAULT_QUERY_LIMITS, maxLimit: options.maxLimit ?? DEFAULT_QUERY_LIMITS.maxLimit };

  const stream = await logStream(options.logFormat ?? defaultLogFormat(dev));
  const app = Fastify({
    bodyLimit,
    requestTimeout: 30_000,
    logController: new LogController({ disableRequestLogging: !dev }),
    return503OnClosing: true,
    trustProxy: options.trustProxy ?? false,
    frameworkErrors: frameworkErrorHandler({ bodyLimit }),
    clientErrorHandler,
    routerOptions: { querystringParser: () => ({}) }, // collection routes parse the raw query string themselves
    logger: {
      level: options.logLevel ?? 'info',
      ...(stream ? { stream } : {}),
      redact: {
        paths: ['req.headers["x-master-key"]', 'req.headers["dpd-ssh-key"]', 'req.headers.authorization', 'req.headers.cookie'],
        censor: '[redacted]',
      },
    },
  });

  const startedAt = new Date();
  const instanceId = options.instanceId ?? (process.env.INSTANCE_ID || undefined);
  // Asked once per real-time event (the dashboard monitor): the name is fixed once listening.
  let listeningName: string | undefined;
  const instance = (): string => {
    if (instanceId) return instanceId;
    if (listeningName) return listeningName;
    const port = (app.server.address() as AddressInfo | null)?.port;
    if (port === undefined) return `${os.hostname()}:${options.port ?? 2403}`;
    return (listeningName = `${os.hostname()}:${port}`);
  };
  // What collections and hooks log is also kept for the dashboard's log view.
  const recentLogs = new RecentLogs();
  const appLog = recentLogs.tap(app.log);
  const masterKey = loadMasterKey(appDir, options.masterKey);
  const store = await openStore(options.databaseUrl, appDir, (level, message) => app.log[level](message));
  // Go hooks (`<event>.go`): built into .deployd/build, sidecar sockets in a private directory
  // created on first use; nothing Go-related runs for an app without .go files.
  let socketDir: string | undefined;
  const goRunner = new GoHookRunner({
    buildDir: path.join(appDir, '.deployd', 'build'),
    sdkDir: DEFAULT_SDK_DIR,
    get socketDir() {
      socketDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-sock-'));
      return socketDir;
    },
    log: appLog,
  });
  const realtime = readRealtimeConfig(appDir);
  const redisUrl = options.redisUrl ?? (process.env.REDIS_URL || undefined);
  const redis = redisUrl ? await loadRedis() : undefined;
  // One log of everything committed: with REDIS_URL shared by every instance (a Redis Stream, so
  // the real-time gateway delivers every instance's events and resumes from any), else in-process.
  // Without real-time it keeps nothing: no one reads it but in-process observers.
  const redisLog = realtime.enabled && redis && redisUrl
    ? new redis.RedisEventLog({ url: redisUrl, size: realtime.historySize, maxAgeMs: realtime.historyMaxAgeMs, maxBytes: realtime.historyMaxBytes, log: app.log })
    : undefined;
  const events: EventLog = redisLog ?? new LocalEventLog({
    size: realtime.enabled ? realtime.historySize : 0, maxAgeMs: realtime.historyMaxAgeMs, maxBytes: realtime.historyMaxBytes, log: app.log,
  });
  const jsRunner = new JsHookRunner(options.hookWorkers ?? defaultHookWorkers(), appLog);
  const composite = new CompositeRunner(jsRunner, goRunner);
  const metrics = options.metrics === false ? undefined : new Metrics();
  const runner = new ReportingRunner(metrics ? metrics.meterRunner(composite, (ctx, hookSet) => composite.languageOf(ctx, hookSet)) : composite, appLog, realtime.maxEventBytes);
  const hookLimits = { ...DEFAULT_HOOK_LIMITS, ...options.hookLimits };
  const sessions = new Sessions(store);
  // With Redis, failed logins are counted there, so the throttle's limit holds across instances.
  const throttleRedis = redis && redisUrl ? new redis.Redis(redisUrl, { ...redis.connectionOptions(), lazyConnect: false, commandTimeout: 1000, connectionName: 'deployd-login-throttle' }) : undefined;
  throttleRedis?.on('error', () => {}); // reported by the throttle when a login needs it
  const throttle = new LoginThrottle(throttleRedis ? new RedisLedger(throttleRedis) : undefined, app.log);
  const registry = new Registry(appDir, { store, bus: events, runner, limits, hookLimits, sessions, throttle }, appLog);
  const auth = new Authenticator(masterKey, dev, sessions, registry);
  runner.setInternalHandler(internalClient(registry));
  await registry.load();
  // An app with Go hooks cannot run without the Go toolchain (unless every sidecar is already
  // built): say so at start rather than failing those requests one by one.
  const needsGo = goRunner.toolchainMissing();
  if (needsGo.length > 0) {
    await registry.close();
    await runner.close();
    throttleRedis?.disconnect();
    await events.close();
    await store.close();
    throw new Error(`this app has Go hooks but the Go toolchain (go 1.26+) is not installed: install Go, or remove the .go hook files. ${needsGo.join('; ')}`);
  }
  if (options.watch !== false) {
    const sweep = Number(process.env.DEPLOYD_WATCH_SWEEP_MS);
    registry.watch({
      sweepMs: options.watchSweepMs ?? (process.env.DEPLOYD_WATCH_SWEEP_MS && sweep >= 0 ? sweep : undefined),
      events: options.watchEvents ?? !/^(0|off|false|no)$/i.test(process.env.DEPLOYD_WATCH_EVENTS ?? ''),
      emptySettleMs: Number(process.env.DEPLOYD_WATCH_EMPTY_SETTLE_MS) > 0 ? Number(process.env.DEPLOYD_WATCH_EMPTY_SETTLE_MS) : undefined,
    });
  }

  installErrorHandling(app, { dev, bodyLimit });
  installBodyParsers(app, { maxDepth: MAX_DEPTH });

  const allowList = options.corsOrigins?.filter(Boolean) ?? [];
  await app.register(cors, {
    origin: allowList.length > 0 ? allowList : true,
    credentials: true,
    methods: ['GET', 'POST', 'PUT', 'DELETE'],
    allowedHeaders: ['Content-Type', 'X-Requested-With', 'Authorization', 'X-Session-Token'],
    exposedHeaders: ['X-Session-Token', 'X-Session-Invalidated'],
    maxAge: 300,
    strictPreflight: false, // an OPTIONS without Origin gets a plain 204, not a text/plain 400
  });

  const publicDir = path.join(appDir, 'public');
  let serveStatic: ((request: FastifyRequest, reply: FastifyReply, segments: string[]) => Promise<boolean>) | undefined;
  if (fs.existsSync(publicDir)) {
    await app.register(fastifyStatic, { root: publicDir, serve: false });
    serveStatic = async (_request, reply, segments) => {
      if (segments.some((s) => s === '..' || s.includes('/') || s.includes('\\') || s.includes('\0'))) return false;
      let relative = segments.join('/');
      const full = path.join(publicDir, relative);
      const stat = await fs.promises.stat(full).catch(() => undefined);
      if (stat?.isDirectory()) relative = path.posix.join(relative, 'index.html');
      else if (!stat?.isFile()) return false;
      if (!fs.existsSync(path.join(publicDir, relative))) return false;
      await reply.sendFile(relative);
      return true;
    };
  }

  // While shutting down, answers in flight close their connection so keep-alive clients do not
  // hold the process open past the grace period.
  let shuttingDown = false;
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (shuttingDown) reply.header('Connection', 'close');
    done(null, payload);
  });

  let gateway: RealtimeGateway | undefined;
  // What the real-time side reports on (/health, /_admin/status, /metrics): the log, when real-time is on.
  const history: EventLog | undefined = realtime.enabled ? events : undefined;
  let monitor: EventMonitor | undefined;
  let presence: ClusterPresence | undefined;
  if (realtime.enabled) {
    await redisLog?.start(REDIS_START_TIMEOUT_MS); // starts degraded (and keeps trying) when Redis does not answer
    gateway = new RealtimeGateway(realtime, events, collectionReadAccess(registry), auth, app.log);
    gateway.attach(app.server);
    const [connections, watched] = [gateway, (monitor = new EventMonitor(gateway, instance))];
    if (redis && redisUrl) {
      presence = new redis.ClusterPresence(redisUrl, () => ({ instance: instance(), at: new Date().toISOString(), connections: connections.snapshot() }), () => watched.watching, app.log);
      monitor.joinCluster(presence);
    }
  }
  if (metrics) {
    await metricsRoutes(app, { metrics, registry, masterKey, token: options.metricsToken });
    if (gateway) metrics.observeGateway(gateway);
    if (history) metrics.observeHistory(history);
    metrics.observeGoBuilds(() => goRunner.states());
    metrics.observeHookWorkers(() => jsRunner.memory());
  }
  if (gateway) {
    app.get('/ws', async (_request, reply) => {
      reply.code(426).header('Upgrade', 'websocket');
      return Errors.upgradeRequired().toJSON();
    });
  }

  // 200 while the process serves requests: a balancer must not drop every instance when Redis is
  // down (`bus` says whether events reach the other instances). 503 when the store is down
  // (MongoDB unreachable: every store operation answers 503 until it returns).
  app.get('/health', async (_request, reply) => {
    const storeStatus = store.status();
    const busStatus = history?.status() ?? 'in-process';
    if (storeStatus === 'down') reply.code(503);
    const healthy = storeStatus === 'up' && busStatus !== 'degraded';
    // Go hooks: each collection's building / ready / failed (+ why), so a slow first build is visible.
    const goHooks = goRunner.buildStatus();
    return {
      status: healthy ? 'ok' : 'degraded', store: storeStatus, bus: busStatus, collections: registry.list().length, realtimeConnections: gateway?.connections ?? 0,
      ...(goHooks.length ? { goHooks } : {}),
    };
  });
  await app.register(adminRoutes, { registry, auth, masterKey, sessions, throttle, store, runner, limits, logs: recentLogs, instance, startedAt, gateway, history, monitor, presence });
  await app.register(dashboardRoutes);
  await app.register(clientRoutes, { registry });
  await app.register(openApiRoutes, { registry, info: { title: `${path.basename(appDir)} (deployd-ts)`, version: packageVersion() } });
  await app.register(authRoutes, { registry, auth });
  await app.register(collectionRoutes, { registry, auth, limits, serveStatic });

  let closing: Promise<void> | undefined;
  return {
    app,
    store,
    events,
    registry,
    masterKey,
    instance,
    async listen() {
      // The CLI prints one start-up line itself; fastify's per-interface lines would repeat it.
      const level = app.log.level;
      app.log.level = 'warn';
      try {
        return await app.listen({ port: options.port ?? 2403, host: options.host ?? '0.0.0.0' });
      } finally {
        app.log.level = level;
      }
    },
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        monitor?.close();
        await presence?.close();
        await gateway?.close();
        await events.close();
        const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
        try {
          await app.close();
        } finally {
          clearInterval(sweep);
        }
        await registry.close();
        await runner.close();
        throttleRedis?.disconnect();
        if (socketDir) fs.rmSync(socketDir, { recursive: true, force: true });
        await store.close();
      })();
      return closing;
    },
  };
}
