/**
 * The REST API as a client sees it (black box, real server, real HTTP): Deployd's response shapes,
 * ids, update commands, types and validation, root access, CORS, caching headers, namespaced
 * collections and the two config formats.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { makeApp, startServer, TODOS, type ApiResponse, type TestServer } from './helpers/server.js';

const ID = /^[0-9a-f]{13}[89ab][0-9a-f]{2}$/;
const NO_CACHE = 'no-cache, no-store, must-revalidate';

/** The collections of this file's app. */
const CONFIGS = {
  todos: TODOS,
  guarded: { ...TODOS, rules: { delete: 'users' } },
  // No timestamps: a document holds only its declared properties and its id.
  notes: {
    type: 'Collection',
    properties: {
      title: { type: 'string' },
      views: { type: 'number' },
      pinned: { type: 'boolean' },
      kind: { type: 'string', default: 'memo' },
      posted: { type: 'date', default: 'now' },
    },
  },
  // go-deployd's format: required / default / unique.
  users: {
    properties: {
      email: { type: 'string', required: true, unique: true },
      name: { type: 'string' },
      role: { type: 'string', default: 'member' },
      score: { type: 'number', default: 10 },
    },
  },
  // go-deployd's event-only endpoint: nothing is stored.
  events: { noStore: true, properties: { name: { type: 'string' } } },
  // Deployd's own format, as its dashboard writes it.
  legacy: {
    type: 'Collection',
    properties: {
      title: { name: 'title', type: 'string', typeLabel: 'string', required: true, id: 'title', order: 0 },
      done: { name: 'done', type: 'boolean', typeLabel: 'boolean', required: false, id: 'done', order: 1 },
      count: { name: 'count', type: 'number', typeLabel: 'number', required: false, id: 'count', order: 2 },
    },
  },
  'shop/orders': { type: 'Collection', properties: { item: { type: 'string', required: true }, qty: { type: 'number' } } },
};

/** Real HTTP (with the harness's deadline). */
function call(server: TestServer, method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
  return server.request(method, urlPath, body, headers);
}

/** Asserts Deployd's error body: message, statusCode, status (+ an additive DPD_ERR_* code). */
function assertError(res: ApiResponse, status: number, expected: Record<string, unknown> = {}): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(res.body.status, status);
  assert.equal(res.body.statusCode, status);
  assert.equal(typeof res.body.message, 'string');
  assert.match(res.body.code, /^DPD_ERR_[A-Z_]+$/);
  for (const [key, value] of Object.entries(expected)) assert.deepEqual(res.body[key], value, `error body ${key}`);
}

const without = (doc: Record<string, unknown>, ...keys: string[]) => Object.fromEntries(Object.entries(doc).filter(([k]) => !keys.includes(k)));

let server: TestServer;
const api = (method: string, urlPath: string, body?: unknown, headers?: Record<string, string>) => call(server, method, urlPath, body, headers);

before(async () => {
  server = await startServer(makeApp(CONFIGS));
}, { timeout: 120_000 });
after(async () => {
  await server?.stop();
}, { timeout: 60_000 });

describe('REST shapes', () => {
  it('GET /health answers ok', async () => {
    const res = await api('GET', '/health');
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'ok');
  });

  it('POST /c answers 200 with the stored document', async () => {
    const res = await api('POST', '/todos', { title: 'write spec', priority: 2, status: 'open', tags: ['a'], meta: { x: 1 } });
    assert.equal(res.status, 200);
    assert.deepEqual(without(res.body, 'id', 'createdAt', 'updatedAt'), {
      title: 'write spec', completed: false, priority: 2, status: 'open', tags: ['a'], meta: { x: 1 },
    });
    assert.match(res.body.id, ID);
    const stored = await api('GET', `/todos/${res.body.id}`);
    assert.deepEqual(stored.body, res.body);
  });

  it('GET /c answers an array and GET /c/:id an object', async () => {
    const created = (await api('POST', '/todos', { title: 'listed' })).body;
    const list = await api('GET', '/todos');
    assert.equal(list.status, 200);
    assert.ok(Array.isArray(list.body));
    assert.deepEqual(list.body.find((d: { id: string }) => d.id === created.id), created);
    const one = await api('GET', `/todos/${created.id}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, created);
  });

  it('GET /c/:id of an unknown id is 404 {"message":"not found","statusCode":404,"status":404}', async () => {
    const res = await api('GET', '/todos/0123456789abcdef');
    assertError(res, 404);
    assert.deepEqual(without(res.body, 'code'), { message: 'not found', statusCode: 404, status: 404 });
  });

  it('PUT /c/:id shallow-merges and answers 200 with the document', async () => {
    const created = (await api('POST', '/todos', { title: 'merge me', status: 'open', meta: { a: 1, b: 2 } })).body;
    const res = await api('PUT', `/todos/${created.id}`, { status: 'done', meta: { c: 3 } });
    assert.equal(res.status, 200);
    assert.equal(res.body.id, created.id);
    assert.equal(res.body.title, 'merge me', 'untouched properties stay');
    assert.equal(res.body.status, 'done');
    assert.deepEqual(res.body.meta, { c: 3 }, 'a nested object is replaced, not deep-merged');
    assert.deepEqual((await api('GET', `/todos/${created.id}`)).body, res.body);
  });

  it('PUT /c with the id in the body updates that document', async () => {
    const created = (await api('POST', '/todos', { title: 'id in body' })).body;
    const res = await api('PUT', '/todos', { id: created.id, status: 'moved' });
    assert.equal(res.status, 200);
    assert.equal(res.body.id, created.id);
    assert.equal(res.body.status, 'moved');
  });

  it('PUT /c/:id ignores a different id in the body', async () => {
    const a = (await api('POST', '/todos', { title: 'a' })).body;
    const b = (await api('POST', '/todos', { title: 'b' })).body;
    const res = await api('PUT', `/todos/${a.id}`, { id: b.id, title: 'a2' });
    assert.equal(res.status, 200);
    assert.equal(res.body.id, a.id);
    assert.equal((await api('GET', `/todos/${b.id}`)).body.title, 'b');
  });

  it('PUT without any id is 400 "must provide id to update an object"', async () => {
    const res = await api('PUT', '/todos', { title: 'no id' });
    assertError(res, 400, { message: 'must provide id to update an object' });
  });

  it('PUT /c/:id of an unknown id is 404', async () => {
    assertError(await api('PUT', '/todos/0123456789abcdef', { title: 'x' }), 404, { message: 'not found' });
  });

  it('POST /c/:id updates the document (Deployd)', async () => {
    const created = (await api('POST', '/todos', { title: 'post-update', priority: 1 })).body;
    const res = await api('POST', `/todos/${created.id}`, { priority: 5 });
    assert.equal(res.status, 200);
    assert.equal(res.body.id, created.id);
    assert.equal(res.body.priority, 5);
    assert.equal(res.body.title, 'post-update');
    assert.equal((await api('GET', '/todos/count?title=post-update')).body.count, 1, 'no second document');
  });

  it('DELETE /c/:id answers {"count":1}, after which the document is gone', async () => {
    const created = (await api('POST', '/todos', { title: 'doomed' })).body;
    const res = await api('DELETE', `/todos/${created.id}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { count: 1 });
    assertError(await api('GET', `/todos/${created.id}`), 404);
    assertError(await api('DELETE', `/todos/${created.id}`), 404);
  });

  it('GET /c/count answers {"count":n} and respects the filter', async () => {
    for (const status of ['cnt-a', 'cnt-a', 'cnt-b']) await api('POST', '/todos', { title: 'count', status });
    assert.deepEqual((await api('GET', '/todos/count?status=cnt-a')).body, { count: 2 });
    assert.deepEqual((await api('GET', '/todos/count?{"status":{"$in":["cnt-a","cnt-b"]}}')).body, { count: 3 });
    assert.deepEqual((await api('GET', '/todos/count?status=cnt-none')).body, { count: 0 });
    const all = await api('GET', '/todos/count');
    assert.equal(all.status, 200);
    assert.equal(all.body.count, (await api('GET', '/todos')).body.length);
  });

  it('POST /c/query takes {"query":{…},"options":{…}}', async () => {
    for (const priority of [1, 2, 3]) await api('POST', '/todos', { title: 'q', status: 'q-test', priority });
    const res = await api('POST', '/todos/query', { query: { status: 'q-test' }, options: { $sort: { priority: -1 }, $limit: 2 } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.map((d: { priority: number }) => d.priority), [3, 2]);
    const bare = await api('POST', '/todos/query', { query: { status: 'q-test', priority: { $gte: 2 } } });
    assert.equal(bare.body.length, 2);
  });

  it('collection responses carry Cache-Control: no-cache, no-store, must-revalidate', async () => {
    const created = (await api('POST', '/todos', { title: 'cache' })).body;
    for (const res of [
      await api('GET', '/todos'),
      await api('GET', `/todos/${created.id}`),
      await api('GET', '/todos/count'),
      await api('PUT', `/todos/${created.id}`, { status: 'x' }),
    ]) {
      assert.equal(res.headers.get('cache-control'), NO_CACHE);
    }
  });
});

describe('bulk DELETE /c?{query}', () => {
  it('a non-root caller deletes the matches where the delete rule is "anyone" (Deployd), 403 where it is not', async () => {
    for (let i = 0; i < 2; i++) await api('POST', '/todos', { title: 'bulk', status: 'bulk-1' });
    await api('POST', '/todos', { title: 'bulk', status: 'bulk-other' });
    assert.deepEqual((await api('DELETE', '/todos?status=bulk-1')).body, { count: 2 });
    assert.equal((await api('GET', '/todos/count?status=bulk-1')).body.count, 0);
    assert.equal((await api('GET', '/todos/count?status=bulk-other')).body.count, 1);
    await api('POST', '/guarded', { title: 'bulk', status: 'bulk-1' });
    assertError(await api('DELETE', '/guarded?status=bulk-1'), 401);
    assert.equal((await api('GET', '/guarded/count?status=bulk-1')).body.count, 1);
  });

  it('is 400 for root with an empty query', async () => {
    assertError(await api('DELETE', '/todos', undefined, server.root), 400);
    assert.ok((await api('GET', '/todos/count')).body.count > 0, 'nothing was deleted');
  });

  it('deletes every matching document for root and answers the count', async () => {
    for (let i = 0; i < 3; i++) await api('POST', '/todos', { title: 'bulk', status: 'bulk-2' });
    const res = await api('DELETE', '/todos?{"status":"bulk-2"}', undefined, server.root);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { count: 3 });
    assert.equal((await api('GET', '/todos/count?status=bulk-2')).body.count, 0);
  });
});

describe('ids', () => {
  it('are 16 lowercase hex characters with the 14th in [89ab], generated by the server', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const { body } = await api('POST', '/notes', { title: `id ${i}` });
      assert.match(body.id, ID);
      ids.add(body.id);
    }
    assert.equal(ids.size, 20);
  });

  it('a client-sent id is ignored on POST', async () => {
    const res = await api('POST', '/notes', { id: 'aaaaaaaaaaaaaaaa', title: 'mine' });
    assert.equal(res.status, 200);
    assert.match(res.body.id, ID);
    assert.notEqual(res.body.id, 'aaaaaaaaaaaaaaaa');
    assertError(await api('GET', '/notes/aaaaaaaaaaaaaaaa'), 404);
  });
});

describe('update commands', () => {
  async function todo(fields: Record<string, unknown> = {}) {
    const res = await api('POST', '/todos', { title: 'cmd', ...fields });
    assert.equal(res.status, 200, res.text);
    return res.body as { id: string } & Record<string, unknown>;
  }
  const put = async (id: string, body: unknown) => {
    const res = await api('PUT', `/todos/${id}`, body);
    assert.equal(res.status, 200, res.text);
    return res.body;
  };

  it('$inc, per property and top-level', async () => {
    const { id } = await todo({ n: 1 });
    assert.equal((await put(id, { n: { $inc: 2 } })).n, 3);
    assert.equal((await put(id, { $inc: { n: -5 } })).n, -2);
    assert.equal((await put(id, { priority: { $inc: 4 } })).priority, 4, 'an absent number counts from 0');
  });

  it('$push and $pushAll', async () => {
    const { id } = await todo({ tags: ['a'] });
    assert.deepEqual((await put(id, { tags: { $push: 'b' } })).tags, ['a', 'b']);
    assert.deepEqual((await put(id, { $push: { tags: 'c' } })).tags, ['a', 'b', 'c']);
    assert.deepEqual((await put(id, { tags: { $pushAll: ['d', 'e'] } })).tags, ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual((await put(id, { $pushAll: { tags: ['f'] } })).tags, ['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('$pull and $pullAll', async () => {
    const { id } = await todo({ tags: ['a', 'b', 'a', 'c', 'd', 'e'] });
    assert.deepEqual((await put(id, { tags: { $pull: 'a' } })).tags, ['b', 'c', 'd', 'e']);
    assert.deepEqual((await put(id, { $pull: { tags: 'b' } })).tags, ['c', 'd', 'e']);
    assert.deepEqual((await put(id, { tags: { $pullAll: ['c', 'd'] } })).tags, ['e']);
    assert.deepEqual((await put(id, { $pullAll: { tags: ['e'] } })).tags, []);
  });

  it('$addUnique adds only missing items', async () => {
    const { id } = await todo({ tags: ['a'] });
    assert.deepEqual((await put(id, { tags: { $addUnique: 'a' } })).tags, ['a']);
    assert.deepEqual((await put(id, { tags: { $addUnique: 'b' } })).tags, ['a', 'b']);
    assert.deepEqual((await put(id, { $addUnique: { tags: ['b', 'c'] } })).tags, ['a', 'b', 'c']);
  });

  it('$set and $unset', async () => {
    const { id } = await todo({ status: 'open', assignedTo: 'ann' });
    assert.equal((await put(id, { $set: { status: 'done' } })).status, 'done');
    assert.equal((await put(id, { status: { $set: 'again' } })).status, 'again');
    const unset = await put(id, { $unset: { assignedTo: 1 } });
    assert.equal('assignedTo' in unset, false);
    assert.equal('assignedTo' in (await api('GET', `/todos/${id}`)).body, false);
    assert.equal(unset.status, 'again');
  });

  it('commands coerce their arguments like plain values', async () => {
    const { id } = await todo({ n: 1 });
    assert.equal((await put(id, { n: { $inc: '2' } })).n, 3);
  });

  it('50 concurrent {"n":{"$inc":1}} on one document end at exactly +50', async () => {
    const { id } = await todo({ n: 7 });
    const results = await Promise.all(Array.from({ length: 50 }, () => api('PUT', `/todos/${id}`, { n: { $inc: 1 } })));
    assert.deepEqual(results.map((r) => r.status), Array(50).fill(200));
    assert.equal((await api('GET', `/todos/${id}`)).body.n, 57);
    const seen = results.map((r) => r.body.n).sort((a, b) => a - b);
    assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => 8 + i), 'every answer saw its own increment');
  });

  it('50 concurrent top-level {"$inc":{"n":1}} end at exactly +50', async () => {
    const { id } = await todo({ n: 0 });
    await Promise.all(Array.from({ length: 50 }, () => api('PUT', `/todos/${id}`, { $inc: { n: 1 } })));
    assert.equal((await api('GET', `/todos/${id}`)).body.n, 50);
  });

  it('commands work on POST too', async () => {
    const created = await todo({ tags: { $push: 'a' }, n: { $inc: 3 } });
    assert.deepEqual(created.tags, ['a']);
    assert.equal(created.n, 3);
    const top = await todo({ $push: { tags: 'z' } });
    assert.deepEqual(top.tags, ['z']);
  });

  it('an unknown command or a command on the wrong type is 400 with the field named', async () => {
    const { id } = await todo({ n: 1, tags: [] });
    const unknown = await api('PUT', `/todos/${id}`, { n: { $mul: 2 } });
    assertError(unknown, 400);
    assert.equal(typeof unknown.body.errors.n, 'string');
    const wrongType = await api('PUT', `/todos/${id}`, { title: { $inc: 1 } });
    assertError(wrongType, 400);
    assert.equal(typeof wrongType.body.errors.title, 'string');
    const notNumber = await api('PUT', `/todos/${id}`, { n: { $inc: 'lots' } });
    assertError(notNumber, 400);
    assert.equal(typeof notNumber.body.errors.n, 'string');
    assert.equal((await api('GET', `/todos/${id}`)).body.n, 1, 'a refused update changes nothing');
  });
});

describe('types, coercion and validation', () => {
  it('coerces as Deployd: number → string, "7" → 7, "true"/"false" → booleans', async () => {
    const res = await api('POST', '/todos', { title: 42, priority: '7', completed: 'true', status: 3.5 });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.title, '42');
    assert.equal(res.body.priority, 7);
    assert.equal(res.body.completed, true);
    assert.equal(res.body.status, '3.5');
    const put = await api('PUT', `/todos/${res.body.id}`, { completed: 'false', priority: ' -2.5 ' });
    assert.equal(put.body.completed, false);
    assert.equal(put.body.priority, -2.5);
  });

  it('a non-numeric string for a number is 400 {"errors":{"n":"must be a number"}}', async () => {
    const res = await api('POST', '/todos', { title: 'nan', n: 'seven' });
    assertError(res, 400, { errors: { n: 'must be a number' } });
    const created = (await api('POST', '/todos', { title: 'nan-put', n: 1 })).body;
    assertError(await api('PUT', `/todos/${created.id}`, { n: 'abc' }), 400, { errors: { n: 'must be a number' } });
    assertError(await api('PUT', `/todos/${created.id}`, { n: '' }), 400, { errors: { n: 'must be a number' } });
  });

  it('every field error is reported at once: a wrong type and a missing required field', async () => {
    const res = await api('POST', '/todos', { priority: 'high' });
    assertError(res, 400, { errors: { priority: 'must be a number', title: 'is required' } });
  });

  it('other type mismatches name the field', async () => {
    const res = await api('POST', '/todos', { title: 'types', completed: 'maybe', tags: 'x', meta: [1], due: 'not a date' });
    assertError(res, 400, {
      errors: { completed: 'must be a boolean', tags: 'must be an array', meta: 'must be an object', due: 'must be a date' },
    });
  });

  it('dates are stored as ISO strings', async () => {
    const res = await api('POST', '/todos', { title: 'date', due: '2024-03-01T10:00:00Z' });
    assert.equal(res.body.due, '2024-03-01T10:00:00.000Z');
    const ms = await api('POST', '/todos', { title: 'date-ms', due: Date.UTC(2020, 0, 2) });
    assert.equal(ms.body.due, '2020-01-02T00:00:00.000Z');
  });

  it('required → 400 {"errors":{"title":"is required"}} when missing, null or empty', async () => {
    for (const body of [{}, { title: null }, { title: '' }, { status: 'x' }]) {
      assertError(await api('POST', '/todos', body), 400, { errors: { title: 'is required' } });
    }
  });

  it('on PUT, required is checked only for keys present in the body', async () => {
    const created = (await api('POST', '/todos', { title: 'req' })).body;
    assert.equal((await api('PUT', `/todos/${created.id}`, { status: 'ok' })).status, 200);
    assertError(await api('PUT', `/todos/${created.id}`, { title: '' }), 400, { errors: { title: 'is required' } });
    assertError(await api('PUT', `/todos/${created.id}`, { title: null }), 400, { errors: { title: 'is required' } });
    assertError(await api('PUT', `/todos/${created.id}`, { $unset: { title: 1 } }), 400, { errors: { title: 'is required' } });
    assert.equal((await api('GET', `/todos/${created.id}`)).body.title, 'req');
  });

  it('defaults (including "now" for dates) apply on POST', async () => {
    const before = Date.now();
    const res = await api('POST', '/notes', { title: 'defaults' });
    const afterTime = Date.now();
    assert.equal(res.body.kind, 'memo');
    const posted = Date.parse(res.body.posted);
    assert.ok(posted >= before - 1000 && posted <= afterTime + 1000, `posted ${res.body.posted} is now`);
    const explicit = await api('POST', '/notes', { title: 'explicit', kind: 'todo', posted: '2001-01-01T00:00:00.000Z' });
    assert.equal(explicit.body.kind, 'todo');
    assert.equal(explicit.body.posted, '2001-01-01T00:00:00.000Z');
  });

  it('defaults do not apply on PUT', async () => {
    const created = (await api('POST', '/notes', { title: 'd' })).body;
    const res = await api('PUT', `/notes/${created.id}`, { $unset: { kind: 1 } });
    assert.equal(res.status, 200);
    assert.equal('kind' in res.body, false);
  });

  it('an absent optional boolean is stored false on POST', async () => {
    const res = await api('POST', '/notes', { title: 'bool' });
    assert.equal(res.body.pinned, false);
    assert.equal((await api('GET', `/notes/${res.body.id}`)).body.pinned, false);
  });

  it('unknown body fields are dropped', async () => {
    const res = await api('POST', '/todos', { title: 'extra', bogus: 1, nested: { x: 1 } });
    assert.equal(res.status, 200);
    assert.equal('bogus' in res.body, false);
    assert.equal('nested' in res.body, false);
    const put = await api('PUT', `/todos/${res.body.id}`, { bogus: 2, status: 's' });
    assert.equal('bogus' in put.body, false);
    assert.equal('bogus' in (await api('GET', `/todos/${res.body.id}`)).body, false);
  });

  it('without timestamps a document holds only its declared properties and id', async () => {
    const res = await api('POST', '/notes', { title: 'exact', views: '3', createdAt: '2000-01-01', updatedAt: '2000-01-01', extra: true });
    assert.equal(res.status, 200);
    const { id, posted, ...rest } = res.body;
    assert.match(id, ID);
    assert.equal(typeof posted, 'string');
    assert.deepEqual(rest, { title: 'exact', views: 3, pinned: false, kind: 'memo' });
    assert.deepEqual((await api('GET', `/notes/${id}`)).body, res.body);
  });

  it('timestamps: createdAt/updatedAt are server-managed and PUT changes only updatedAt', async () => {
    const t0 = Date.now();
    const created = await api('POST', '/todos', { title: 'stamps', createdAt: '2000-01-01T00:00:00.000Z', updatedAt: '2000-01-01T00:00:00.000Z' });
    assert.equal(created.status, 200);
    assert.equal(created.body.createdAt, created.body.updatedAt);
    assert.ok(Date.parse(created.body.createdAt) >= t0 - 1000, 'the client cannot set createdAt');
    await new Promise((r) => setTimeout(r, 15));
    const updated = await api('PUT', `/todos/${created.body.id}`, { status: 'x', createdAt: '2000-01-01T00:00:00.000Z', updatedAt: '2000-01-01T00:00:00.000Z' });
    assert.equal(updated.body.createdAt, created.body.createdAt, 'createdAt never changes');
    assert.ok(Date.parse(updated.body.updatedAt) > Date.parse(created.body.updatedAt), 'updatedAt moves forward');
    const unset = await api('PUT', `/todos/${created.body.id}`, { $unset: { createdAt: 1 } });
    assert.equal(unset.body.createdAt, created.body.createdAt, 'clients cannot unset createdAt');
  });

  it('unique: a second document with the same value is 409 {"errors":{"email":"must be unique"}}', async () => {
    const first = await api('POST', '/users', { email: 'ann@example.com' });
    assert.equal(first.status, 200);
    assertError(await api('POST', '/users', { email: 'ann@example.com' }), 409, { errors: { email: 'must be unique' } });
    const second = (await api('POST', '/users', { email: 'bob@example.com' })).body;
    assertError(await api('PUT', `/users/${second.id}`, { email: 'ann@example.com' }), 409, { errors: { email: 'must be unique' } });
    assert.equal((await api('GET', `/users/${second.id}`)).body.email, 'bob@example.com');
    assert.equal((await api('GET', '/users/count?email=ann@example.com')).body.count, 1);
  });
});

describe('root access', () => {
  it('X-Master-Key and Deployd\'s dpd-ssh-key with the key make a request root', async () => {
    for (const headers of [server.root, { 'dpd-ssh-key': server.masterKey! }]) {
      await api('POST', '/todos', { title: 'root', status: 'root-del' });
      const res = await api('DELETE', '/todos?status=root-del', undefined, headers);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { count: 1 });
    }
  });

  it('a wrong key is 401, never a silent fall-back to anonymous', async () => {
    for (const headers of [{ 'x-master-key': 'wrong' }, { 'dpd-ssh-key': 'wrong' }] as Record<string, string>[]) {
      assertError(await api('GET', '/todos', undefined, headers), 401);
      assertError(await api('DELETE', '/todos?status=x', undefined, headers), 401);
      assertError(await api('POST', '/todos', { title: 'x' }, headers), 401);
    }
  });

  describe('with --dev', () => {
    let dev: TestServer;
    before(async () => {
      dev = await startServer(makeApp({ todos: TODOS, guarded: { ...TODOS, rules: { delete: 'root' } } }), { args: ['--dev'] });
    }, { timeout: 120_000 });
    after(async () => {
      await dev?.stop();
    }, { timeout: 60_000 });

    it('any dpd-ssh-key value is root', async () => {
      await call(dev, 'POST', '/todos', { title: 'dev', status: 'dev' });
      const res = await call(dev, 'DELETE', '/todos?status=dev', undefined, { 'dpd-ssh-key': 'anything' });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { count: 1 });
    });

    it('without a key the caller is still anonymous, and a wrong X-Master-Key is still 401', async () => {
      assertError(await call(dev, 'DELETE', '/guarded?status=dev'), 401);
      assertError(await call(dev, 'DELETE', '/todos?status=dev', undefined, { 'x-master-key': 'wrong' }), 401);
    });
  });
});

describe('CORS', () => {
  it('echoes the Origin with Access-Control-Allow-Credentials: true', async () => {
    const res = await api('GET', '/todos', undefined, { origin: 'https://anywhere.example' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://anywhere.example');
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
  });

  it('answers an OPTIONS preflight with 204', async () => {
    const res = await api('OPTIONS', '/todos', undefined, {
      origin: 'https://anywhere.example',
      'access-control-request-method': 'PUT',
      'access-control-request-headers': 'content-type',
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://anywhere.example');
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /PUT/);
  });

  describe('with --cors-origins https://a.example', () => {
    let restricted: TestServer;
    before(async () => {
      restricted = await startServer(makeApp({ todos: TODOS }), { args: ['--cors-origins', 'https://a.example'] });
    }, { timeout: 120_000 });
    after(async () => {
      await restricted?.stop();
    }, { timeout: 60_000 });

    it('echoes only that origin', async () => {
      const allowed = await call(restricted, 'GET', '/todos', undefined, { origin: 'https://a.example' });
      assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://a.example');
      assert.equal(allowed.headers.get('access-control-allow-credentials'), 'true');
      const other = await call(restricted, 'GET', '/todos', undefined, { origin: 'https://b.example' });
      assert.equal(other.headers.get('access-control-allow-origin'), null);
      const preflight = await call(restricted, 'OPTIONS', '/todos', undefined, { origin: 'https://b.example', 'access-control-request-method': 'PUT' });
      assert.equal(preflight.headers.get('access-control-allow-origin'), null);
    });
  });
});

describe('namespaced collections and config formats', () => {
  it('resources/shop/orders is served at /shop/orders', async () => {
    const created = await api('POST', '/shop/orders', { item: 'tea', qty: '2' });
    assert.equal(created.status, 200, created.text);
    assert.deepEqual(without(created.body, 'id'), { item: 'tea', qty: 2 });
    assert.deepEqual((await api('GET', `/shop/orders/${created.body.id}`)).body, created.body);
    assert.deepEqual((await api('GET', '/shop/orders/count')).body, { count: 1 });
    assertError(await api('POST', '/shop/orders', {}), 400, { errors: { item: 'is required' } });
    assertError(await api('GET', '/shop'), 404);
  });

  it('go-deployd format: required, default and unique', async () => {
    const res = await api('POST', '/users', { email: 'carol@example.com', name: 'Carol' });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(without(res.body, 'id'), { email: 'carol@example.com', name: 'Carol', role: 'member', score: 10 });
    assertError(await api('POST', '/users', { name: 'nobody' }), 400, { errors: { email: 'is required' } });
  });

  it('go-deployd noStore: an event-only endpoint that stores nothing', async () => {
    const res = await api('POST', '/events', { name: 'ping' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.id, undefined);
    const again = await api('POST', '/events', { name: 'pong' });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, undefined);
  });

  it('Deployd format with dashboard extras (typeLabel, order, id) loads', async () => {
    const res = await api('POST', '/legacy', { title: 'old', count: '4' });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(without(res.body, 'id'), { title: 'old', done: false, count: 4 });
    assertError(await api('POST', '/legacy', { done: true }), 400, { errors: { title: 'is required' } });
  });
});
