/**
 * The Deployd client (src/client, served as /dpd.js) in Node: `ws` as its WebSocket, a real
 * `bin/deployd` behind it. Covers Deployd's call signatures with callbacks and promises, errors,
 * query encoding, collection changes and hook emits over /ws, reconnection with resume (nothing
 * missed, nothing twice), and resync after a server restart. The /dpd.js route itself is checked
 * on a bare fastify with a stub registry, and its script is run in a VM with a fake `window`.
 */
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { WebSocket } from 'ws';
import { clientRoutes } from '../src/api/client-routes.js';
import { createClient, encodeQuery, jsName, type ClientOptions, type DpdError, type FetchLike } from '../src/client/index.js';
import { eventually, freePort, makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';

const FAST_RECONNECT = { minDelayMs: 50, maxDelayMs: 300 };

const CONFIGS = {
  todos: TODOS,
  notes: { type: 'Collection', properties: { title: { type: 'string' } } },
  'shop/orders': { type: 'Collection', properties: { item: { type: 'string', required: true }, qty: { type: 'number' } } },
};

/** Emits a global event and a Deployd-style namespaced one (`notes:pinged` → dpd.notes.on('pinged')). */
const NOTES_AFTERCOMMIT = `
emit('hello', { title: this.title });
emit('notes:pinged', { title: this.title });
`;


/**
 * A `ws` WebSocket class whose connections are refused while `gate.open` is false (they are sent to
 * a dead port), so a test can keep a client away while it writes; `urls` records every attempt.
 */
async function gatedWebSocket() {
  const deadPort = await freePort();
  const gate = { open: true };
  const urls: string[] = [];
  class GatedWebSocket extends WebSocket {
    constructor(url: string) {
      urls.push(url);
      super(gate.open ? url : url.replace(/:\d+\/ws/, `:${deadPort}/ws`));
    }
  }
  return { gate, urls, GatedWebSocket };
}

/** Records what listeners receive; `until(n)` waits for at least n calls. */
function recorder<T = unknown>() {
  const calls: T[] = [];
  return {
    calls,
    fn: (value: T) => {
      calls.push(value);
    },
    until: (n: number, timeoutMs = 5000) => eventually(() => calls.length >= n, timeoutMs, `${n} events (got ${calls.length})`),
  };
}

/** The callback's two arguments, as a promise. */
function viaCallback<T>(start: (fn: (result: T | null, error?: DpdError) => void) => unknown): Promise<{ result: T | null; error?: DpdError; args: number }> {
  return new Promise((resolve) => {
    start((...args: unknown[]) => resolve({ result: args[0] as T | null, error: args[1] as DpdError | undefined, args: args.length }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('client helpers', () => {
  it('names collections like Deployd and encodes queries like dpd.js', () => {
    assert.equal(jsName('shop/orders'), 'shoporders');
    assert.equal(jsName('todo-lists'), 'todolists');
    assert.equal(encodeQuery(undefined), '');
    assert.equal(encodeQuery({}), '');
    // Only strings: k=v pairs.
    assert.equal(encodeQuery({ status: 'open', 'a b': 'c&d' }), '?status=open&a%20b=c%26d');
    // Anything else: the whole query as URL-encoded JSON (types and operators survive).
    const query = { priority: { $gte: 3 }, $sort: { priority: 1 } };
    assert.equal(encodeQuery(query), '?' + encodeURIComponent(JSON.stringify(query)));
    assert.equal(encodeQuery({ n: 5 }), '?' + encodeURIComponent('{"n":5}'));
  });

  it('builds URLs, bodies and headers from Deployd signatures, and keeps the session token', async () => {
    const seen: Array<{ url: string; method: string; headers: Record<string, string>; body?: string }> = [];
    let token: string | null = 'tok-1';
    const fakeFetch: FetchLike = async (url, init) => {
      seen.push({ url, method: init.method, headers: init.headers, body: init.body });
      const headers = new Headers({ 'content-type': 'application/json; charset=utf-8' });
      if (token) headers.set('x-session-token', token);
      token = null;
      return { status: 200, headers, text: async () => '{"ok":true}' };
    };
    const dpd = createClient({ baseUrl: 'http://example.test/api/', fetch: fakeFetch, collections: ['todos', 'shop/orders'], headers: { 'X-Extra': '1' } });
    assert.deepEqual(await dpd.todos.get('abc'), { ok: true });
    assert.equal(dpd.getSessionToken(), 'tok-1', 'the token a response carries is kept');
    await dpd.todos.get('abc', 'sub', { n: 1 });
    await dpd.todos.get({ status: 'open' });
    await dpd.shoporders.post({ item: 'x' });
    await dpd.todos.put('abc', { title: 'y' });
    await dpd.todos.put('abc', { status: 'open' }, { title: 'z' });
    await dpd.todos.del(7);
    await dpd.todos.exec('rename', 'sub', { a: 1 });
    await dpd('todo-lists').get();
    const rows = seen.map((s) => `${s.method} ${s.url}${s.body ? ' ' + s.body : ''}`);
    assert.deepEqual(rows, [
      'GET http://example.test/api/todos/abc',
      `GET http://example.test/api/todos/abc/sub?${encodeURIComponent('{"n":1}')}`,
      'GET http://example.test/api/todos?status=open',
      'POST http://example.test/api/shop/orders {"item":"x"}',
      'PUT http://example.test/api/todos/abc {"title":"y"}',
      'PUT http://example.test/api/todos/abc?status=open {"title":"z"}',
      'DELETE http://example.test/api/todos/7',
      'POST http://example.test/api/todos/rename/sub {"a":1}',
      'GET http://example.test/api/todo-lists',
    ]);
    assert.equal(seen[0].headers['X-Session-Token'], undefined);
    for (const s of seen.slice(1)) assert.equal(s.headers['X-Session-Token'], 'tok-1');
    assert.equal(seen[0].headers.Accept, 'application/json');
    assert.equal(seen[0].headers['X-Extra'], '1');
    assert.equal(seen[3].headers['Content-Type'], 'application/json');
    assert.equal(seen[0].headers['Content-Type'], undefined);
    dpd.close();
  });

  it('rejects with status 0 when the server cannot be reached', async () => {
    const dpd = createClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, collections: ['todos'] });
    const { result, error } = await viaCallback((fn) => dpd.todos.get(fn));
    assert.equal(result, null);
    assert.equal(error?.status, 0);
    await assert.rejects(dpd.todos.get(), (err: DpdError) => err.status === 0 && /could not reach/.test(String(err.message)));
  });
});

describe('GET /dpd.js', () => {
  const registry = { list: () => ['todos', 'shop/orders', 'todo-lists', 'on', 'name'].map((name) => ({ name, configFile: '' })), ownChangeEvents: () => [] };

  it('serves a script for the registry\'s collections, uncached but revalidatable', async (t) => {
    const app = Fastify();
    t.after(() => app.close(), { timeout: 30_000 });
    await app.register(clientRoutes, { registry });
    const res = await app.inject({ method: 'GET', url: '/dpd.js' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^application\/javascript/);
    assert.equal(res.headers['cache-control'], 'no-cache');
    const etag = String(res.headers.etag);
    assert.match(etag, /^".+"$/);
    const again = await app.inject({ method: 'GET', url: '/dpd.js', headers: { 'if-none-match': etag } });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
    assert.doesNotMatch(res.body, /^\s*(export|import)\b/m, 'a plain script, not a module');
    assert.ok(res.body.length < 40_000, `small: ${res.body.length} bytes`);

    // Run it as a browser would, loaded from http://host:1234/api/dpd.js.
    const requests: string[] = [];
    const window: Record<string, unknown> = {};
    const context = vm.createContext({
      window,
      document: { currentScript: { src: 'http://host:1234/api/dpd.js?v=1' } },
      location: { origin: 'http://host:1234', href: 'http://host:1234/app/' },
      fetch: async (url: string) => {
        requests.push(url);
        return { status: 200, headers: new Headers({ 'content-type': 'application/json' }), text: async () => '[]' };
      },
      setTimeout, clearTimeout, setInterval, clearInterval, console, URL, Headers, JSON, Promise,
    });
    vm.runInContext(res.body, context, { filename: 'dpd.js' });
    const dpd = window.dpd as any;
    assert.equal((context as Record<string, unknown>).dpd, undefined, 'only window.dpd is defined');
    assert.equal(typeof dpd, 'function');
    assert.equal(dpd.getBaseUrl(), 'http://host:1234/api');
    for (const name of ['todos', 'shoporders', 'todolists']) {
      for (const method of ['get', 'post', 'put', 'del', 'exec', 'on', 'once', 'off']) assert.equal(typeof dpd[name][method], 'function', `dpd.${name}.${method}`);
    }
    assert.equal(dpd.shoporders.path, 'shop/orders');
    assert.equal(typeof dpd.on, 'function', 'a collection named "on" does not hide dpd.on');
    assert.equal(dpd('on').path, 'on');
    assert.equal(dpd('name').path, 'name');
    for (const method of ['on', 'once', 'off', 'socketReady', 'setBaseUrl', 'getBaseUrl', 'setSessionToken']) assert.equal(typeof dpd[method], 'function', `dpd.${method}`);
    await dpd.shoporders.get({ qty: { $gt: 1 } });
    assert.deepEqual(requests, [`http://host:1234/api/shop/orders?${encodeURIComponent('{"qty":{"$gt":1}}')}`]);
  });
});

describe('dpd client against a real server', () => {
  let server: TestServer;
  const clients: Array<{ close(): void }> = [];
  const client = <const C extends string>(collections: readonly C[], extra: Omit<ClientOptions, 'collections'> = {}) => {
    const dpd = createClient({ baseUrl: server.url, WebSocket, reconnect: FAST_RECONNECT, ...extra, collections });
    clients.push(dpd);
    return dpd;
  };

  before(async () => {
    server = await startServer(makeApp(CONFIGS, { 'resources/notes/aftercommit.js': NOTES_AFTERCOMMIT }));
  }, { timeout: 120_000 });
  after(async () => {
    for (const c of clients) c.close();
    await server?.stop();
  }, { timeout: 60_000 });

  it('does CRUD with callbacks: fn(result) on success, fn(null, error) on failure', async () => {
    const dpd = client(['todos']);
    const created = await viaCallback<any>((fn) => dpd.todos.post({ title: 'cb', priority: 2 }, fn));
    assert.equal(created.error, undefined);
    assert.equal(created.args, 1, 'success calls fn(result)');
    assert.equal(created.result.title, 'cb');
    const id = created.result.id as string;

    const one = await viaCallback<any>((fn) => dpd.todos.get(id, fn));
    assert.equal(one.result.id, id);
    const list = await viaCallback<any[]>((fn) => dpd.todos.get(fn));
    assert.ok(list.result!.some((d) => d.id === id));
    const updated = await viaCallback<any>((fn) => dpd.todos.put(id, { completed: true }, fn));
    assert.equal(updated.result.completed, true);
    assert.equal(updated.result.title, 'cb');
    const removed = await viaCallback<any>((fn) => dpd.todos.del(id, fn));
    assert.deepEqual(removed.result, { count: 1 });

    const missing = await viaCallback<any>((fn) => dpd.todos.get(id, fn));
    assert.equal(missing.result, null);
    assert.equal(missing.error?.status, 404);
    assert.equal(missing.error?.message, 'not found');
    const invalid = await viaCallback<any>((fn) => dpd.todos.post({ priority: 1 }, fn));
    assert.equal(invalid.result, null);
    assert.equal(invalid.error?.status, 400);
    assert.deepEqual(invalid.error?.errors, { title: 'is required' });
  });

  it('does CRUD with promises: then/catch and Deployd\'s fail, rejecting with the server\'s JSON error', async () => {
    const dpd = client(['todos', 'shop/orders']);
    const doc = await dpd.todos.post({ title: 'promise' });
    assert.equal(doc.title, 'promise');
    const got = await dpd.todos.get(doc.id);
    assert.equal(got.id, doc.id);
    const put = await dpd.todos.put(doc.id, { title: 'promise 2' });
    assert.equal(put.title, 'promise 2');

    const order = await dpd.shoporders.post({ item: 'book', qty: 2 });
    assert.equal((await server.get(`/shop/orders/${order.id}`)).body.item, 'book', 'nested collection on the nested path');

    // The server's error body, untouched.
    const direct = await server.get('/todos/nope');
    const failed = await dpd.todos.get('nope').fail((err) => err);
    assert.deepEqual(failed, direct.body);
    const caught = await dpd.todos.get('nope').then(() => 'resolved', (err: DpdError) => err.status);
    assert.equal(caught, 404);
    await assert.rejects(dpd.todos.post({}), (err: DpdError) => err.status === 400 && err.errors?.title === 'is required');
    // fail() chains like then(): it can recover, and what it returns is a DpdPromise too.
    const chained = await dpd.todos.get('nope').then(() => 'no').fail(() => 'recovered').then((v) => `${v}!`);
    assert.equal(chained, 'recovered!');
    assert.deepEqual(await dpd.todos.del(doc.id), { count: 1 });
  });

  it('sends object queries as JSON in the URL, as Deployd\'s dpd.js does', async () => {
    const urls: string[] = [];
    const spy: FetchLike = (url, init) => {
      urls.push(url);
      return fetch(url, init) as unknown as ReturnType<FetchLike>;
    };
    const dpd = client(['todos'], { fetch: spy });
    for (const [title, priority, status] of [['q1', 1, 'open'], ['q2', 5, 'open'], ['q3', 9, 'done']] as const) {
      await dpd.todos.post({ title, priority, status, tags: ['query-test'] });
    }
    const high = await dpd.todos.get({ priority: { $gte: 5 }, tags: 'query-test', $sort: { priority: -1 } });
    assert.deepEqual(high.map((d: any) => d.title), ['q3', 'q2']);
    assert.ok(urls.at(-1)!.endsWith('?' + encodeURIComponent(JSON.stringify({ priority: { $gte: 5 }, tags: 'query-test', $sort: { priority: -1 } }))));
    const open = await dpd.todos.get({ status: 'open' });
    assert.ok(urls.at(-1)!.endsWith('/todos?status=open'));
    assert.deepEqual(open.map((d: any) => d.title).sort(), ['q1', 'q2']);
    const byIn = await dpd.todos.get({ title: { $in: ['q1', 'q3'] } });
    assert.deepEqual(byIn.map((d: any) => d.title).sort(), ['q1', 'q3']);
  });

  it('delivers collection changes to dpd.<collection>.on: created, updated, deleted and changed', async () => {
    const dpd = client(['todos', 'shop/orders']);
    const created = recorder<any>();
    const updated = recorder<any>();
    const deleted = recorder<any>();
    const changed = recorder<[any, any]>();
    const orders = recorder<any>();
    dpd.todos.on('created', created.fn).on('updated', updated.fn).on('deleted', deleted.fn);
    dpd.todos.on('changed', (doc: any, change: any) => changed.fn([doc, change]));
    dpd.shoporders.on('created', orders.fn);
    await new Promise<void>((resolve) => dpd.socketReady(resolve));
    assert.equal(dpd.connected, true);

    const doc = (await server.post('/todos', { title: 'live' })).body;
    await created.until(1);
    assert.equal(created.calls[0].id, doc.id);
    assert.equal(created.calls[0].title, 'live');
    await server.put(`/todos/${doc.id}`, { title: 'live 2' });
    await updated.until(1);
    assert.equal(updated.calls[0].title, 'live 2');
    await server.del(`/todos/${doc.id}`);
    await deleted.until(1);
    assert.equal(deleted.calls[0].id, doc.id);
    await changed.until(3);
    assert.deepEqual(changed.calls.map(([, change]) => change.action), ['created', 'updated', 'deleted']);
    const [document, change] = changed.calls[0];
    assert.equal(change.type, 'collection_change');
    assert.equal(change.collection, 'todos');
    assert.deepEqual(change.document, document);
    assert.match(change.id, /:/);
    assert.equal(dpd.lastEventId, changed.calls[2][1].id);

    await server.post('/shop/orders', { item: 'pen' });
    await orders.until(1);
    assert.equal(orders.calls[0].item, 'pen');

    // once() fires once; off() stops delivery.
    const once = recorder<any>();
    dpd.todos.once('created', once.fn);
    dpd.todos.off('created', created.fn);
    await server.post('/todos', { title: 'a' });
    await server.post('/todos', { title: 'b' });
    await changed.until(5);
    await sleep(100);
    assert.equal(once.calls.length, 1);
    assert.equal(created.calls.length, 1);
  });

  it('delivers hook emit()s to dpd.on, and Deployd\'s "<collection>:<event>" to dpd.<collection>.on', async () => {
    const dpd = client(['notes']);
    const hello = recorder<any>();
    const pinged = recorder<any>();
    const raw: any[] = [];
    dpd.on('hello', hello.fn);
    dpd.on('hello', (_data: unknown, message: unknown) => raw.push(message));
    dpd.notes.on('pinged', pinged.fn);
    await new Promise<void>((resolve) => dpd.socketReady(resolve));
    await dpd.notes.post({ title: 'hi' });
    await hello.until(1);
    await pinged.until(1);
    assert.deepEqual(hello.calls[0], { title: 'hi' });
    assert.deepEqual(pinged.calls[0], { title: 'hi' });
    assert.equal(raw[0].type, 'custom_event');
    assert.equal(raw[0].event, 'hello');
    dpd.off('hello');
    await dpd.notes.post({ title: 'again' });
    await pinged.until(2);
    await sleep(50);
    assert.equal(hello.calls.length, 1, 'off(event) without fn removes every listener');
  });

  it('reconnects after a dropped socket and resumes: events missed meanwhile arrive, once each', async () => {
    const { gate, urls, GatedWebSocket } = await gatedWebSocket();
    const dpd = client(['todos'], { WebSocket: GatedWebSocket });
    const created = recorder<any>();
    const resyncs = recorder<any>();
    const reconnects = recorder<void>();
    const disconnects = recorder<any>();
    dpd.todos.on('created', created.fn);
    dpd.on('resync', resyncs.fn);
    dpd.on('reconnect', reconnects.fn);
    dpd.on('disconnect', disconnects.fn);
    await new Promise<void>((resolve) => dpd.socketReady(resolve));
    await server.post('/todos', { title: 'before', tags: ['resume'] });
    await created.until(1);
    const lastBefore = dpd.lastEventId;
    assert.ok(lastBefore);

    // Drop the connection and keep the client out while 5 documents are written.
    gate.open = false;
    dpd.socket!.close();
    await disconnects.until(1);
    for (let i = 0; i < 5; i++) assert.equal((await server.post('/todos', { title: `missed ${i}`, tags: ['resume'] })).status, 200);
    await eventually(() => urls.length >= 3, 5000, 'failed reconnection attempts');
    assert.equal(created.calls.length, 1, 'nothing arrives while disconnected');
    gate.open = true;

    await created.until(6, 10_000);
    await reconnects.until(1);
    await sleep(200);
    assert.deepEqual(created.calls.map((d) => d.title), ['before', 'missed 0', 'missed 1', 'missed 2', 'missed 3', 'missed 4']);
    assert.equal(resyncs.calls.length, 0, 'a resume that replays everything needs no resync');
    assert.ok(urls.slice(1).every((u) => u.endsWith(`?since=${encodeURIComponent(lastBefore!)}`)), `reconnects resume from the last event: ${urls.join(' ')}`);

    // Live delivery goes on after the replay.
    await server.post('/todos', { title: 'after', tags: ['resume'] });
    await created.until(7);
    assert.equal(created.calls[6].title, 'after');
  });

  it('disconnect() stops the socket; connect() resumes from the last event', async () => {
    const dpd = client(['todos']);
    const created = recorder<any>();
    const resyncs = recorder<any>();
    dpd.todos.on('created', created.fn);
    dpd.on('resync', resyncs.fn);
    await new Promise<void>((resolve) => dpd.socketReady(resolve));
    await server.post('/todos', { title: 'seen' });
    await created.until(1);
    dpd.disconnect();
    assert.equal(dpd.connected, false);
    assert.equal(dpd.socket, null);
    await server.post('/todos', { title: 'while away' });
    await sleep(400);
    assert.equal(created.calls.length, 1, 'no socket, no events, no reconnection');
    dpd.connect();
    await created.until(2);
    assert.equal(created.calls[1].title, 'while away');
    assert.equal(resyncs.calls.length, 0);
  });

  it('setBaseUrl moves REST and the socket to another server', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const dpd = createClient({ baseUrl: dead, WebSocket, collections: ['todos'], reconnect: FAST_RECONNECT });
    clients.push(dpd);
    const created = recorder<any>();
    const connects = recorder<void>();
    dpd.todos.on('created', created.fn);
    dpd.on('connect', connects.fn);
    await sleep(200);
    assert.equal(dpd.connected, false, 'nothing listens there');
    const url = new URL(server.url);
    dpd.setBaseUrl({ protocol: 'http:', hostname: url.hostname, port: url.port });
    assert.equal(dpd.getBaseUrl(), server.url);
    await connects.until(1);
    const doc = await dpd.todos.post({ title: 'moved' });
    await created.until(1);
    assert.equal(created.calls[0].id, doc.id);
  });

  it('a client that saw no event yet resumes from where it connected: nothing missed, no resync', async () => {
    const { gate, urls, GatedWebSocket } = await gatedWebSocket();
    const dpd = client(['todos'], { WebSocket: GatedWebSocket });
    const created = recorder<any>();
    const resyncs = recorder<any>();
    const disconnects = recorder<any>();
    dpd.todos.on('created', created.fn);
    dpd.on('resync', resyncs.fn);
    dpd.on('disconnect', disconnects.fn);
    await new Promise<void>((resolve) => dpd.socketReady(resolve));
    // The server's greeting carries the stream position, before any event.
    await eventually(() => dpd.lastEventId !== null, 5000, 'the connected frame');
    const greeted = dpd.lastEventId!;
    gate.open = false;
    dpd.socket!.close();
    await disconnects.until(1);
    for (let i = 0; i < 3; i++) assert.equal((await server.post('/todos', { title: `while away ${i}`, tags: ['greeted'] })).status, 200);
    gate.open = true;
    await created.until(3, 10_000);
    assert.deepEqual(created.calls.map((d) => d.title), ['while away 0', 'while away 1', 'while away 2']);
    assert.equal(resyncs.calls.length, 0);
    assert.ok(urls.slice(1).every((u) => u.endsWith(`?since=${encodeURIComponent(greeted)}`)), urls.join(' '));
    dpd.close();
  });
});

describe('dpd client across a server restart', () => {
  it('reconnects to the restarted server on the same port, asks the app to resync, and goes on receiving', async (t) => {
    const port = await freePort();
    const appDir = makeApp({ todos: TODOS });
    let server = await startServer(appDir, { args: ['--port', String(port)] });
    t.after(() => server.stop(), { timeout: 30_000 });
    assert.equal(server.url, `http://127.0.0.1:${port}`);
    const dpd = createClient({ baseUrl: server.url, WebSocket, collections: ['todos'], reconnect: FAST_RECONNECT });
    t.after(() => dpd.close(), { timeout: 30_000 });
    const created = recorder<any>();
    const resyncs = recorder<any>();
    const reconnects = recorder<void>();
    dpd.todos.on('created', created.fn);
    dpd.on('resync', resyncs.fn);
    dpd.on('reconnect', reconnects.fn);
    await new Promise<void>((resolve) => dpd.socketReady(resolve));
    await dpd.todos.post({ title: 'first run' });
    await created.until(1);

    assert.equal(await server.stop(), 0);
    await eventually(() => !dpd.connected, 5000, 'the client to notice');
    server = await startServer(appDir, { args: ['--port', String(port)], masterKey: server.masterKey });
    await reconnects.until(1, 15_000);
    // The new server's history starts afresh: it cannot replay, so the app is told to refetch.
    await resyncs.until(1);
    assert.equal(resyncs.calls.length, 1);
    const refetched = await dpd.todos.get();
    assert.deepEqual(refetched.map((d: any) => d.title), ['first run']);

    await server.post('/todos', { title: 'second run' });
    await created.until(2);
    assert.equal(created.calls[1].title, 'second run');
  });
});
