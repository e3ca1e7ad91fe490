/**
 * Picks the store from `--db` / `DATABASE_URL`: nothing or `sqlite:<file>` / a path → the embedded
 * SQLite store (default `<app>/.deployd/data.sqlite`); `mongodb://` or `mongodb+srv://` → MongoDB
 * (database from the URL's path, pool size and timeouts from its options).
 * The MongoDB driver (~10 MiB resident, a 17 MiB BSON buffer) is loaded only for a MongoDB URL.
 */
import path from 'node:path';
import type { Store } from './store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

export async function openStore(url: string | undefined, appDir: string, log?: (level: 'info' | 'warn', message: string) => void): Promise<Store> {
  if (!url) return new SqliteStore({ file: path.join(appDir, '.deployd', 'data.sqlite') });
  if (/^mongodb(\+srv)?:\/\//.test(url)) {
    if (!/^mongodb(\+srv)?:\/\/[^/]+\/[^/?]+/.test(url)) throw new Error(`name the database in the MongoDB URL, e.g. mongodb://localhost:27017/myapp`);
    const { MongoStore } = await import('./mongodb/mongo-store.js');
    return new MongoStore({ url, log });
  }
  const file = url.replace(/^sqlite:(\/\/)?/, '').replace(/^file:(\/\/)?/, '');
  if (file === '') throw new Error(`cannot read a database location from "${url}"`);
  return new SqliteStore({ file: file === ':memory:' ? file : path.resolve(appDir, file) });
}
