/**
 * SQLite group commit: inserts asked for in the same turn of the event loop commit in one
 * transaction, each in its own savepoint. Every caller is answered only after that commit, in the
 * order asked, and a failing insert (a unique value taken) fails alone.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseSchema } from '../src/core/schema.js';
import { DeploydError } from '../src/errors.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { makeApp, startServer, type TestServer } from './helpers/server.js';

const id = (n: number) => n.toString(16).padStart(16, '0');

describe('SQLite group commit', () => {
  let dir: string;
  let file: string;
  let store: SqliteStore;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'group-commit-'));
    file = path.join(dir, 'data.sqlite');
    store = new SqliteStore({ file });
  }, { timeout: 10_000 });
  after(async () => {
    await store?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, { timeout: 10_000 });

  it('inserts asked together are all committed (seen by another connection) before any answer, in the order asked', async () => {
    const notes = await store.collection(parseSchema('notes', { properties: { n: { type: 'number' } } }));
    const other = new Database(file, { readonly: true });
    try {
      const answered: number[] = [];
      await Promise.all(Array.from({ length: 20 }, (_, n) => notes.insert({ id: id(n), n }).then(() => {
        // Committed, not only written: another connection on the file already sees all of them.
        answered.push((other.prepare('SELECT count(*) AS c FROM dpd_notes').get() as { c: number }).c);
      })));
      assert.deepEqual(answered, Array(20).fill(20));
      assert.deepEqual((await notes.find({ fields: {} })).map((d) => d.n), Array.from({ length: 20 }, (_, n) => n), 'stored in the order asked');
    } finally {
      other.close();
    }
  });

  it('a taken unique value fails only its own insert, with the unique error', async () => {
    const users = await store.collection(parseSchema('people', { properties: { email: { type: 'string', unique: true } } }));
    const outcomes = await Promise.allSettled([
      users.insert({ id: id(100), email: 'a@x' }),
      users.insert({ id: id(101), email: 'b@x' }),
      users.insert({ id: id(102), email: 'a@x' }),
      users.insert({ id: id(103), email: 'c@x' }),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const error = (outcomes[2] as PromiseRejectedResult).reason;
    assert.ok(error instanceof DeploydError && error.code === 'DPD_ERR_UNIQUE', String(error));
    assert.deepEqual((await users.find({ fields: {} })).map((d) => d.email), ['a@x', 'b@x', 'c@x']);
  });

  it('an insert asked before the store closes is committed by the close; one asked after is refused', async () => {
    const closingFile = path.join(dir, 'closing.sqlite');
    const closing = new SqliteStore({ file: closingFile });
    const notes = await closing.collection(parseSchema('notes', { properties: { n: { type: 'number' } } }));
    const asked = notes.insert({ id: id(1), n: 1 });
    await closing.close();
    await asked;
    await assert.rejects(notes.insert({ id: id(2), n: 2 }));
    const reopened = new Database(closingFile, { readonly: true });
    try {
      assert.deepEqual(reopened.prepare('SELECT id FROM dpd_notes').all(), [{ id: id(1) }]);
    } finally {
      reopened.close();
    }
  });
});

describe('concurrent POSTs over HTTP', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer(makeApp({ tags: { properties: { name: { type: 'string', unique: true } } } }));
  }, { timeout: 60_000 });
  after(async () => {
    await server?.stop();
  }, { timeout: 30_000 });

  it('each is answered for itself: the duplicate 409, the others 200 and stored', async () => {
    const names = ['one', 'two', 'one', 'three', 'four', 'two'];
    const answers = await Promise.all(names.map((name) => server.post('/tags', { name })));
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((s) => s === 200).length, 4, JSON.stringify(statuses));
    assert.equal(statuses.filter((s) => s === 409).length, 2, JSON.stringify(statuses));
    const stored = await server.get('/tags');
    assert.deepEqual((stored.body as Array<{ name: string }>).map((t) => t.name).sort(), ['four', 'one', 'three', 'two']);
  });
});
