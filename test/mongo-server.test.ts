/**
 * The server on MongoDB (a real FerretDB process): REST end to end, and the connection faults the
 * issue names, injected by really stopping and starting the MongoDB-wire server. Through all of
 * them the server stays up, GET /health says `store: down`, requests get 503 JSON at once, and it
 * recovers without a restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFerretDb, type FerretDb } from './helpers/mongo.js';
import { eventually, makeApp, startServer, TODOS, type ApiResponse, type TestServer } from './helpers/server.js';
import { bearer } from './helpers/users.js';

const APP = {
  todos: TODOS,
  users: { type: 'Collection', properties: { username: { type: 'string', required: true, unique: true } } },
  people: { type: 'UserCollection', properties: { team: { type: 'string' } } },
};

function assertUnavailable(res: ApiResponse): void {
  assert.equal(res.status, 503, res.text);
  assert.equal(res.body?.code, 'DPD_ERR_STORE_UNAVAILABLE', res.text);
  assert.equal(res.body?.statusCode, 503, res.text);
  assert.equal(typeof res.body?.message, 'string', res.text);
  assert.doesNotMatch(res.text, /at .*\.js/, 'no stack trace');
}

async function logIn(server: TestServer): Promise<{ token: string; uid: string }> {
  const res = await server.post('/people/login', { username: 'ann', password: 'ann-password' });
  assert.equal(res.status, 200, res.text);
  return { token: res.body.id, uid: res.body.uid };
}

async function storeIs(server: TestServer, status: 'up' | 'down'): Promise<boolean> {
  const res = await server.get('/health');
  return res.body?.store === status && res.status === (status === 'up' ? 200 : 503);
}

describe('REST on MongoDB', () => {
  let ferret: FerretDb;
  let server: TestServer;

  before(async () => {
    ferret = await startFerretDb();
    server = await startServer(makeApp(APP), { env: { DATABASE_URL: ferret.url() } });
  }, { timeout: 120_000 });
  after(async () => {
    await server?.stop();
    await ferret?.close();
  }, { timeout: 60_000 });

  it('says where the data lives, without credentials, and /health says store: up', async () => {
    assert.match(server.output, /mongodb:\/\/127\.0\.0\.1:\d+\/dpd_test_/);
    assert.doesNotMatch(server.output, /MongoDB store is down/, 'no false alarm while connecting');
    const health = await server.get('/health');
    assert.equal(health.status, 200, health.text);
    assert.equal(health.body.store, 'up');
  });

  it('POST, GET, PUT with commands, DELETE', async () => {
    const created = await server.post('/todos', { title: 'a', tags: ['x'], priority: 2 });
    assert.equal(created.status, 200, created.text);
    assert.match(created.body.id, /^[0-9a-f]{16}$/);
    const got = await server.get(`/todos/${created.body.id}`);
    assert.deepEqual(got.body, created.body);
    const put = await server.put(`/todos/${created.body.id}`, { tags: { $push: 'y' }, priority: { $inc: 3 } });
    assert.deepEqual([put.body.tags, put.body.priority], [['x', 'y'], 5]);
    const list = await server.get('/todos?priority=5');
    assert.deepEqual(list.body.map((d: { id: string }) => d.id), [created.body.id]);
    assert.equal((await server.del(`/todos/${created.body.id}`)).status, 200);
    assert.equal((await server.get(`/todos/${created.body.id}`)).status, 404);
  });

  it('50 concurrent {"n":{"$inc":1}} on one document end at exactly +50', async () => {
    const { body: doc } = await server.post('/todos', { title: 'counter', n: 0 });
    const results = await Promise.all(Array.from({ length: 50 }, () => server.put(`/todos/${doc.id}`, { n: { $inc: 1 } })));
    for (const res of results) assert.equal(res.status, 200, res.text);
    assert.equal((await server.get(`/todos/${doc.id}`)).body.n, 50);
  });

  it('a unique property: the second value is 409 {"errors":{"username":"must be unique"}}', async () => {
    assert.equal((await server.post('/users', { username: 'ann' })).status, 200);
    const dup = await server.post('/users', { username: 'ann' });
    assert.equal(dup.status, 409, dup.text);
    assert.deepEqual(dup.body.errors, { username: 'must be unique' });
  });
});

describe('users and sessions on MongoDB', () => {
  let ferret: FerretDb;
  let server: TestServer;
  let url: string;

  before(async () => {
    ferret = await startFerretDb();
    url = ferret.url();
    server = await startServer(makeApp(APP), { env: { DATABASE_URL: url } });
  }, { timeout: 120_000 });
  after(async () => {
    await server?.stop();
    await ferret?.close();
  }, { timeout: 60_000 });

  it('sign up, a taken username is 400 "is already in use", log in, /people/me, log out, and the session is gone', async () => {
    assert.equal((await server.post('/people', { username: 'ann', password: 'ann-password', team: 'red' })).status, 200);
    const { token, uid } = await logIn(server);
    const headers = bearer(token);
    const taken = await server.post('/people', { username: 'ann', password: 'other-password' });
    assert.equal(taken.status, 400, taken.text);
    assert.deepEqual(taken.body.errors, { username: 'is already in use' });
    const me = await server.get('/people/me', headers);
    assert.equal(me.status, 200, me.text);
    assert.deepEqual([me.body.id, me.body.username, me.body.team, me.body.password], [uid, 'ann', 'red', undefined]);
    const out = await server.post('/people/logout', {}, headers);
    assert.deepEqual(out.body, { count: 1 });
    assert.equal((await server.get('/people/me', headers)).status, 204);
  });

  it('sessions live in MongoDB: they survive a restart of the server', async () => {
    const { token } = await logIn(server);
    await server.stop();
    server = await startServer(server.appDir, { env: { DATABASE_URL: url }, masterKey: server.masterKey });
    const me = await server.get('/people/me', bearer(token));
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.username, 'ann');
  });

  it('two instances on one database (a cluster) share documents and sessions', async () => {
    const second = await startServer(server.appDir, { env: { DATABASE_URL: url }, masterKey: server.masterKey });
    try {
      const { token } = await logIn(server);
      const me = await second.get('/people/me', bearer(token));
      assert.equal(me.status, 200, me.text);
      const created = await second.post('/todos', { title: 'from the second' });
      assert.equal((await server.get(`/todos/${created.body.id}`)).body.title, 'from the second');
      assert.deepEqual((await second.post('/people/logout', {}, bearer(token))).body, { count: 1 });
      assert.equal((await server.get('/people/me', bearer(token))).status, 204, 'logged out everywhere');
    } finally {
      await second.stop();
    }
  });
});

describe('MongoDB unreachable at start', () => {
  let ferret: FerretDb;
  let server: TestServer;

  before(async () => {
    ferret = await startFerretDb({ start: false });
    server = await startServer(makeApp(APP), { env: { DATABASE_URL: ferret.url() } });
  }, { timeout: 120_000 });
  after(async () => {
    await server?.stop();
    await ferret?.close();
  }, { timeout: 60_000 });

  it('the server starts anyway; /health says store: down; requests get 503 JSON at once', async () => {
    assert.ok(await storeIs(server, 'down'));
    assertUnavailable(await server.get('/todos'));
    assertUnavailable(await server.post('/todos', { title: 'a' }));
    assertUnavailable(await server.get('/users/count', server.root));
  });

  it('when MongoDB comes up, the same process serves requests, unique index included', async () => {
    await ferret.start();
    await eventually(() => storeIs(server, 'up'), 10_000, 'store: up');
    assert.equal((await server.post('/users', { username: 'bob' })).status, 200);
    assert.equal((await server.post('/users', { username: 'bob' })).status, 409, 'the unique index was created on connection');
    assert.equal(server.proc.exitCode, null);
    assert.match(server.output, /MongoDB store is down \(mongodb:\/\/127\.0\.0\.1:\d+\/dpd_test_\w+\)/, 'the warning at start says so');
  });
});

describe('MongoDB lost while serving', () => {
  let ferret: FerretDb;
  let server: TestServer;

  before(async () => {
    ferret = await startFerretDb();
    server = await startServer(makeApp(APP), { env: { DATABASE_URL: ferret.url() } });
  }, { timeout: 120_000 });
  after(async () => {
    await server?.stop();
    await ferret?.close();
  }, { timeout: 60_000 });

  it('stopped: /health says store: down and requests get 503 JSON; started again: it recovers, data intact', async () => {
    const { body: doc } = await server.post('/todos', { title: 'survives' });
    assert.ok(await storeIs(server, 'up'));

    await ferret.stop();
    // The first request after the loss may be the one that notices it: 503 either way, never a hang.
    assertUnavailable(await server.get('/todos'));
    await eventually(() => storeIs(server, 'down'), 10_000, 'store: down');
    assertUnavailable(await server.put(`/todos/${doc.id}`, { title: 'x' }));
    assertUnavailable(await server.del(`/todos/${doc.id}`));

    await ferret.start();
    await eventually(() => storeIs(server, 'up'), 10_000, 'store: up');
    const got = await server.get(`/todos/${doc.id}`);
    assert.equal(got.status, 200, got.text);
    assert.equal(got.body.title, 'survives');
    assert.equal((await server.put(`/todos/${doc.id}`, { title: 'again' })).body.title, 'again');
    assert.equal(server.proc.exitCode, null, 'never restarted');
  });
});
