/**
 * Store conformance: the SQLite and MongoDB stores hold the same documents and must answer every
 * query, sort, page, projection, count, update and delete identically. Each case runs on both and
 * the answers are compared whole (documents, their order, error codes and messages); a difference
 * is a bug in one of the stores. test/query.test.ts separately pins the expected answers by hand
 * on both stores; this file covers the cross product of operators and awkward data.
 *
 * MongoDB here is MONGODB_URL's server or FerretDB (test/helpers/mongo.ts; differences from
 * MongoDB itself are listed in test/MONGODB.md).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { previewUpdate, readUpdate } from '../src/core/document.js';
import { newId } from '../src/core/id.js';
import { MongoClient } from 'mongodb';
import { parseSchema, type CollectionSchema } from '../src/core/schema.js';
import { parseQuery } from '../src/query/filter.js';
import { project } from '../src/core/filter.js';
import { MongoStore } from '../src/store/mongodb/mongo-store.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { CollectionStore, Store } from '../src/store/store.js';
import { mongoTarget, type MongoTarget } from './helpers/mongo.js';
import { TODOS as TODO_CONFIG } from './helpers/server.js';

// The tests' todos schema (without timestamps) plus an array of objects for $elemMatch.
const TODOS = parseSchema('todos', { properties: { ...TODO_CONFIG.properties, items: { type: 'array' } } });

/** The query test's fixture, plus documents with the awkward shapes real data has. */
const FIXTURE: Record<string, unknown>[] = [
  { title: 'Alpha', completed: false, priority: 1, status: 'open', assignedTo: 'ann', tags: ['red', 'blue'], meta: { owner: 'ann', rank: 5, v: 10 }, due: '2024-01-10T00:00:00.000Z', n: 10, items: [{ name: 'pen', qty: 2 }, { name: 'ink', qty: 10 }] },
  { title: 'beta', completed: true, priority: 3, status: 'done', assignedTo: 'bob', tags: ['blue'], meta: { owner: 'bob', v: '10' }, due: '2024-02-01T00:00:00.000Z', n: 20, items: [{ name: 'pad', qty: 1 }] },
  { title: 'Gamma', completed: false, priority: 5, status: 'open', tags: [], meta: { owner: 'ann', v: null }, due: '2024-03-15T12:00:00.000Z', items: [] },
  { title: 'delta', completed: true, priority: 8, status: 'blocked', assignedTo: null, tags: ['green', 'red', 'blue'], meta: { owner: 'cat', nested: { deep: 1 }, v: true }, n: 5, items: [{ name: 'pen', qty: 5 }] },
  { title: 'eps\nsecond', completed: false },
  { title: 'zeta', completed: false, priority: null, status: 'open', tags: [1, 5, 10], meta: { v: 7 }, n: 0 },
  { title: 'Éclair ☕', completed: false, priority: 2.5, status: 'Open', tags: ['Red', null], meta: { owner: 'Ann', v: [1, 2] }, n: -3, items: [{ name: 'pen', qty: null }, 'loose'] },
  { title: '', completed: true, priority: -1, status: 'done', tags: [true, false], meta: {}, n: 1e20, items: null },
  { title: 'omega', completed: false, priority: 3, status: 'open', assignedTo: 'ann', tags: ['blue', 'red'], meta: { owner: 'ann', rank: 5, v: 10 }, due: '2023-12-31T23:59:59.999Z', n: 2.5, items: [{ name: 'ink', qty: 3, tags: ['a'] }] },
  { title: 'mixed', completed: false, priority: 3, status: 'open', tags: 'red', meta: { v: { a: 1 } }, n: 20, items: [{ qty: 1, name: 'pad' }] },
];

/** Queries as a client sends them (`GET /todos?{json}` / `POST /todos/query`). */
const QUERIES: Record<string, unknown>[] = [
  {},
  // equality and comparison
  { status: 'open' }, { title: '' }, { priority: 3 }, { priority: '3' }, { completed: true }, { n: 20 },
  { priority: { $ne: 3 } }, { priority: { $gt: 2 } }, { priority: { $gte: 2.5 } }, { priority: { $lt: 3 } }, { priority: { $lte: -1 } },
  { title: { $gt: 'a' } }, { title: { $lt: 'Z' } }, { title: { $gte: '' } }, { due: { $gte: '2024-02-01' } }, { due: { $lt: 1704067200000 } },
  { n: { $gt: 1e19 } }, { n: { $lt: 0 } }, { status: { $in: ['open', 'done'] } }, { status: { $nin: ['open'] } },
  { priority: { $in: [1, 8, null] } }, { priority: { $nin: [null] } }, { assignedTo: { $in: ['ann', null] } },
  // null, missing, $exists
  { assignedTo: null }, { assignedTo: { $ne: null } }, { assignedTo: { $exists: true } }, { assignedTo: { $exists: false } },
  { priority: null }, { n: { $exists: false } }, { items: null }, { items: { $exists: true } },
  // objects and dotted paths
  { 'meta.owner': 'ann' }, { 'meta.v': 10 }, { 'meta.v': '10' }, { 'meta.v': null }, { 'meta.v': { $gt: 5 } }, { 'meta.v': { $exists: true } },
  { 'meta.nested.deep': 1 }, { 'meta.v.a': 1 }, { meta: { owner: 'ann', rank: 5, v: 10 } }, { meta: { rank: 5, owner: 'ann', v: 10 } }, { meta: {} },
  { 'meta.v': 1 }, { 'meta.v': [1, 2] }, { 'meta.v': { $size: 2 } },
  // arrays
  { tags: 'red' }, { tags: 'Red' }, { tags: null }, { tags: 5 }, { tags: { $gt: 4 } }, { tags: { $gt: 'c' } }, { tags: true },
  { tags: { $ne: 'red' } }, { tags: { $nin: ['red', 'blue'] } }, { tags: { $all: ['red', 'blue'] } }, { tags: { $all: [] } },
  { tags: { $size: 0 } }, { tags: { $size: 2 } }, { tags: ['red', 'blue'] }, { tags: ['blue', 'red'] }, { tags: [] },
  { tags: { $gt: 1, $lt: 10 } }, { tags: { $elemMatch: { $gt: 1, $lt: 10 } } }, { tags: { $elemMatch: { $regex: '^r' } } },
  { 'items.name': 'pen' }, { 'items.qty': { $gt: 4 } }, { 'items.name': null }, { 'items.qty': null }, { 'items.tags': 'a' },
  { 'items.0.name': 'pen' }, { 'tags.1': 'blue' }, { 'tags.0': { $exists: true } },
  { items: { $elemMatch: { name: 'pen', qty: { $gt: 3 } } } }, { items: { $elemMatch: { $or: [{ name: 'pad' }, { qty: { $gte: 10 } }] } } },
  { items: { $elemMatch: { qty: null } } }, { items: { $size: 1 } },
  // logic
  { $or: [{ priority: 1 }, { status: 'done' }] }, { $and: [{ status: 'open' }, { priority: { $gt: 2 } }] },
  { $nor: [{ status: 'open' }, { completed: true }] }, { status: 'open', $or: [{ tags: 'red' }, { n: { $gte: 20 } }] },
  { $or: [{ $and: [{ priority: { $gt: 1 } }, { priority: { $lt: 5 } }] }, { title: 'zeta' }] },
  { priority: { $not: { $gt: 2 } } }, { title: { $not: { $regex: '^[a-z]' } } }, { tags: { $not: { $size: 0 } } },
  { $or: [{ undeclared: 1 }, { 'meta.owner': 'cat' }] }, { $or: [{ id: { $exists: true } }] },
  // regex
  { title: { $regex: 'a' } }, { title: { $regex: '^A', $options: 'i' } }, { title: { $regex: '^second', $options: 'm' } },
  { title: { $regex: 'eps.second', $options: 's' } }, { title: { $regex: 'clair', $options: 'u' } }, { title: { $regex: '☕$' } },
  { tags: { $regex: '^b' } }, { title: { $regex: '^$' } },
  { title: { $regex: '\\d|\\s' } }, { title: { $regex: '\\beta' } }, { title: { $regex: '^[A-Z][a-z]{3,}$' } }, { title: { $regex: '(?:ph|ta)a$' } },
  { title: { $regex: '^é', $options: 'i' } }, { title: { $regex: '\\p{L}{5}', $options: 'u' } }, { status: { $regex: 'OPEN', $options: 'i' } },
  // sorting (every field, both directions, several keys), paging
  ...['title', 'priority', 'status', 'assignedTo', 'tags', 'meta', 'due', 'n', 'items', 'completed', 'meta.v', 'meta.owner', 'items.qty', 'id']
    .flatMap((field) => [{ $sort: { [field]: 1 } }, { $sort: { [field]: -1 } }]),
  { $sort: { status: 1, priority: -1 } }, { $sort: { completed: -1, title: 1 } }, { $sort: { tags: 1, n: -1 } },
  { $sort: { priority: 1 }, $limit: 3 }, { $sort: { priority: 1 }, $skip: 2, $limit: 3 }, { $skip: 8 }, { $limit: 2 }, { $skip: 100 },
  { status: 'open', $sort: { n: -1 }, $limit: 2, $skip: 1 },
  // projections
  { $fields: { title: 1 } }, { $fields: { title: 1, 'meta.owner': 1, id: 0 } }, { $fields: { meta: 0, items: 0 } }, { $fields: { 'meta.v': 0 } },
];

/**
 * Queries where FerretDB v1.24 answers differently from MongoDB (and so from SQLite); each is a
 * FerretDB limitation, listed with the reason in test/MONGODB.md. Against a real MongoDB
 * (MONGODB_URL) they are compared like every other query.
 */
const FERRETDB_DIFFERS: Record<string, string> = {
  '{"items.name":null}': 'a null condition through an array of objects also matches an empty array',
  '{"items.qty":null}': 'a null condition through an array of objects also matches an empty array',
  '{"items":{"$elemMatch":{"name":"pen","qty":{"$gt":3}}}}': '$elemMatch over object elements is not implemented (answers 400)',
  '{"items":{"$elemMatch":{"$or":[{"name":"pad"},{"qty":{"$gte":10}}]}}}': '$elemMatch with $or is not implemented (answers 501)',
  '{"items":{"$elemMatch":{"qty":null}}}': '$elemMatch with a null condition matches nothing',
};

/** Cases where the SQLite store is known to answer differently from MongoDB (none today). */
const SQLITE_DIFFERS: Record<string, string> = {};

interface Pair {
  sqlite: CollectionStore;
  mongo: CollectionStore;
}

let target: MongoTarget;
let sqlite: Store;
let mongo: MongoStore;
let sqliteDir: string;

before(async () => {
  target = await mongoTarget();
  sqliteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'conformance-'));
  sqlite = new SqliteStore({ file: path.join(sqliteDir, 'data.sqlite') });
  mongo = new MongoStore({ url: target.url() });
  assert.equal(mongo.status(), 'down', 'a store says down until it has reached MongoDB');
}, { timeout: 120_000 });

after(async () => {
  await mongo?.close();
  await sqlite?.close();
  await target?.close();
  if (sqliteDir) fs.rmSync(sqliteDir, { recursive: true, force: true });
}, { timeout: 60_000 });

async function pair(schema: CollectionSchema): Promise<Pair> {
  return { sqlite: await sqlite.collection(schema), mongo: await mongo.collection(schema) };
}

/** What a client would receive: JSON (so -0 and 0, or key order, do not count as differences). */
function json(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/** The outcome of an operation: its JSON result, or its error's code and message. */
async function outcome(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    return { ok: json(await fn()) };
  } catch (err) {
    const e = err as { code?: unknown; message?: string; statusCode?: number };
    if (typeof e.code !== 'string' || !e.code.startsWith('DPD_ERR_')) return { thrown: String(e.message) };
    return { error: e.code, status: e.statusCode, message: e.message };
  }
}

/** Runs `fn` on both stores and asserts the same outcome; returns it. */
async function same(what: string, p: Pair, fn: (store: CollectionStore) => Promise<unknown>): Promise<unknown> {
  const expected = await outcome(() => fn(p.sqlite));
  const actual = await outcome(() => fn(p.mongo));
  assert.deepStrictEqual(actual, expected, `${what}\n  sqlite: ${JSON.stringify(expected)}\n  mongo:  ${JSON.stringify(actual)}`);
  return expected;
}

describe('both stores answer every query identically', () => {
  let todos: Pair;

  before(async () => {
    todos = await pair(TODOS);
    assert.equal(mongo.status(), 'up');
    for (const doc of FIXTURE) {
      const stored = { id: newId(), ...doc };
      await todos.sqlite.insert(stored);
      await todos.mongo.insert(stored);
    }
  }, { timeout: 120_000 });

  it('the fixture reads back the same, in insertion order', async () => {
    const all = await same('find {}', todos, (s) => s.find({ fields: {} }));
    assert.equal((all as { ok: unknown[] }).ok.length, FIXTURE.length);
  });

  it(`${QUERIES.length} queries: the same documents in the same order, the same counts`, async () => {
    let matchedSomething = 0;
    const differences: string[] = [];
    const knownOnFerret: string[] = [];
    for (const raw of QUERIES) {
      const query = parseQuery(raw, TODOS, 'json');
      const label = JSON.stringify(raw);
      const find = (s: CollectionStore) => s.find(query.filter, query.options).then((docs) => docs.map((d) => project(d, query.projection)));
      const expected = await outcome(() => find(todos.sqlite));
      const actual = await outcome(() => find(todos.mongo));
      const expectedCount = await outcome(() => todos.sqlite.count(query.filter));
      const actualCount = await outcome(() => todos.mongo.count(query.filter));
      if ((expected as { ok?: unknown[] }).ok?.length) matchedSomething++;
      const differs = !isDeepStrictEqual(actual, expected) || !isDeepStrictEqual(actualCount, expectedCount);
      if (label in SQLITE_DIFFERS) {
        if (!differs) differences.push(`${label}: listed in SQLITE_DIFFERS but now answers as MongoDB; remove it from the list`);
        continue;
      }
      if (target.ferret && label in FERRETDB_DIFFERS) {
        // Documented in test/MONGODB.md; asserted to still differ, so that a fixed FerretDB is noticed.
        if (!differs) differences.push(`${label}: listed as a FerretDB difference but now answers as SQLite; update FERRETDB_DIFFERS`);
        else knownOnFerret.push(label);
        continue;
      }
      if (differs) differences.push(`${label}\n  sqlite: ${JSON.stringify(expected)} count ${JSON.stringify(expectedCount)}\n  mongo:  ${JSON.stringify(actual)} count ${JSON.stringify(actualCount)}`);
    }
    assert.deepEqual(differences, []);
    // The comparison means something only if most queries select some documents.
    assert.ok(matchedSomething > QUERIES.length * 0.8, `only ${matchedSomething} of ${QUERIES.length} queries matched anything`);
    if (target.ferret) assert.deepEqual(knownOnFerret.sort(), Object.keys(FERRETDB_DIFFERS).sort());
  });

  it('paging at the store boundary: limit 0 is no documents, skip alone is the rest', async () => {
    await same('limit 0', todos, (s) => s.find({ fields: {} }, { limit: 0 }));
    await same('skip 3', todos, (s) => s.find({ fields: {} }, { skip: 3 }));
    await same('skip 3 limit 0', todos, (s) => s.find({ fields: {} }, { skip: 3, limit: 0 }));
  });

  it('by id, with and without a filter', async () => {
    const [first] = await todos.sqlite.find({ fields: {} }, { limit: 1 });
    for (const raw of [{ id: first.id }, { id: first.id, status: 'open' }, { id: first.id, status: 'done' }, { id: { $in: [first.id, 'nope'] } }, { id: { $gt: first.id } }]) {
      const query = parseQuery(raw, TODOS, 'json');
      await same(`find ${JSON.stringify(raw)}`, todos, (s) => s.find(query.filter, query.options));
    }
  });
});

describe('both stores apply every update identically', () => {
  let docs: Pair;
  const NOW = new Date('2025-01-01T00:00:00.000Z');

  const schema = parseSchema('updates', {
    properties: { title: { type: 'string', required: true }, n: { type: 'number' }, m: { type: 'number' }, tags: { type: 'array' }, meta: { type: 'object' }, label: { type: 'string' } },
  });

  before(async () => {
    docs = await pair(schema);
  }, { timeout: 120_000 });

  const START = { title: 't', n: 1, m: null, tags: ['a', 'b', 'a', { k: 1 }], meta: { x: 1 } }; // no nested arrays: FerretDB refuses them (test/MONGODB.md)
  const CASES: Array<[string, Record<string, unknown>, Record<string, unknown>?]> = [
    ['$inc', { n: { $inc: 2 } }],
    ['$inc top-level, negative, fractional', { $inc: { n: -2.5 } }],
    ['$inc an absent number counts from 0', { priority: 1, $inc: { m: 3 } }, { title: 't' }],
    ['$inc a null counts from 0', { m: { $inc: 3 } }],
    ['$inc a string is refused', { label: { $inc: 1 } }],
    ['$inc to overflow is refused', { n: { $inc: 1.7e308 } }, { title: 't', n: 1.7e308 }],
    ['$inc holding a string is refused', { n: { $inc: 1 } }, { title: 't', n: 'x' }],
    ['$push', { tags: { $push: 'c' } }],
    ['$push an object', { $push: { tags: { k: 2 } } }],
    ['$pushAll', { tags: { $pushAll: ['x', 'y'] } }],
    ['$push onto a missing array', { tags: { $push: 'a' } }, { title: 't' }],
    ['$push onto null', { tags: { $push: 'a' } }, { title: 't', tags: null }],
    ['$push onto a non-array is refused', { tags: { $push: 'a' } }, { title: 't', tags: 'str' }],
    ['$pull removes every equal element', { tags: { $pull: 'a' } }],
    ['$pullAll an object (deep equality)', { $pullAll: { tags: [{ k: 1 }, 'b'] } }],
    ['$pull from a missing array leaves []', { tags: { $pull: 'a' } }, { title: 't' }],
    ['$pull from null leaves []', { tags: { $pull: 'a' } }, { title: 't', tags: null }],
    ['$addUnique adds only missing items', { $addUnique: { tags: ['a', 'c', 'c', { k: 1 }] } }],
    ['$pull an object written in another key order', { tags: { $pull: { k: 1, j: 2 } } }, { title: 't', tags: [{ j: 2, k: 1 }, 'a'] }],
    ['$addUnique an object written in another key order', { tags: { $addUnique: { k: 1, j: 2 } } }, { title: 't', tags: [{ j: 2, k: 1 }] }],
    ['$addUnique onto a missing array', { tags: { $addUnique: 'z' } }, { title: 't' }],
    ['$set several fields, new and old', { label: 'L', n: 7, meta: { y: [1, { z: null }] } }],
    ['$unset', { meta: { $unset: true }, n: { $unset: 1 } }],
    ['a value and $inc on one field: applied in order', { n: 5, $inc: { n: 1 } }],
    ['$push and $pull on one field: applied in order', { tags: { $push: 'q', $pull: 'b' } }],
    ['$pull then $addUnique on one field', { $pull: { tags: 'a' }, $addUnique: { tags: 'a' } }],
    ['nothing to change', {}],
  ];

  for (const [name, body, start] of CASES) {
    it(name, async () => {
      const doc = { id: newId(), ...(start ?? START) };
      await docs.sqlite.insert(doc);
      await docs.mongo.insert(doc);
      await same(`update ${JSON.stringify(body)}`, docs, async (s) => {
        const [previous] = await s.find({ fields: { id: { $eq: doc.id } } });
        const spec = readUpdate(schema, body);
        previewUpdate(schema, spec, previous, NOW);
        return s.update(doc.id, { fields: {} }, spec);
      });
      await same('stored afterwards', docs, (s) => s.find({ fields: { id: { $eq: doc.id } } }));
    });
  }

  it('an update whose filter does not match changes nothing and answers null', async () => {
    const doc = { id: newId(), title: 't', n: 1 };
    await docs.sqlite.insert(doc);
    await docs.mongo.insert(doc);
    const result = await same('update with a failing filter', docs, (s) => s.update(doc.id, { fields: { n: { $gt: 5 } } }, { set: { n: 9 }, unset: [], inc: {}, push: {}, pull: {}, addUnique: {} }));
    assert.deepEqual(result, { ok: null });
    await same('update of a missing id', docs, (s) => s.update('nope', { fields: {} }, { set: { n: 9 }, unset: [], inc: {}, push: {}, pull: {}, addUnique: {} }));
    await same('stored afterwards', docs, (s) => s.find({ fields: { id: { $eq: doc.id } } }));
  });

  it('50 concurrent $inc end at exactly +50 on both', async () => {
    const doc = { id: newId(), title: 't', n: 0 };
    for (const store of [docs.sqlite, docs.mongo]) {
      await store.insert(doc);
      await Promise.all(Array.from({ length: 50 }, () => store.update(doc.id, { fields: {} }, { set: {}, unset: [], inc: { n: 1 }, push: {}, pull: {}, addUnique: {} })));
      const [after] = await store.find({ fields: { id: { $eq: doc.id } } });
      assert.equal(after.n, 50);
    }
  });

  it('20 concurrent updates that need read-modify-write (push and pull on one field) all land', async () => {
    const doc = { id: newId(), title: 't', tags: ['x'] };
    for (const store of [docs.sqlite, docs.mongo]) {
      await store.insert(doc);
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.update(doc.id, { fields: {} }, { set: {}, unset: [], inc: {}, push: { tags: [i] }, pull: { tags: ['x'] }, addUnique: {} })));
      const [after] = await store.find({ fields: { id: { $eq: doc.id } } });
      assert.deepEqual([...(after.tags as number[])].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
    }
  });
});

describe('both stores remove identically', () => {
  it('removes what matches and returns it in insertion order', async () => {
    const schema = parseSchema('removals', { properties: { k: { type: 'number' }, tags: { type: 'array' } } });
    const p = await pair(schema);
    for (let i = 0; i < 12; i++) {
      const doc = { id: newId(), k: i % 4, tags: i % 3 === 0 ? ['x'] : [] };
      await p.sqlite.insert(doc);
      await p.mongo.insert(doc);
    }
    await same('remove k in [1,2]', p, (s) => s.remove(parseQuery({ k: { $in: [1, 2] } }, schema, 'json').filter));
    await same('remove tags x', p, (s) => s.remove({ fields: { tags: { $eq: 'x' } } }));
    await same('remove nothing', p, (s) => s.remove({ fields: { k: { $eq: 99 } } }));
    await same('what is left', p, (s) => s.find({ fields: {} }));
  });
});

describe('unique properties and collection names', () => {
  const USERS = { properties: { username: { type: 'string', unique: true }, email: { type: 'string', unique: true }, age: { type: 'number', index: true } } };

  it('a duplicate value is 409 DPD_ERR_UNIQUE naming the field, on insert and on update', async () => {
    const p = await pair(parseSchema('users', USERS));
    const ann = { id: newId(), username: 'ann', email: 'ann@example.com' };
    const bob = { id: newId(), username: 'bob', email: 'bob@example.com' };
    await same('insert ann', p, (s) => s.insert(ann));
    await same('insert bob', p, (s) => s.insert(bob));
    const dupName = await same('insert another ann', p, (s) => s.insert({ id: newId(), username: 'ann', email: 'x@example.com' }));
    assert.deepEqual(dupName, { error: 'DPD_ERR_UNIQUE', status: 409, message: 'username must be unique' });
    const dupEmail = await same('insert a second ann@example.com', p, (s) => s.insert({ id: newId(), username: 'cat', email: 'ann@example.com' }));
    assert.deepEqual(dupEmail, { error: 'DPD_ERR_UNIQUE', status: 409, message: 'email must be unique' });
    const dupId = await same('insert the same id', p, (s) => s.insert({ ...ann, username: 'dan', email: 'dan@example.com' }));
    assert.deepEqual(dupId, { error: 'DPD_ERR_UNIQUE', status: 409, message: 'id must be unique' });
    const onUpdate = await same('rename bob to ann', p, (s) => s.update(bob.id, { fields: {} }, { set: { username: 'ann' }, unset: [], inc: {}, push: {}, pull: {}, addUnique: {} }));
    assert.deepEqual(onUpdate, { error: 'DPD_ERR_UNIQUE', status: 409, message: 'username must be unique' });
    await same('unchanged', p, (s) => s.find({ fields: {} }));
  });

  it('documents without the value (missing or null) do not collide', async () => {
    const p = await pair(parseSchema('optional-unique', USERS));
    for (const doc of [{ id: newId(), username: 'a' }, { id: newId(), username: 'b' }, { id: newId(), username: 'c', email: null }]) {
      const result = await same(`insert ${JSON.stringify(doc)}`, p, (s) => s.insert(doc));
      assert.ok('ok' in (result as object), JSON.stringify(result));
    }
    const secondNull = { id: newId(), username: 'd', email: null };
    assert.ok('ok' in (await outcome(() => p.sqlite.insert(secondNull)) as object));
    if (target.ferret) {
      // FerretDB has no partial indexes: a second null collides there (test/MONGODB.md).
      await assert.rejects(p.mongo.insert(secondNull), { code: 'DPD_ERR_UNIQUE' });
    } else {
      await p.mongo.insert(secondNull);
    }
  });

  it('indexes are created idempotently: opening a collection again is fine', async () => {
    const schema = parseSchema('users', USERS);
    const again = await mongo.collection(schema);
    await again.insert({ id: newId(), username: 'eve', email: 'eve@example.com' });
    await assert.rejects(again.insert({ id: newId(), username: 'eve' }), { code: 'DPD_ERR_UNIQUE' });
  });

  it('an index of the same name left with other options (by hand, by an older version) is replaced', async () => {
    const client = new MongoClient(target.url().replace(/\/dpd_test_\w+/, `/${mongo.description.split('/').pop()}`));
    try {
      await client.db().collection('reindexed').createIndex({ username: 1 }, { name: 'ux_username' }); // not unique
    } finally {
      await client.close();
    }
    const handle = await mongo.collection(parseSchema('reindexed', USERS));
    await handle.insert({ id: newId(), username: 'zed' });
    await assert.rejects(handle.insert({ id: newId(), username: 'zed' }), { code: 'DPD_ERR_UNIQUE' });
  });

  it('internal, nested and odd collection names map to separate MongoDB collections', async () => {
    const names = ['_sessions', 'shop/orders', 'shop-orders', 'system/users', 'a_b/c-d/E9'];
    const handles = [];
    for (const name of names) {
      const schema: CollectionSchema = { ...parseSchema('placeholder', { properties: { token: { type: 'string', unique: true } } }), name };
      handles.push({ name, ...(await pair(schema)) });
    }
    for (const h of handles) {
      await h.sqlite.insert({ id: newId(), token: h.name });
      await h.mongo.insert({ id: newId(), token: h.name });
      await assert.rejects(h.mongo.insert({ id: newId(), token: h.name }), { code: 'DPD_ERR_UNIQUE' }, h.name);
    }
    for (const h of handles) {
      const found = await same(`find in ${h.name}`, h, async (s) => (await s.find({ fields: {} })).map((d) => d.token));
      assert.deepEqual(found, { ok: [h.name] });
    }
  });
});
