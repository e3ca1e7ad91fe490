/**
 * The app's collections, discovered from `resources/**\/config.json` and kept current while the
 * server runs: an edited, added or removed config or hook applies without a restart. A broken
 * config turns only that collection into a 500 naming the file; every other collection keeps
 * serving.
 *
 * Watching must never go deaf (a hook with a security fix that silently never applies is worse
 * than a restart): chokidar watches the app folder (so a swapped `resources/` tree, as a
 * `git checkout` makes, is seen too) and re-arms its watches after rename-style saves; once it is
 * ready, one reload picks up whatever was written while the server started; and a periodic sweep
 * re-reads every config and hook and reloads what differs, in case an event was lost anyway.
 * Every reload is logged at info: the collection, the files that changed, ok or the error.
 */
import fs from 'node:fs';
import { watch as chokidar, type FSWatcher } from 'chokidar';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { DeploydError, Errors } from '../errors.js';
import type { EventPublisher } from '../events/event-log.js';
import { DEFAULT_HOOK_LIMITS, type HookLimits, type HookRunner, type HookSource } from '../hooks/hook-runner.js';
import { goPluginHooks } from '../hooks/go/plugin-config.js';
import { HOOK_EVENTS, type HookEvent } from '../hooks/protocol.js';
import type { QueryLimits } from '../query/filter.js';
import type { Store } from '../store/store.js';
import type { UserDirectory } from '../auth/authenticator.js';
import type { LoginThrottle } from '../auth/login-throttle.js';
import type { Sessions } from '../auth/sessions.js';
import type { JsonObject } from '../hooks/protocol.js';
import { parseQuery } from '../query/filter.js';
import { namesHiddenBy } from '../policy/read-policy.js';
import { eventResourceSource } from '../hooks/event-resource.js';
import { Collection, type CollectionDeps } from './collection.js';
import { parseSchema, type CollectionSchema } from '../core/schema.js';
import { UserCollection } from './user-collection.js';

export interface RegistryDeps {
  store: Store;
  bus: EventPublisher;
  runner?: HookRunner;
  limits: QueryLimits;
  /** Defaults for every collection; a config's `"hooks": {"timeoutMs", "memoryMb"}` overrides them. */
  hookLimits?: HookLimits;
  /** Login sessions and throttling, for users collections. */
  sessions: Sessions;
  throttle: LoginThrottle;
}

export interface CollectionEntry {
  /** Folder path under resources/, which is also the URL path. */
  name: string;
  configFile: string;
  collection?: Collection;
  /** Set when the config cannot be used; requests to this collection answer it. */
  error?: DeploydError;
}

export interface Resolved {
  entry: CollectionEntry;
  /** URL segments after the collection's path (`/todos/abc` → `["abc"]`). */
  rest: string[];
}

export class Registry implements UserDirectory {
  private entries = new Map<string, CollectionEntry>();
  private sources = new Map<string, Sources>();
  private watcher?: FSWatcher;
  private sweepTimer?: NodeJS.Timeout;
  private loadedOnce = false;
  private settleNext = false;
  private settleTimer?: NodeJS.Timeout;
  /** Files that became empty, and since when: an editor's save (truncate, then write) looks like this. */
  private readonly emptiedAt = new Map<string, number>();
  private emptyRecheck?: NodeJS.Timeout;
  private emptySettleMs = DEFAULT_EMPTY_SETTLE_MS;
  private reloadTimer?: NodeJS.Timeout;
  private reloading: Promise<void> = Promise.resolve();
  private closed = false;
  private hookVersion = 0;

  constructor(
    private readonly appDir: string,
    private readonly deps: RegistryDeps,
    private readonly log: FastifyBaseLogger,
  ) {}

  get(name: string): CollectionEntry | undefined {
    return this.entries.get(name);
  }

  get resourcesDir(): string {
    return path.join(this.appDir, 'resources');
  }

  list(): CollectionEntry[] {
    return [...this.entries.values()];
  }

  /** Longest collection path that prefixes the URL path wins (`/shop/orders/1` → `shop/orders`). */
  resolve(segments: string[]): Resolved | undefined {
    for (let n = segments.length; n > 0; n--) {
      const entry = this.entries.get(segments.slice(0, n).join('/'));
      if (entry) return { entry, rest: segments.slice(n) };
    }
    return undefined;
  }

  async load(): Promise<void> {
    const found = findConfigs(this.resourcesDir);
    const next = new Map<string, CollectionEntry>();
    const nextSources = new Map<string, Sources>();
    const first = !this.loadedOnce;
    for (const [name, file] of found) {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch {
        continue; // removed while scanning
      }
      const hooks = readHooks(path.dirname(file), name);
      const sources = sourcesOf(name, text, hooks);
      nextSources.set(name, sources);
      const current = this.entries.get(name);
      const previous = this.sources.get(name);
      const changed = changedFiles(previous, sources);
      if (current && previous && (changed.length === 0 || this.midWrite(previous, sources, changed))) {
        next.set(name, current);
        nextSources.set(name, previous);
        continue;
      }
      const entry = await this.build(name, file, text, hooks);
      next.set(name, entry);
      if (first) this.log.info({ collection: name, hooks: describeHooks(hooks.hooks) }, `collection ${name}: ${entry.error ? 'config rejected' : summary(hooks.hooks)}`);
      else this.logReload(entry, current ? changed : ['(new collection)', ...changed]);
    }
    for (const name of this.entries.keys()) {
      if (!next.has(name)) this.log.info({ collection: name }, 'collection removed');
    }
    this.loadedOnce = true;
    const previous = this.entries;
    this.entries = next;
    this.sources = nextSources;
    this.deps.runner?.setCollections([...next.keys()]);
    // Hook versions no entry uses any more; requests already running keep theirs until they end.
    const live = new Set([...next.values()].map((e) => e.collection?.hooks.key));
    for (const entry of previous.values()) {
      const key = entry.collection?.hooks.key;
      if (key && !live.has(key)) entry.collection!.retire(() => this.deps.runner?.unload(key));
    }
  }

  private async build(name: string, file: string, text: string, files: HookFiles): Promise<CollectionEntry> {
    const relative = path.relative(this.appDir, file);
    try {
      const schema = parseSchema(name, JSON.parse(text));
      for (const warning of schema.warnings ?? []) this.log.warn({ collection: name, file: relative }, warning);
      const plugin = goPluginHooks(name, schema.raw.goPlugin, this.appDir, files.hooks); // config.json "goPlugin"
      const hooks = [...files.hooks, ...plugin.hooks].map((h) => (schema.kind === 'Event' && h.file.endsWith('.js') ? { ...h, source: eventResourceSource(h.source) } : h));
      const conflicts = { ...files.conflicts, ...plugin.conflicts };
      const store = await this.deps.store.collection(schema);
      const deps: CollectionDeps = {
        store, runner: this.deps.runner, bus: this.deps.bus, limits: this.deps.limits, log: this.log,
        resolveUsers: (users, query) => this.resolveUsers(users, query),
        saveSessionRooms: (id, rooms) => this.deps.sessions.setRooms(id, rooms),
      };
      const collection = schema.kind === 'UserCollection'
        ? new UserCollection(schema, { ...deps, sessions: this.deps.sessions, throttle: this.deps.throttle })
        : new Collection(schema, deps);
      const conflicted = Object.keys(conflicts) as HookEvent[];
      if ((hooks.length > 0 || conflicted.length > 0) && this.deps.runner) {
        const key = `${name}#${++this.hookVersion}`;
        const loaded = hooks.length > 0 ? await this.deps.runner.load(key, hooks, hookLimits(schema, this.deps.hookLimits ?? DEFAULT_HOOK_LIMITS)) : {};
        const errors = { ...loaded, ...conflicts };
        for (const [event, message] of Object.entries(errors)) this.log.error({ collection: name, event }, `hook failed to load: ${message}`);
        const hides = hooks.filter((h) => h.event === 'get' && !h.plugin).flatMap((h) => namesHiddenBy(h.source, h.file.endsWith('.go') ? 'go' : 'js'));
        collection.hooks = { key, events: new Set([...hooks.map((h) => h.event), ...conflicted]), errors, hides };
      }
      this.log.debug({ collection: name, file: relative }, 'collection built');
      return { name, configFile: file, collection };
    } catch (err) {
      const detail = (err as Error).message;
      const message = detail.startsWith(relative) ? detail : `invalid config ${relative}: ${detail}`;
      const error = err instanceof DeploydError && err.statusCode === 501 ? err : Errors.configInvalid(message);
      this.log.error({ collection: name, file: relative, err: detail }, 'collection config rejected');
      return { name, configFile: file, error };
    }
  }

  /** The ids of the users matching `query` in the users collection `name` (for `emit(dpd.users, …)`). */
  private async resolveUsers(name: string, query: JsonObject): Promise<string[]> {
    const users = this.entries.get(name)?.collection;
    if (!(users instanceof UserCollection)) throw new Error(`"${name}" is not a users collection`);
    const parsed = parseQuery({ ...query, $fields: { id: 1 } }, users.schema, 'json', { ...this.deps.limits, maxLimit: 100_000 });
    const docs = await users.findStored(parsed.filter, parsed.options.limit);
    return docs.map((d) => d.id);
  }

  /**
   * Collections whose names prefix an event some hook emits by a literal name (`emit('todos:created',
   * …)`, `ctx.Emit("todos:changed", …)`): the app names its own change events, as Deployd apps do.
   */
  ownChangeEvents(): string[] {
    const sources = [...this.sources.values()].flatMap((files) => [...files.values()]).join('\n');
    return this.list().map((e) => e.name).filter((name) => new RegExp(`emit\\s*\\([^)]*?['"\`]${name.replace(/[^A-Za-z0-9]/g, (c) => `\\${c}`)}:`, 'i').test(sources));
  }

  /** The users collection `name`, for login sessions (the authenticator's directory). */
  accounts(name: string): UserCollection | undefined {
    const users = this.entries.get(name)?.collection;
    return users instanceof UserCollection ? users : undefined;
  }

  /** The first users collection (`/auth/login` and `/auth/me` use it, as go-deployd). */
  usersCollection(): UserCollection | undefined {
    const named = this.entries.get('users')?.collection;
    if (named instanceof UserCollection) return named;
    return [...this.entries.values()].map((e) => e.collection).find((c): c is UserCollection => c instanceof UserCollection);
  }

  /** One info line per reload: which collection, which files, ok or the errors. */
  private logReload(entry: CollectionEntry, files: string[]): void {
    const collection = entry.name;
    const errors = entry.error ? [entry.error.message] : Object.values(entry.collection?.hooks.errors ?? {});
    if (errors.length === 0) this.log.info({ collection, files }, `reloaded ${collection}: ${files.join(', ')}: ok`);
    else this.log.info({ collection, files, errors }, `reloaded ${collection}: ${files.join(', ')}: ${errors.join('; ')}`);
  }

  /** Reloads now (after the admin API wrote a file), in turn with the watcher's reloads. */
  reload(): Promise<void> {
    clearTimeout(this.reloadTimer);
    const done = this.reloading.then(() => this.load());
    this.reloading = done.catch(() => {});
    return done;
  }

  /**
   * Watches the app folder's resources/ (debounced reload on any change), and re-reads everything
   * every `sweepMs` (0: no sweep) in case a change was not reported. `events: false` leaves only
   * the sweep (file systems that report no changes: some network and container mounts).
   */
  watch(options: { sweepMs?: number; events?: boolean; emptySettleMs?: number } = {}): void {
    this.emptySettleMs = options.emptySettleMs ?? DEFAULT_EMPTY_SETTLE_MS;
    fs.mkdirSync(this.resourcesDir, { recursive: true });
    const sweepMs = options.sweepMs ?? DEFAULT_SWEEP_MS;
    if (sweepMs > 0) {
      this.sweepTimer = setInterval(() => this.scheduleReload(false), sweepMs);
      this.sweepTimer.unref();
    }
    if (options.events === false) return;
    const root = this.resourcesDir;
    const inResources = (p: string) => p === this.appDir || p === root || p.startsWith(root + path.sep);
    this.watcher = chokidar(this.appDir, {
      ignoreInitial: true,
      // Only resources/ (the watch is on the app folder so a replaced resources/ is seen).
      ignored: (p: string) => !inResources(p) || (p !== this.appDir && path.basename(p).startsWith('.')),
    });
    this.watcher.on('all', () => this.scheduleReload());
    // Whatever was written between the first load and the watches being armed.
    this.watcher.on('ready', () => this.scheduleReload());
    this.watcher.on('error', (err) => this.log.warn({ err: (err as Error).message }, 'resources watcher failed; the periodic sweep still reloads changes'));
  }

  /**
   * A debounced reload. One the watcher asked for is confirmed by a second one SETTLE_MS later: a
   * folder that appeared (a rename, a checkout) is watched only once chokidar has read it, and a
   * file written into it before that would otherwise wait for the sweep.
   */
  private scheduleReload(settle = true): void {
    if (this.closed) return;
    this.settleNext ||= settle;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => {
      const confirm = this.settleNext;
      this.settleNext = false;
      this.reloading = this.reloading.then(() => this.load()).then(() => {
        if (!confirm || this.closed) return;
        clearTimeout(this.settleTimer);
        this.settleTimer = setTimeout(() => this.scheduleReload(false), SETTLE_MS);
        this.settleTimer.unref();
      }).catch((err: Error) => {
        this.log.error({ err: err.message }, 'reloading resources failed');
      });
    }, 50);
  }

  /**
   * Whether a file that had text reads empty only because it is being saved (truncated, then
   * written): applying that would run, for a moment, a collection without its config or a hook
   * without its code (an empty validate.js lets every write through). The previous version stays
   * until the file has text again or has stayed empty for a moment (emptySettleMs), then the empty file is
   * applied as written.
   */
  private midWrite(before: Sources, after: Sources, changed: string[]): boolean {
    const now = Date.now();
    let waiting = false;
    for (const file of changed) {
      const emptied = after.get(file) === '' && (before.get(file) ?? '') !== '';
      if (!emptied) { this.emptiedAt.delete(file); continue; }
      const since = this.emptiedAt.get(file) ?? now;
      this.emptiedAt.set(file, since);
      if (now - since < this.emptySettleMs) waiting = true;
    }
    if (waiting && !this.closed) {
      clearTimeout(this.emptyRecheck);
      this.log.info({ files: changed.filter((f) => after.get(f) === '') }, 'a file became empty (being saved?): the previous version stays until it has text or stays empty');
      this.emptyRecheck = setTimeout(() => this.scheduleReload(false), this.emptySettleMs);
      this.emptyRecheck.unref();
    } else {
      for (const file of changed) this.emptiedAt.delete(file);
    }
    return waiting;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.emptyRecheck);
    clearTimeout(this.reloadTimer);
    clearInterval(this.sweepTimer);
    clearTimeout(this.settleTimer);
    await this.watcher?.close();
    await this.reloading;
  }
}

/** How often the safety-net sweep re-reads resources/ (DEPLOYD_WATCH_SWEEP_MS; 0 turns it off). */
export const DEFAULT_SWEEP_MS = 2000;
/** After a reload the watcher asked for, a confirming one this much later. */
const SETTLE_MS = 750;
/** How long a file that became empty may stay so before the empty version is applied (DEPLOYD_WATCH_EMPTY_SETTLE_MS). */
export const DEFAULT_EMPTY_SETTLE_MS = 300;

/** A collection's files as last read: relative name → text. */
type Sources = Map<string, string>;

function sourcesOf(name: string, config: string, files: HookFiles): Sources {
  const out: Sources = new Map([[`${name}/config.json`, config]]);
  for (const hook of files.hooks) out.set(hook.file, hook.source);
  for (const [event, message] of Object.entries(files.conflicts)) out.set(`${name}/${event}.*`, message ?? '');
  return out;
}

/** Files added, changed or removed between two reads. */
function changedFiles(before: Sources | undefined, after: Sources): string[] {
  if (!before) return [...after.keys()];
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((name) => before.get(name) !== after.get(name)).map((name) => (after.has(name) ? name : `${name} (removed)`));
}

function languageOf(hook: HookSource): string {
  return hook.file.endsWith('.go') ? 'Go' : 'JavaScript';
}

function describeHooks(hooks: HookSource[]): Array<{ file: string; language: string }> {
  return hooks.map((hook) => ({ file: path.posix.basename(hook.file), language: languageOf(hook) }));
}

/** `hooks post.js (JavaScript), validate.go (Go)` or `no hooks`. */
function summary(hooks: HookSource[]): string {
  if (hooks.length === 0) return 'no hooks';
  return `hooks ${describeHooks(hooks).map((h) => `${h.file} (${h.language})`).join(', ')}`;
}

interface HookFiles {
  hooks: HookSource[];
  /** Events with both a `.js` and a `.go` file: a load error naming both. */
  conflicts: Partial<Record<HookEvent, string>>;
}

/** The collection's hook files (`post.js`, `post.go`, …) that exist, with their text. */
function readHooks(dir: string, name: string): HookFiles {
  const hooks: HookSource[] = [];
  const conflicts: Partial<Record<HookEvent, string>> = {};
  for (const event of HOOK_EVENTS) {
    const found: HookSource[] = [];
    for (const ext of ['js', 'go']) {
      try {
        found.push({ event: event as HookEvent, file: `${name}/${event}.${ext}`, source: fs.readFileSync(path.join(dir, `${event}.${ext}`), 'utf8') });
      } catch {
        // no such hook
      }
    }
    if (found.length > 1) conflicts[event] = `${found.map((h) => h.file).join(' and ')} both define the ${event} event: keep one`;
    else hooks.push(...found);
  }
  return { hooks, conflicts };
}

/** A config's `"hooks": {"timeoutMs": 1000, "memoryMb": 64}` over the server-wide defaults. */
function hookLimits(schema: CollectionSchema, defaults: HookLimits): HookLimits {
  const raw = schema.raw.hooks;
  const limits = { ...defaults };
  if (typeof raw === 'object' && raw !== null) {
    const { timeoutMs, memoryMb } = raw as Record<string, unknown>;
    if (typeof timeoutMs === 'number' && timeoutMs > 0) limits.timeoutMs = limits.configuredTimeoutMs = Math.min(timeoutMs, 60_000);
    if (typeof memoryMb === 'number' && memoryMb >= 8) limits.memoryMb = Math.min(memoryMb, 1024);
  }
  return limits;
}

/** Every folder under resources/ with a config.json, keyed by its relative path. */
export function findConfigs(root: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (dir: string, prefix: string) => {
    let items: fs.Dirent[];
    try {
      items = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const item of items) {
      if (!item.isDirectory() || item.name.startsWith('.')) continue;
      const name = prefix ? `${prefix}/${item.name}` : item.name;
      const full = path.join(dir, item.name);
      const config = path.join(full, 'config.json');
      if (fs.existsSync(config)) found.set(name, config);
      walk(full, name);
    }
  };
  walk(root, '');
  return found;
}
