/**
 * The admin API (/_admin/, issue #17): root only — the master key or a dashboard login — and a
 * 401/403 for everyone else on every path; collections, hooks and documents edited through it land
 * in resources/ atomically and apply without a restart, or are refused with a 400 that says why and
 * changes nothing; real-time connections (per instance, across a Redis cluster), the event monitor
 * with its audience, hook logs and the health of hook workers.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RedisServer } from './helpers/redis.js';
import { eventually, makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';
import { assertError, bearer, hasKeyDeep, newUser, Peer } from './helpers/users.js';

const USERS = { type: 'UserCollection', properties: {} };
const NOTES = { type: 'Collection', properties: { text: { type: 'string', required: true } } };

/** Files in a folder that are not what the admin API meant to leave (temporary files). */
function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.startsWith('.') || f.endsWith('.tmp'));
}

async function adminLogin(server: TestServer): Promise<Record<string, string>> {
  const res = await server.post('/_admin/login', { masterKey: server.masterKey });
  assert.equal(res.status, 200, res.text);
  return bearer(res.body.token);
}

describe('admin API', { timeout: 120_000 }, () => {
  let server: TestServer;
  let admin: Record<string, string>;
  const peers: Peer[] = [];

  before(async () => {
    const app = makeApp({ todos: TODOS, users: USERS, notes: NOTES });
    server = await startServer(app, { env: { INSTANCE_ID: 'test-a' }, args: ['--hook-workers', '1'] });
    admin = await adminLogin(server);
  }, { timeout: 120_000 });

  after(async () => {
    for (const peer of peers) peer.close();
    await server?.stop();
  }, { timeout: 60_000 });

  describe('access', () => {
    it('answers 401 without credentials on every path, known or not (never 404)', async () => {
      for (const [method, url] of [['GET', '/_admin/status'], ['GET', '/_admin/nothing/here'], ['POST', '/_admin/collections'], ['DELETE', '/_admin/collections/todos'], ['GET', '/_admin/collections/todos/documents']]) {
        assertError(await server.request(method, url, method === 'POST' ? {} : undefined), 401, 'DPD_ERR_UNAUTHORIZED');
      }
      // Refused on its headers, before its body is read: an oversized body is a 401, not a 413.
      assertError(await server.post('/_admin/collections', { name: 'x'.repeat(2 * 1024 * 1024) }), 401, 'DPD_ERR_UNAUTHORIZED');
    });

    it('answers 401 for a wrong master key and 403 for a logged-in user', async () => {
      assertError(await server.get('/_admin/status', { 'x-master-key': 'not the key' }), 401, 'DPD_ERR_UNAUTHORIZED', 'invalid master key');
      const user = await newUser(server, 'alice');
      assertError(await server.get('/_admin/status', user.headers), 403, 'DPD_ERR_FORBIDDEN');
      assertError(await server.get('/_admin/unknown', user.headers), 403, 'DPD_ERR_FORBIDDEN');
    });

    it('lets root through with the master key or a dashboard login, and 404s only for root', async () => {
      assert.equal((await server.get('/_admin/status', server.root)).status, 200);
      assert.equal((await server.get('/_admin/status', admin)).status, 200);
      assertError(await server.get('/_admin/unknown', admin), 404, 'DPD_ERR_RESOURCE_NOT_FOUND');
    });

    it('refuses a wrong master key at login, then throttles that address', async () => {
      assertError(await server.post('/_admin/login', { masterKey: 'guess' }), 401, 'DPD_ERR_UNAUTHORIZED', 'wrong master key');
      assertError(await server.post('/_admin/login', {}), 401, 'DPD_ERR_UNAUTHORIZED');
      // A separate server: throttling this one's loopback address would lock out the other tests.
      const other = await startServer(makeApp({}));
      try {
        for (let i = 0; i < 10; i++) assert.equal((await other.post('/_admin/login', { masterKey: `guess ${i}` })).status, 401);
        const throttled = await other.post('/_admin/login', { masterKey: other.masterKey });
        assertError(throttled, 429, 'DPD_ERR_TOO_MANY_ATTEMPTS');
        assert.ok(Number(throttled.headers.get('retry-after')) > 0);
      } finally {
        await other.stop();
      }
    });

    it('a dashboard login is root on the REST API and the WebSocket too, until it logs out', async () => {
      const session = await adminLogin(server);
      assert.equal((await server.del('/todos?{"title":"nothing"}', session)).status, 200); // a bulk delete needs root
      const token = session.authorization.slice('Bearer '.length);
      const peer = await Peer.connect(server, 'dashboard', { query: `?token=${token}` });
      peers.push(peer);
      assert.equal((await peer.ask({ type: 'auth', token }, 'authenticated')).isRoot, true);
      assert.deepEqual((await server.post('/_admin/logout', {}, session)).body, { ended: true });
      assertError(await server.get('/_admin/status', session), 401, 'DPD_ERR_UNAUTHORIZED');
    });
  });

  describe('collections', () => {
    it('creates a collection: config.json written whole, served at once without a restart', async () => {
      const res = await server.post('/_admin/collections', { name: 'shop/orders', config: { properties: { item: { type: 'string', required: true } } } }, admin);
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.name, 'shop/orders');
      assert.equal(res.body.ok, true);
      const file = path.join(server.appDir, 'resources', 'shop', 'orders', 'config.json');
      assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { properties: { item: { type: 'string', required: true } } });
      assert.deepEqual(leftovers(path.dirname(file)), []);
      assert.equal((await server.post('/shop/orders', { item: 'hat' })).status, 200);
      assertError(await server.post('/shop/orders', {}), 400, 'DPD_ERR_VALIDATION');
      const listed = await server.get('/_admin/collections', admin);
      assert.ok(listed.body.some((c: { name: string }) => c.name === 'shop/orders'));
      const one = await server.get('/_admin/collections/shop%2Forders', admin);
      assert.deepEqual(one.body.config, { properties: { item: { type: 'string', required: true } } });
    });

    it('refuses invalid configs, names and duplicates with a 400/409 and writes nothing', async () => {
      const bad = await server.post('/_admin/collections', { name: 'broken', config: { properties: { x: { type: 'strung' } } } }, admin);
      assertError(bad, 400, 'DPD_ERR_CHANGE_REFUSED', /unknown type "strung"/);
      assert.equal(fs.existsSync(path.join(server.appDir, 'resources', 'broken')), false);
      assertError(await server.post('/_admin/collections', { name: '../escape', config: {} }, admin), 400, 'DPD_ERR_BAD_REQUEST');
      assertError(await server.post('/_admin/collections', { name: 'dashboard', config: {} }, admin), 400, 'DPD_ERR_BAD_REQUEST', /answered by the server/);
      assertError(await server.post('/_admin/collections', { name: 'todos', config: {} }, admin), 409, 'DPD_ERR_CONFLICT');
      assertError(await server.post('/_admin/collections', { name: 'x', config: [] }, admin), 400, 'DPD_ERR_CHANGE_REFUSED');
      assertError(await server.post('/_admin/collections', 'not json', { ...admin, 'content-type': 'application/json' }), 400, 'DPD_ERR_INVALID_JSON');
    });

    it('answers a disk that refuses the write with a 500 naming the file, and keeps serving', async () => {
      // A file where the collection's folder would go: the write cannot happen.
      fs.writeFileSync(path.join(server.appDir, 'resources', 'blocked'), 'not a folder');
      const res = await server.post('/_admin/collections', { name: 'blocked', config: { properties: {} } }, admin);
      assertError(res, 500, 'DPD_ERR_WRITE_FAILED', 'could not write resources/blocked/config.json: ENOTDIR');
      assert.deepEqual(leftovers(path.join(server.appDir, 'resources')), []);
      assert.equal((await server.get('/todos')).status, 200);
      assert.equal((await server.get('/_admin/status', admin)).status, 200);
    });

    it('edits a config in place; one the loader rejects after writing is put back, and said why', async () => {
      const file = path.join(server.appDir, 'resources', 'notes', 'config.json');
      const before = fs.readFileSync(file, 'utf8');
      // Passes the schema check, but the server cannot load it: the write is undone.
      const rejected = await server.put('/_admin/collections/notes', { config: { ...NOTES, goPlugin: 42 } }, admin);
      assertError(rejected, 400, 'DPD_ERR_CHANGE_REFUSED', /goPlugin/);
      assert.equal(fs.readFileSync(file, 'utf8'), before);
      assert.equal((await server.post('/notes', { text: 'still served' })).status, 200);
      assertError(await server.put('/_admin/collections/notes', { config: { properties: { text: { type: 42 } } } }, admin), 400, 'DPD_ERR_CHANGE_REFUSED');
      assert.equal(fs.readFileSync(file, 'utf8'), before);

      const edited = await server.put('/_admin/collections/notes', { config: { properties: { text: { type: 'string', required: true }, stars: { type: 'number', required: true } } } }, admin);
      assert.equal(edited.status, 200, edited.text);
      assertError(await server.post('/notes', { text: 'no stars' }), 400, 'DPD_ERR_VALIDATION');
      assert.equal((await server.post('/notes', { text: 'ok', stars: 3 })).status, 200);
      assert.deepEqual(leftovers(path.dirname(file)), []);
      assertError(await server.put('/_admin/collections/nope', { config: {} }, admin), 404, 'DPD_ERR_NOT_FOUND');
    });

    it('deletes a collection: its folder goes, its URL answers 404', async () => {
      assert.equal((await server.post('/_admin/collections', { name: 'temp', config: { properties: { a: { type: 'string' } } } }, admin)).status, 201);
      const res = await server.del('/_admin/collections/temp', admin);
      assert.equal(res.status, 200, res.text);
      assert.equal(fs.existsSync(path.join(server.appDir, 'resources', 'temp')), false);
      assertError(await server.get('/temp'), 404, 'DPD_ERR_RESOURCE_NOT_FOUND');
      assertError(await server.del('/_admin/collections/temp', admin), 404, 'DPD_ERR_NOT_FOUND');
    });
  });

  describe('hooks', () => {
    it('refuses a JavaScript hook that does not compile, with file:line, and writes nothing', async () => {
      const res = await server.put('/_admin/collections/todos/hooks/post.js', { source: 'if (this.title === "x") cancel("no x"\n' }, admin);
      assertError(res, 400, 'DPD_ERR_CHANGE_REFUSED', /todos\/post\.js.*todos\/post\.js:1:\d+/);
      assert.equal(fs.existsSync(path.join(server.appDir, 'resources', 'todos', 'post.js')), false);
      assert.equal((await server.post('/todos', { title: 'x' })).status, 200);
    });

    it('saves a hook that loads: applied at once, listed with its source, logs kept for the dashboard', async () => {
      const source = 'console.log("saving", this.title);\nif (this.title === "x") cancel("no x", 400);\n';
      const res = await server.put('/_admin/collections/todos/hooks/post.js', { source }, admin);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { file: 'todos/post.js', event: 'post', loaded: true, state: 'ready' });
      assert.equal(fs.readFileSync(path.join(server.appDir, 'resources', 'todos', 'post.js'), 'utf8'), source);
      assertError(await server.post('/todos', { title: 'x' }), 400, undefined, 'no x');
      assert.equal((await server.post('/todos', { title: 'logged title' })).status, 200);
      const hooks = await server.get('/_admin/collections/todos/hooks', admin);
      assert.deepEqual(hooks.body.hooks, [{ event: 'post', language: 'js', file: 'todos/post.js', source, error: null }]);
      // The server logs at "warn" here: the hook's console.log still reaches the log view.
      const logs = await server.get('/_admin/logs', admin);
      assert.ok(logs.body.some((l: Record<string, unknown>) => l.message === 'saving logged title' && l.collection === 'todos' && l.event === 'post'), JSON.stringify(logs.body));
      const after = logs.body[logs.body.length - 1].seq;
      assert.deepEqual((await server.get(`/_admin/logs?after=${after}`, admin)).body, []);
      const status = await server.get('/_admin/status', admin);
      assert.equal(status.body.hooks.workers.length, 1);
      assert.equal(status.body.hooks.workers[0].ready, true);
    });

    it('shows a hook broken on disk as the collection\'s load error', async () => {
      fs.writeFileSync(path.join(server.appDir, 'resources', 'todos', 'validate.js'), 'this is not javascript');
      await eventually(async () => (await server.get('/_admin/collections', admin)).body.find((c: { name: string }) => c.name === 'todos').hookErrors.validate !== undefined, 10_000, 'the load error');
      const todos = (await server.get('/_admin/status', admin)).body.collections.find((c: { name: string }) => c.name === 'todos');
      assert.match(todos.hookErrors.validate, /todos\/validate\.js:1:\d+/);
      assert.equal((await server.del('/_admin/collections/todos/hooks/validate.js', admin)).status, 200);
      await eventually(async () => (await server.post('/todos', { title: 'validates again' })).status === 200, 10_000, 'the hook removed');
    });

    it('refuses a second hook file for the same event, bad names and bad bodies', async () => {
      assertError(await server.put('/_admin/collections/todos/hooks/post.go', { source: 'package main\n' }, admin), 400, 'DPD_ERR_CHANGE_REFUSED', /both define the post event/);
      assert.equal(fs.existsSync(path.join(server.appDir, 'resources', 'todos', 'post.go')), false);
      assert.equal((await server.post('/todos', { title: 'post.js still runs' })).status, 200);
      assertError(await server.put('/_admin/collections/todos/hooks/evil.sh', { source: '' }, admin), 400, 'DPD_ERR_BAD_REQUEST');
      assertError(await server.put('/_admin/collections/todos/hooks/..%2Fconfig.json', { source: '' }, admin), 400, 'DPD_ERR_BAD_REQUEST');
      assertError(await server.put('/_admin/collections/todos/hooks/get.js', { source: 42 }, admin), 400, 'DPD_ERR_BAD_REQUEST');
      assertError(await server.put('/_admin/collections/todos/hooks/get.js', { source: 'x'.repeat(300 * 1024) }, admin), 400, 'DPD_ERR_BAD_REQUEST');
    });
  });

  describe('documents', () => {
    it('browses, queries, counts, creates, edits and deletes as root, hooks included', async () => {
      const created = await server.post('/_admin/collections/notes/documents', { text: 'from admin', stars: 5 }, admin);
      assert.equal(created.status, 200, created.text);
      const id = created.body.id;
      const found = await server.get(`/_admin/collections/notes/documents?${encodeURIComponent(JSON.stringify({ stars: { $gte: 5 } }))}`, admin);
      assert.deepEqual(found.body.map((d: { id: string }) => d.id), [id]);
      assert.deepEqual((await server.get('/_admin/collections/notes/documents/count?stars=5', admin)).body, { count: 1 });
      assert.equal((await server.put(`/_admin/collections/notes/documents/${id}`, { stars: 4 }, admin)).body.stars, 4);
      assert.equal((await server.get(`/_admin/collections/notes/documents/${id}`, admin)).body.stars, 4);
      assertError(await server.post('/_admin/collections/todos/documents', { title: 'x' }, admin), 400, undefined, 'no x'); // todos/post.js
      assertError(await server.get('/_admin/collections/notes/documents?{"stars":{"$bogus":1}}', admin), 400, 'DPD_ERR_BAD_QUERY');
      assert.deepEqual((await server.del(`/_admin/collections/notes/documents/${id}`, admin)).body, { count: 1 });
      assertError(await server.get(`/_admin/collections/notes/documents/${id}`, admin), 404, 'DPD_ERR_NOT_FOUND');
    });
  });

  describe('real-time', () => {
    it('lists connections with their instance, identity and rooms', async () => {
      const anonymous = await Peer.connect(server, 'anonymous');
      peers.push(anonymous);
      await anonymous.ask({ type: 'subscribe', collections: ['notes'] }, 'subscribed');
      const res = await server.get('/_admin/realtime', admin);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-deployd-instance'), 'test-a');
      assert.equal(res.body.clustered, false);
      const [here] = res.body.instances;
      assert.equal(here.instance, 'test-a');
      assert.ok(here.connections.some((c: Record<string, unknown>) => c.identity === 'anonymous' && JSON.stringify(c.collections) === '["notes"]'), JSON.stringify(here));
    });

    it('the monitor streams each event with who got it; /_admin/events keeps the recent ones', async () => {
      const anonymous = await Peer.connect(server, 'watcher');
      peers.push(anonymous);
      const controller = new AbortController();
      const stream = await fetch(`${server.url}/_admin/monitor`, { headers: admin, signal: controller.signal });
      assert.equal(stream.status, 200);
      assert.match(stream.headers.get('content-type') ?? '', /text\/event-stream/);
      let text = '';
      const reading = (async () => {
        const decoder = new TextDecoder();
        for await (const chunk of stream.body!) {
          text += decoder.decode(chunk as Uint8Array);
          if (text.includes('monitored note')) break;
        }
      })();
      try {
        assert.equal((await server.post('/notes', { text: 'monitored note', stars: 1 })).status, 200);
        await anonymous.take((f) => f.type === 'collection_change' && f.document.text === 'monitored note', 'the change');
        await Promise.race([reading, new Promise((_, reject) => setTimeout(() => reject(new Error(`monitor did not stream the event: ${text}`)), 10_000))]);
      } finally {
        controller.abort();
      }
      const events = (await server.get('/_admin/events', admin)).body;
      const entry = events.find((e: { payload: { text?: string } | null }) => e.payload?.text === 'monitored note');
      assert.equal(entry.summary, 'notes created');
      assert.equal(entry.instance, 'test-a');
      assert.ok(entry.audience.delivered.anonymous >= 1, JSON.stringify(entry.audience));
      // Users signed up earlier are in the monitor too, without their password hash.
      assert.ok(events.some((e: { collection?: string }) => e.collection === 'users'));
      assert.equal(hasKeyDeep(events, 'password'), false);
    });
  });
});

describe('admin API in a cluster (Redis)', { timeout: 120_000 }, () => {
  let redis: RedisServer | undefined;
  const servers: TestServer[] = [];
  const peers: Peer[] = [];

  after(async () => {
    for (const peer of peers) peer.close();
    await Promise.all(servers.map((s) => s.stop()));
    await redis?.close();
  }, { timeout: 60_000 });

  it('lists every instance\'s connections, each with its instance, and the same login works on each', async () => {
    redis = await RedisServer.start();
    const app = makeApp({ todos: TODOS });
    const masterKey = 'cluster-master-key-0123456789';
    servers.push(await startServer(app, { masterKey, env: { REDIS_URL: redis.url, INSTANCE_ID: 'i1' } }));
    servers.push(await startServer(app, { masterKey, env: { REDIS_URL: redis.url, INSTANCE_ID: 'i2' } }));
    const [one, two] = servers;
    peers.push(await Peer.connect(one, 'on i1'), await Peer.connect(two, 'on i2'), await Peer.connect(two, 'also on i2'));
    // A login made through one instance is a root session on the other (the store is shared).
    const session = await adminLogin(one);
    await eventually(async () => {
      const res = await two.get('/_admin/realtime', session);
      const counts = Object.fromEntries(res.body.instances.map((i: { instance: string; connections: unknown[] }) => [i.instance, i.connections.length]));
      return res.body.clustered === true && res.body.complete === true && counts.i1 === 1 && counts.i2 === 2;
    }, 15_000, 'both instances listed');
    // The monitor on i1 also shows who got each event on i2 (i2 learns within one presence period
    // that a dashboard watches, so events are posted until i2's audience arrives).
    const monitor = new AbortController();
    const giveUp = setTimeout(() => monitor.abort(), 20_000);
    let text = '';
    try {
      const stream = await fetch(`${one.url}/_admin/monitor`, { headers: session, signal: monitor.signal });
      assert.equal(stream.status, 200);
      const reading = (async () => {
        const decoder = new TextDecoder();
        for await (const chunk of stream.body!) text += decoder.decode(chunk as Uint8Array);
      })().catch(() => {});
      let n = 0;
      await eventually(async () => {
        assert.equal((await two.post('/todos', { title: `watched ${n++}` })).status, 200);
        return /event: audience\ndata: \{[^\n]*"instance":"i2","audience":\{"delivered":\{"anonymous":2\}/.test(text);
      }, 15_000, "i2's audience on i1's monitor");
      // ...and i1's own audience for the same events, in the entries.
      assert.match(text, /"instance":"i1"[^\n]*"audience":\{"delivered":\{"anonymous":1\}/);
      monitor.abort();
      await reading;
    } finally {
      clearTimeout(giveUp);
      monitor.abort();
    }
    // An instance that stops drops out of the list.
    await one.stop();
    await eventually(async () => (await two.get('/_admin/realtime', session)).body.instances.every((i: { instance: string }) => i.instance !== 'i1'), 15_000, 'i1 gone');
  });
});
