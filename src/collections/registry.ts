/**
 * The app's collections, discovered from `resources/**\/config.json` and kept current while the
 * server runs: an edited, added or removed config applies without a restart. A broken config turns
 * only that collection into a 500 naming the file; every other collection keeps serving.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { DeploydError, Errors } from '../errors.js';
import type { Store } from '../store/store.js';
import { Collection } from './collection.js';
import { parseSchema } from './schema.js';

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

export class Registry {
  private entries = new Map<string, CollectionEntry>();
  private sources = new Map<string, string>();
  private watcher?: fs.FSWatcher;
  private reloadTimer?: NodeJS.Timeout;
  private reloading: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly appDir: string,
    private readonly store: Store,
    private readonly log: FastifyBaseLogger,
  ) {}

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
    const nextSources = new Map<string, string>();
    for (const [name, file] of found) {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch {
        continue; // removed while scanning
      }
      nextSources.set(name, text);
      const current = this.entries.get(name);
      if (current && this.sources.get(name) === text) {
        next.set(name, current);
        continue;
      }
      next.set(name, await this.build(name, file, text));
    }
    for (const name of this.entries.keys()) {
      if (!next.has(name)) this.log.info({ collection: name }, 'collection removed');
    }
    this.entries = next;
    this.sources = nextSources;
  }

  private async build(name: string, file: string, text: string): Promise<CollectionEntry> {
    const relative = path.relative(this.appDir, file);
    try {
      const schema = parseSchema(name, JSON.parse(text));
      if (schema.kind === 'UserCollection') {
        throw Errors.notImplemented(`${relative}: UserCollection is not supported yet`);
      }
      const store = await this.store.collection(schema);
      this.log.debug({ collection: name, file: relative }, 'collection loaded');
      return { name, configFile: file, collection: new Collection(schema, store) };
    } catch (err) {
      const detail = (err as Error).message;
      const message = detail.startsWith(relative) ? detail : `invalid config ${relative}: ${detail}`;
      const error = err instanceof DeploydError && err.statusCode === 501 ? err : Errors.configInvalid(message);
      this.log.error({ collection: name, file: relative, err: detail }, 'collection config rejected');
      return { name, configFile: file, error };
    }
  }

  /** Watches resources/ and reloads (debounced) on any change. */
  watch(): void {
    fs.mkdirSync(this.resourcesDir, { recursive: true });
    this.watcher = fs.watch(this.resourcesDir, { recursive: true }, () => this.scheduleReload());
    this.watcher.on('error', (err) => this.log.warn({ err: err.message }, 'resources watcher failed; config changes need a restart'));
  }

  private scheduleReload(): void {
    if (this.closed) return;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => {
      this.reloading = this.reloading.then(() => this.load()).catch((err: Error) => {
        this.log.error({ err: err.message }, 'reloading resources failed');
      });
    }, 50);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reloadTimer);
    this.watcher?.close();
    await this.reloading;
  }
}

/** Every folder under resources/ with a config.json, keyed by its relative path. */
function findConfigs(root: string): Map<string, string> {
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
