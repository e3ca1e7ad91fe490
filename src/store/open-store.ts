/**
 * Picks the store from `--db` / `DATABASE_URL`: nothing or `sqlite:<file>` / a path → the embedded
 * SQLite store (default `<app>/.deployd/data.sqlite`).
 */
import path from 'node:path';
import type { Store } from './store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

export function openStore(url: string | undefined, appDir: string): Store {
  if (!url) return new SqliteStore({ file: path.join(appDir, '.deployd', 'data.sqlite') });
  if (/^mongodb(\+srv)?:\/\//.test(url)) {
    throw new Error('MongoDB storage is not available in this version yet; unset DATABASE_URL to use the embedded SQLite store');
  }
  const file = url.replace(/^sqlite:(\/\/)?/, '').replace(/^file:(\/\/)?/, '');
  if (file === '') throw new Error(`cannot read a database location from "${url}"`);
  return new SqliteStore({ file: file === ':memory:' ? file : path.resolve(appDir, file) });
}
