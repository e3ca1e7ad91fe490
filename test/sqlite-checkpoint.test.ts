/**
 * WAL checkpoints run off the request path (src/store/sqlite/checkpointer.ts): the server's own
 * connection never copies the WAL back into the database file inside a commit; a worker thread
 * does, with its own connection. When that thread is gone, the connection checkpoints by itself
 * again, so the WAL cannot grow without bound.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Checkpointer } from '../src/store/sqlite/checkpointer.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { eventually } from './helpers/server.js';

const PAD = 'x'.repeat(2000);

function tempFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-ckpt-')), 'app.sqlite');
}

const size = (file: string) => (fs.existsSync(file) ? fs.statSync(file).size : 0);

describe('WAL checkpoints in a worker thread', () => {
  let file: string;
  let db: Database.Database | undefined;
  let checkpointer: Checkpointer | undefined;

  before(() => {
    file = tempFile();
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, data TEXT)');
    checkpointer = new Checkpointer(db, file, 20);
  }, { timeout: 10_000 });

  after(async () => {
    await checkpointer?.close();
    db?.close();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }, { timeout: 10_000 });

  it('the connection does not checkpoint; the thread copies the WAL into the database file', { timeout: 30_000 }, async () => {
    assert.equal(db!.pragma('wal_autocheckpoint', { simple: true }), 0);
    const insert = db!.prepare('INSERT INTO t (data) VALUES (?)');
    const before = size(file);
    for (let i = 0; i < 2000; i++) insert.run(PAD);
    // ~4 MB went to the WAL; the file itself grows only when a checkpoint copies pages into it.
    await eventually(() => size(file) > before + 2_000_000, 20_000, 'the thread to checkpoint the WAL into the file');
  });

  it('when the thread is gone, the connection checkpoints by itself again', { timeout: 30_000 }, async () => {
    await checkpointer!.thread.terminate();
    await eventually(() => db!.pragma('wal_autocheckpoint', { simple: true }) === 1000, 10_000, 'wal_autocheckpoint back to 1000');
  });
});

describe('SqliteStore checkpoints through its thread', () => {
  let file: string;
  let store: SqliteStore | undefined;

  before(() => {
    file = tempFile();
  }, { timeout: 10_000 });

  after(async () => {
    await store?.close();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }, { timeout: 10_000 });

  it('writes land in the database file, and close() keeps every document', { timeout: 30_000 }, async () => {
    store = new SqliteStore({ file });
    const schema = { name: 'notes', properties: new Map(), type: 'Collection' } as unknown as Parameters<SqliteStore['collection']>[0];
    const notes = await store.collection(schema);
    const before = size(file);
    for (let i = 0; i < 1500; i++) await notes.insert({ id: `n${i}`, body: PAD });
    await eventually(() => size(file) > before + 1_500_000, 20_000, 'the WAL checkpointed into the file');
    await store.close();
    store = undefined;
    const check = new Database(file, { readonly: true });
    try {
      assert.equal((check.prepare('SELECT count(*) AS n FROM dpd_notes').get() as { n: number }).n, 1500);
    } finally {
      check.close();
    }
  });
});
