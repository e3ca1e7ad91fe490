/**
 * The admin API under `/_admin/` (what the dashboard uses), for root only: the master key
 * (`X-Master-Key`) or a dashboard login (`POST /_admin/login` with the master key → a root session
 * token, sent as `Authorization: Bearer`). Anyone else gets 401 (no or wrong credentials) or 403
 * (a logged-in user), on every path, so the API's shape is not discoverable.
 *
 *   POST /_admin/login {masterKey} → {token, expiresAt}      POST /_admin/logout
 *   GET  /_admin/status       instance, store, bus, collections, hook workers and Go sidecars
 *   GET|POST /_admin/collections              GET|PUT|DELETE /_admin/collections/:name
 *   GET  /_admin/collections/:name/hooks      PUT|DELETE /_admin/collections/:name/hooks/:file
 *   ANY  /_admin/collections/:name/documents[/…]   the collection's REST API, as root
 *   GET  /_admin/realtime     connections (with their instance) and rooms
 *   GET  /_admin/events       recent real-time events with their audience; /_admin/monitor streams them
 *   GET  /_admin/logs?after=n recent collection and hook log lines
 *
 * A collection name with folders is one URL segment (`shop%2Forders`). Every change to resources/
 * is written to a temporary file and renamed into place, applied by a reload, and undone (with a
 * 400 saying why) when the server cannot load the result.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ROOT, type Authenticator } from '../auth/authenticator.js';
import type { LoginThrottle } from '../auth/login-throttle.js';
import type { MasterKey } from '../auth/master-key.js';
import { ROOT_SESSIONS, sessionIdOf, type Sessions } from '../auth/sessions.js';
import { RawJson, type Collection } from '../collections/collection.js';
import { dispatch } from '../collections/dispatch.js';
import type { CollectionEntry, Registry } from '../collections/registry.js';
import { isValidCollectionName, parseSchema } from '../core/schema.js';
import { DeploydError, Errors } from '../errors.js';
import { isGoHook } from '../hooks/composite-runner.js';
import { DEFAULT_HOOK_LIMITS, type HookRunner, type RunnerStatus } from '../hooks/hook-runner.js';
import { HOOK_EVENTS, type HookEvent } from '../hooks/protocol.js';
import type { QueryLimits } from '../query/filter.js';
import type { RealtimeGateway } from '../realtime/gateway.js';
import type { EventLog } from '../events/event-log.js';
import type { Store } from '../store/store.js';
import { parseSearch, splitUrl } from '../api/request-input.js';
import { requestScope } from '../api/collection-routes.js';
import { readIfExists, restore, writeFileAtomic } from './atomic-files.js';
import type { EventMonitor } from './monitor.js';
import type { ClusterPresence } from './presence.js';
import type { RecentLogs } from './recent-logs.js';

export interface AdminOptions {
  registry: Registry;
  auth: Authenticator;
  masterKey: MasterKey;
  sessions: Sessions;
  /** The server's login throttle (shared through Redis when there is one). */
  throttle: LoginThrottle;
  store: Store;
  runner: HookRunner;
  limits: QueryLimits;
  logs: RecentLogs;
  /** This instance's name (INSTANCE_ID, else host:port). */
  instance: () => string;
  startedAt: Date;
  gateway?: RealtimeGateway;
  history?: EventLog;
  monitor?: EventMonitor;
  /** With Redis: every instance's connections. */
  presence?: ClusterPresence;
}

/** A dashboard login lasts this long without use. */
const ROOT_SESSION_IDLE_MS = 8 * 60 * 60_000;
/** Wrong master keys per client address within the window before 429. */
const LOGIN_THROTTLE = { maxFailuresPerUser: Number.MAX_SAFE_INTEGER, maxFailuresPerAddress: 10, windowMs: 15 * 60_000 };
const MAX_HOOK_BYTES = 256 * 1024;
/** How long a hook save waits for a Go build before answering that it is still building. */
const GO_SAVE_WAIT_MS = Number(process.env.DEPLOYD_GO_SAVE_WAIT_MS) > 0 ? Number(process.env.DEPLOYD_GO_SAVE_WAIT_MS) : 60_000;
/** Top-level paths the server answers itself: a collection there would never be reached. */
const RESERVED = new Set(['dashboard', 'auth', 'ws', 'health']);
const HOOK_FILE = new RegExp(`^(${HOOK_EVENTS.join('|')})\\.(js|go)$`);

export async function adminRoutes(app: FastifyInstance, options: AdminOptions): Promise<void> {
  const { registry, auth, sessions, runner, throttle } = options;
  // One change to resources/ at a time: each is checked against the state the one before left.
  let changes: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = changes.then(fn);
    changes = next.catch(() => {});
    return next;
  };

  app.addHook('onSend', async (_request, reply) => {
    reply.header('Cache-Control', 'no-store');
    reply.header('X-Deployd-Instance', options.instance());
  });

  // On the headers alone: a caller who is not root is answered before any body is read.
  app.addHook('onRequest', async (request) => {
    if ((request.routeOptions.config as { public?: boolean } | undefined)?.public === true) return;
    const identity = await auth.identify(request.headers); // a wrong master key is a 401 here
    if (identity.caller.isRoot) return;
    if (identity.caller.me) throw Errors.forbidden('the admin API is for root only: log in to the dashboard with the master key');
    throw Errors.unauthorized('the admin API needs the master key (X-Master-Key) or a dashboard login');
  });

  // ---- login ------------------------------------------------------------------------------------

  app.post('/_admin/login', { config: { public: true } }, async (request) => {
    // Counted with the users' logins from the same address (one budget per address).
    const attempt = await throttle.begin(LOGIN_THROTTLE, '/_admin', request.ip);
    const body = request.body as { masterKey?: unknown } | undefined;
    const key = typeof body?.masterKey === 'string' ? body.masterKey : '';
    if (key === '' || !options.masterKey.matches(key)) throw Errors.unauthorized('wrong master key');
    await attempt.succeeded();
    const { token, session } = await sessions.create(ROOT_SESSIONS, 'root', ROOT_SESSION_IDLE_MS);
    return { token, idleMinutes: ROOT_SESSION_IDLE_MS / 60_000, expiresAt: new Date(session.lastActive + session.idleMs).toISOString(), instance: options.instance() };
  });

  app.post('/_admin/logout', async (request) => {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(String(request.headers.authorization ?? ''))?.[1];
    const ended = token ? await sessions.end(sessionIdOf(token)) : false;
    return { ended };
  });

  app.get('/_admin/session', async () => ({ root: true, instance: options.instance() }));

  // ---- status -----------------------------------------------------------------------------------

  app.get('/_admin/status', async () => {
    const hooks = (runner.status?.() ?? {}) as Partial<RunnerStatus>;
    return {
      instance: options.instance(),
      startedAt: options.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - options.startedAt.getTime()) / 1000),
      node: process.version,
      store: options.store.status(),
      bus: options.history?.status() ?? (options.gateway ? 'in-process' : 'off'),
      realtime: { enabled: options.gateway !== undefined, connections: options.gateway?.connections ?? 0 },
      collections: registry.list().map(summary),
      hooks: { workers: hooks.workers ?? [], sidecars: hooks.sidecars ?? [] },
    };
  });

  // ---- collections ------------------------------------------------------------------------------

  app.get('/_admin/collections', async () => registry.list().map(summary).sort((a, b) => a.name.localeCompare(b.name)));

  app.get<{ Params: { name: string } }>('/_admin/collections/:name', async (request) => {
    const entry = existing(registry, request.params.name);
    const text = await readIfExists(entry.configFile);
    let config: unknown = null;
    try {
      config = text === undefined ? null : JSON.parse(text);
    } catch {
      // shown as `source` with the error below
    }
    return { ...summary(entry), config, source: text ?? null };
  });

  app.post('/_admin/collections', async (request, reply) => {
    const body = objectBody(request.body);
    const name = collectionName(body.name);
    const text = configText(name, body.config ?? { type: 'Collection', properties: {} });
    const entry = await serially(async () => {
      if (registry.get(name)) throw Errors.conflict(`collection "${name}" exists already`);
      const file = path.join(registry.resourcesDir, name, 'config.json');
      if (fs.existsSync(file)) throw Errors.conflict(`${path.relative(path.dirname(registry.resourcesDir), file)} exists already`);
      await applyOrUndo(registry, file, text, () => registry.get(name)?.error?.message ?? (registry.get(name) ? undefined : 'the server did not load it'));
      return registry.get(name)!;
    });
    reply.code(201);
    return summary(entry);
  });

  app.put<{ Params: { name: string } }>('/_admin/collections/:name', async (request) => {
    const name = request.params.name;
    const body = objectBody(request.body);
    const text = configText(name, body.config);
    return serially(async () => {
      const entry = existing(registry, name);
      await applyOrUndo(registry, entry.configFile, text, () => registry.get(name)?.error?.message);
      return summary(registry.get(name)!);
    });
  });

  app.delete<{ Params: { name: string } }>('/_admin/collections/:name', async (request) => {
    const name = request.params.name;
    return serially(async () => {
      const entry = existing(registry, name);
      const dir = path.dirname(entry.configFile);
      // Removing config.json is the one atomic step that ends the collection; its hooks go after.
      await fs.promises.rm(entry.configFile, { force: true });
      for (const event of HOOK_EVENTS) {
        for (const ext of ['js', 'go']) await fs.promises.rm(path.join(dir, `${event}.${ext}`), { force: true });
      }
      await fs.promises.rmdir(dir).catch(() => {}); // kept when it holds nested collections or other files
      await registry.reload();
      return { deleted: name, note: 'the stored documents are kept; creating the collection again shows them' };
    });
  });

  // ---- hooks ------------------------------------------------------------------------------------

  app.get<{ Params: { name: string } }>('/_admin/collections/:name/hooks', async (request) => {
    const entry = existing(registry, request.params.name);
    const dir = path.dirname(entry.configFile);
    const errors = entry.collection?.hooks.errors ?? {};
    const hooks = [];
    for (const event of HOOK_EVENTS) {
      for (const language of ['js', 'go'] as const) {
        const source = await readIfExists(path.join(dir, `${event}.${language}`));
        if (source !== undefined) hooks.push({ event, language, file: `${entry.name}/${event}.${language}`, source, error: errors[event] ?? null });
      }
    }
    return { collection: entry.name, events: HOOK_EVENTS, hooks };
  });

  app.put<{ Params: { name: string; file: string } }>('/_admin/collections/:name/hooks/:file', async (request) => {
    const { name, file } = request.params;
    const match = HOOK_FILE.exec(file);
    if (!match) throw Errors.badRequest(`hook files are <event>.js or <event>.go, with an event of ${HOOK_EVENTS.join(', ')}`);
    const event = match[1] as HookEvent;
    const body = objectBody(request.body);
    if (typeof body.source !== 'string') throw Errors.badRequest('"source" must be the hook\'s text');
    if (Buffer.byteLength(body.source) > MAX_HOOK_BYTES) throw Errors.badRequest(`a hook file can be at most ${MAX_HOOK_BYTES / 1024} KB`);
    const source = body.source;
    return serially(async () => {
      const entry = existing(registry, name);
      if (entry.error) throw Errors.changeRefused(`fix the collection's config first: ${entry.error.message}`);
      const hook = { event, file: `${entry.name}/${file}`, source };
      // JavaScript is compiled in a scratch set first: a broken file is refused before it is written.
      if (!isGoHook(hook)) {
        const scratch = `admin-check:${entry.name}:${Date.now()}`;
        try {
          const errors = await runner.load(scratch, [hook], DEFAULT_HOOK_LIMITS);
          if (errors[event]) throw Errors.changeRefused(errors[event]!);
        } finally {
          runner.unload(scratch);
        }
      }
      const target = path.join(path.dirname(entry.configFile), file);
      let building = false;
      await applyOrUndo(registry, target, source, async () => {
        const error = registry.get(name)?.error?.message ?? registry.get(name)?.collection?.hooks.errors[event];
        if (error || !isGoHook(hook)) return error;
        // Go: the build is the check. One still running after the wait is accepted as "building".
        const state = await goState(runner, registry, name, event);
        building = state === 'loading';
        return state === 'ready' || building ? undefined : state;
      });
      return { file: hook.file, event, loaded: !building, state: building ? 'building' : 'ready' };
    });
  });

  app.delete<{ Params: { name: string; file: string } }>('/_admin/collections/:name/hooks/:file', async (request) => {
    const { name, file } = request.params;
    if (!HOOK_FILE.test(file)) throw Errors.badRequest(`hook files are <event>.js or <event>.go, with an event of ${HOOK_EVENTS.join(', ')}`);
    return serially(async () => {
      const entry = existing(registry, name);
      const target = path.join(path.dirname(entry.configFile), file);
      if ((await readIfExists(target)) === undefined) throw Errors.notFound();
      await fs.promises.rm(target);
      await registry.reload();
      return { deleted: `${entry.name}/${file}` };
    });
  });

  // ---- documents: the collection's own REST API, as root ----------------------------------------

  const documents = async (request: FastifyRequest<{ Params: { name: string; '*'?: string } }>) => {
    const entry = existing(registry, request.params.name);
    if (entry.error) throw entry.error;
    const collection = entry.collection as Collection;
    const { search } = splitUrl(request.raw.url ?? '/');
    const rest = (request.params['*'] ?? '').split('/').filter(Boolean);
    const { raw: query, json } = parseSearch(search, options.limits.maxDepth);
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    const scope = requestScope(request, { caller: ROOT }, `${method} /${collection.name}`, query, request.body);
    const answer = await dispatch(collection, scope, { method, rest, query, source: json ? 'json' : 'url', body: request.body, address: request.ip });
    for (const publish of scope.outbox) publish();
    return answer.body instanceof RawJson ? JSON.parse(answer.body.text) : answer.body ?? null;
  };
  for (const url of ['/_admin/collections/:name/documents', '/_admin/collections/:name/documents/*']) {
    app.route({ method: ['GET', 'POST', 'PUT', 'DELETE'], url, handler: documents });
  }

  // ---- real-time, events, logs ------------------------------------------------------------------

  app.get('/_admin/realtime', async () => {
    const local = { instance: options.instance(), at: new Date().toISOString(), connections: options.gateway?.snapshot() ?? [] };
    const { instances, complete } = options.presence ? await options.presence.all() : { instances: [local], complete: true };
    const rooms: Record<string, number> = {};
    for (const instance of instances) {
      for (const connection of instance.connections) for (const room of connection.rooms) rooms[room] = (rooms[room] ?? 0) + 1;
    }
    // complete: false when Redis does not answer (only this instance is listed).
    return { instance: options.instance(), enabled: options.gateway !== undefined, clustered: options.presence !== undefined, complete, instances, rooms };
  });

  app.get('/_admin/events', async () => options.monitor?.entries() ?? []);

  app.get('/_admin/monitor', async (request, reply) => {
    if (!options.monitor) throw new DeploydError('DPD_ERR_REALTIME_OFF', 409, 'real-time is turned off in .deployd/realtime.json');
    reply.hijack();
    options.monitor.stream(reply.raw);
  });

  app.get('/_admin/logs', async (request) => {
    const after = Number(new URLSearchParams(splitUrl(request.raw.url ?? '/').search).get('after') ?? 0);
    return options.logs.after(Number.isFinite(after) ? after : 0);
  });

  // Anything else under /_admin/ is a 404 only for root (the guard above answers everyone else).
  app.route({
    method: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'],
    url: '/_admin/*',
    handler: async () => {
      throw Errors.resourceNotFound();
    },
  });
}

/** What the dashboard lists of a collection. */
function summary(entry: CollectionEntry) {
  const hooks = entry.collection?.hooks;
  return {
    name: entry.name,
    type: entry.collection?.schema.kind ?? null,
    ok: entry.error === undefined,
    error: entry.error?.message ?? null,
    properties: entry.collection ? entry.collection.schema.properties.size : 0,
    hooks: hooks ? [...hooks.events] : [],
    hookErrors: hooks?.errors ?? {},
  };
}

function existing(registry: Registry, name: string): CollectionEntry {
  const entry = registry.get(name);
  if (!entry) throw new DeploydError('DPD_ERR_NOT_FOUND', 404, `no collection "${name}"`);
  return entry;
}

function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw Errors.badRequest('the body must be a JSON object');
  return body as Record<string, unknown>;
}

function collectionName(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200 || !isValidCollectionName(value)) {
    throw Errors.badRequest('"name" must be letters, digits, "-" or "_" (folders separated by "/"), starting with a letter or digit');
  }
  if (RESERVED.has(value.split('/')[0])) throw Errors.badRequest(`"/${value.split('/')[0]}" is answered by the server itself: choose another name`);
  return value;
}

/** The config's file text, once the server's own loader accepts it. */
function configText(name: string, config: unknown): string {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw Errors.changeRefused('"config" must be the collection\'s config.json as a JSON object');
  try {
    parseSchema(name, config);
  } catch (err) {
    throw Errors.changeRefused(`invalid config: ${(err as Error).message}`);
  }
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * Writes `text` to `file` atomically and reloads; when `problem()` then names one, puts the old
 * file back, reloads again and refuses the change with it.
 */
async function applyOrUndo(registry: Registry, file: string, text: string, problem: () => string | undefined | Promise<string | undefined>): Promise<void> {
  let previous: string | undefined;
  try {
    previous = await readIfExists(file);
    await writeFileAtomic(file, text);
  } catch (err) {
    // The disk refused (full, read-only, a file where a folder should be): nothing was replaced.
    const where = path.relative(path.dirname(registry.resourcesDir), file);
    throw new DeploydError('DPD_ERR_WRITE_FAILED', 500, `could not write ${where}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  await registry.reload();
  const refused = await problem();
  if (refused === undefined) return;
  await restore(file, previous);
  if (previous === undefined) await fs.promises.rmdir(path.dirname(file)).catch(() => {});
  await registry.reload();
  throw Errors.changeRefused(refused);
}

/** A Go hook's state after a save: 'ready', 'loading' (still building after the wait) or its error. */
async function goState(runner: HookRunner, registry: Registry, name: string, event: HookEvent): Promise<string> {
  const deadline = Date.now() + GO_SAVE_WAIT_MS;
  for (;;) {
    const entry = registry.get(name);
    const error = entry?.collection?.hooks.errors[event];
    if (error) return error;
    const key = entry?.collection?.hooks.key;
    const sidecar = runner.status?.().sidecars?.find((s) => s.hookSet === key);
    if (!sidecar) return 'ready';
    if (sidecar.state === 'failed') return sidecar.errors[event] ?? Object.values(sidecar.errors)[0] ?? 'the Go hooks failed to start';
    if (sidecar.state === 'ready') return sidecar.errors[event] ?? 'ready';
    if (Date.now() > deadline) return 'loading';
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
