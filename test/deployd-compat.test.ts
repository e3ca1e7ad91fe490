/**
 * Deployd and go-deployd apps run unmodified (issue #16): behaviours a migrating app relies on,
 * written from deployd-behaviour.md and go-deployd-behaviour.md, against a real server.
 * (Users: test/users.test.ts; dpd recursion: test/hooks-api.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { goBuilt, goRun, useGo } from './helpers/go.js';
import { eventually, makeApp, startServer, type TestServer } from './helpers/server.js';
import { newUser } from './helpers/users.js';

const q = (query: unknown) => `?${encodeURIComponent(JSON.stringify(query))}`;
const plain = { type: 'Collection', properties: { title: { type: 'string' }, secret: { type: 'boolean' } } };

const CONFIGS = {
  users: { type: 'UserCollection' },
  items: plain,
  guarded: { ...plain, rules: { delete: 'users' } },
  // go-deployd's format, declaring the id the server manages.
  legacy: { properties: { id: { type: 'string' }, title: { type: 'string', required: true } } },
  gated: plain,
  // The Event resource type (Deployd's dpd-event).
  stats: { type: 'Event' },
  loginlog: { type: 'Collection', properties: { name: { type: 'string' }, sawPassword: { type: 'boolean' } } },
  ctxprobe: { type: 'Collection', properties: { title: { type: 'string' }, report: { type: 'object' } } },
  chains: { type: 'Collection', properties: { title: { type: 'string' }, caught: { type: 'string' } } },
};

const FILES = {
  'resources/items/put.js': `if (this.title === 'steal id') this.id = 'ffffffffffffffff';`,
  'resources/items/delete.js': `if (this.title === 'keep') cancel('kept', 400); if (query.reason === 'refuse') cancel('refused: ' + query.id, 403);`,
  'resources/items/get.js': `if (this.secret && !isRoot) cancel('secret', 403);`,
  // Deployd's ctx, read-only, in every event; a login.js that reads ctx.body (never the password).
  'resources/users/login.js': `dpd.loginlog.post({ name: ctx.body.username, sawPassword: ctx.body.password !== undefined });`,
  'resources/ctxprobe/post.js': `
var before = ctx.body.title;
ctx.body = 'replaced'; ctx.url = '/elsewhere';
this.report = { query: ctx.query, method: ctx.method, url: ctx.url, body: ctx.body, extra: ctx.body.extra, before: before,
  reqMethod: ctx.req.method, reqUrl: ctx.req.url, me: ctx.me ? ctx.me.username : null, sessionUser: ctx.session.user ? ctx.session.user.username : null };`,
  'resources/chains/post.js': `
var self = this;
if (this.title === 'handled') dpd.items.get({ $limit: 1 }).then(function () { throw new Error('thrown in then'); }).catch(function (e) { self.caught = e.message; });
if (this.title === 'unhandled') dpd.items.get({ $limit: 1 }).then(function () { throw new Error('nobody caught this'); });
if (this.title === 'passed on') dpd.items.get({ $limit: 1 }).then(function () { throw new Error('caught later'); }).then(function () { self.caught = 'skipped'; }).fail(function (e) { self.caught = e.message; });`,
  'resources/stats/beforerequest.js': `if (query.block) cancel('blocked', 403);`,
  'resources/stats/get.js': `
if (url === '/top') {
  dpd.items.get({ $sort: { title: 1 }, $limit: 1 }, function (list) { setResult(list[0]); });
} else {
  this.url = url; this.parts = parts; this.q = query.q || null; this.me = me ? me.username : null;
}`,
  'resources/stats/post.js': `if (!body.a) cancel('a is required', 422); setStatusCode(201); setResult(body.a + body.b);`,
  // go-deployd's sample auth gate: a BeforeRequest that reads the request from context.data.
  'resources/gated/beforerequest.js': `
function Run(context) {
  if (context.data.method !== 'GET' && !context.data.user) context.cancel('login first', 401);
  context.data.query = { injected: true };
  context.data.stamp = 'from beforerequest';
}`,
};

let server: TestServer;

before(async () => {
  server = await startServer(makeApp(CONFIGS, FILES), { args: ['--hook-workers', '1'] });
}, { timeout: 60_000 });

after(async () => {
  await server?.stop();
}, { timeout: 30_000 });

describe('the script context', () => {
  it('`this.id = …` in a Put hook fails, as Deployd protects id there; the document keeps its id', async () => {
    const item = (await server.post('/items', { title: 'mine' })).body;
    const res = await server.put(`/items/${item.id}`, { title: 'steal id' });
    assert.ok(res.status >= 400, res.text);
    assert.match(res.body.message, /Cannot modify protected property 'id'/);
    assert.equal((await server.get(`/items/${item.id}`)).body.title, 'mine');
    assert.equal((await server.get('/items/ffffffffffffffff')).status, 404);
  });

  it('a throw inside a dpd promise chain fails the request only if the chain never catches it', async () => {
    const handled = await server.post('/chains', { title: 'handled' });
    assert.deepEqual([handled.status, handled.body.caught], [200, 'thrown in then']);
    const later = await server.post('/chains', { title: 'passed on' });
    assert.deepEqual([later.status, later.body.caught], [200, 'caught later']);
    const unhandled = await server.post('/chains', { title: 'unhandled' });
    assert.ok(unhandled.status >= 400, unhandled.text);
    assert.match(unhandled.body.message, /nobody caught this/);
    assert.equal((await server.get(`/chains${q({ title: 'unhandled' })}`)).body.length, 0, 'nothing stored');
  });

  it('the Delete hook sees the query, id included', async () => {
    const item = (await server.post('/items', { title: 'asks why' })).body;
    const res = await server.del(`/items/${item.id}?reason=refuse`);
    assert.equal(res.status, 403, res.text);
    assert.equal(res.body.message, `refused: ${item.id}`);
    assert.deepEqual((await server.del(`/items/${item.id}?reason=fine`)).body, { count: 1 });
  });
});

describe('ctx, Deployd\'s request context', () => {
  it('query, method, url, body (as sent, undeclared keys too), req, me and session — read-only', async () => {
    const user = await newUser(server, 'ctxuser', 'ctxuser-password');
    const res = await server.post('/ctxprobe?x=1', { title: 't', extra: 'undeclared' }, user.headers);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.report, {
      query: { x: '1' }, method: 'POST', url: '/', body: { title: 't', extra: 'undeclared' }, extra: 'undeclared', before: 't',
      reqMethod: 'POST', reqUrl: '/', me: 'ctxuser', sessionUser: 'ctxuser',
    });
  });

  it('a login.js reading ctx.body sees the username, never the password', async () => {
    await newUser(server, 'logger', 'logger-password');
    const logged = (await server.get(`/loginlog${q({ name: 'logger' })}`)).body;
    assert.deepEqual(logged.map((d: { sawPassword: boolean }) => d.sawPassword), [false]);
  });
});

describe('"type": "Event" resources (dpd-event)', () => {
  it('GET runs get.js with url, parts, query and me; `this` is the answer', async () => {
    const res = await server.get('/stats/a/b?q=word');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { url: '/a/b', parts: ['a', 'b'], q: 'word', me: null });
  });

  it('setResult answers what a dpd call found; setStatusCode sets the status; a primitive answers as text', async () => {
    await server.post('/items', { title: 'aaa first' });
    assert.equal((await server.get('/stats/top')).body.title, 'aaa first');
    const sum = await server.post('/stats', { a: 1, b: 2 });
    assert.deepEqual([sum.status, sum.text], [201, '3']);
  });

  it('cancel and BeforeRequest refuse; a method without a script is 404, as in Deployd', async () => {
    assert.deepEqual([(await server.post('/stats', { b: 2 })).status, (await server.post('/stats', { b: 2 })).body.message], [422, 'a is required']);
    assert.equal((await server.get('/stats?block=1')).status, 403);
    assert.equal((await server.put('/stats', {})).status, 404);
    assert.equal((await server.del('/stats')).status, 404);
  });
});

describe('DELETE by query (Deployd), within the policy', () => {
  it('anyone may delete by query where the delete rule is "anyone": delete.js runs per document and a cancel keeps it', async () => {
    for (const title of ['sweep', 'sweep', 'keep']) await server.post('/items', { title, secret: false });
    const res = await server.del(`/items${q({ title: { $in: ['sweep', 'keep'] } })}`);
    assert.deepEqual(res.body, { count: 2 });
    assert.deepEqual((await server.get(`/items${q({ title: { $in: ['sweep', 'keep'] } })}`)).body.map((d: { title: string }) => d.title), ['keep']);
  });

  it('only documents the caller could GET are deleted (a get.js that cancels protects them)', async () => {
    await server.post('/items', { title: 'hidden one', secret: true }, server.root);
    await server.post('/items', { title: 'open one', secret: false });
    assert.deepEqual((await server.del(`/items${q({ title: { $regex: ' one$' } })}`)).body, { count: 1 });
    assert.deepEqual((await server.get(`/items${q({ title: { $regex: ' one$' } })}`, server.root)).body.map((d: { title: string }) => d.title), ['hidden one']);
  });

  it('where the delete rule is not "anyone", it stays root only; an empty query is always a 400', async () => {
    await server.post('/guarded', { title: 'g' });
    const user = await newUser(server, 'deleter', 'deleter-password');
    assert.equal((await server.del(`/guarded${q({ title: 'g' })}`, user.headers)).status, 403);
    assert.equal((await server.del('/items')).status, 400);
    assert.deepEqual((await server.del(`/guarded${q({ title: 'g' })}`, server.root)).body, { count: 1 });
  });
});

describe('_method override', () => {
  it('POST with ?_method=DELETE or a body _method of PUT acts as that method', async () => {
    const item = (await server.post('/items', { title: 'overridden' })).body;
    const put = await server.post(`/items/${item.id}`, { _method: 'PUT', title: 'renamed' });
    assert.equal(put.body.title, 'renamed');
    assert.equal('_method' in put.body, false);
    assert.deepEqual((await server.post(`/items/${item.id}?_method=DELETE`, {})).body, { count: 1 });
    assert.equal((await server.get(`/items/${item.id}`)).status, 404);
  });

  it('a GET never becomes a write, and an unknown method is a 400', async () => {
    const item = (await server.post('/items', { title: 'stays' })).body;
    assert.equal((await server.get(`/items/${item.id}?_method=DELETE`)).status, 200);
    assert.equal((await server.get(`/items/${item.id}`)).body.title, 'stays');
    assert.equal((await server.post(`/items/${item.id}?_method=PATCH`, {})).status, 400);
  });
});

describe('go-deployd apps', () => {
  it('a config that declares "id" loads (the declaration is ignored, with a warning)', async () => {
    const res = await server.post('/legacy', { title: 'old format', id: 'client-chosen' });
    assert.equal(res.status, 200, res.text);
    assert.notEqual(res.body.id, 'client-chosen');
    await eventually(() => /legacy.*property \\?"id\\?" is managed by the server/.test(server.output), 5000, 'the warning');
  });

  it('a Run(context) BeforeRequest reads method, query and user from context.data, and nothing it writes is stored', async () => {
    const anonymous = await server.post('/gated', { title: 'no' });
    assert.equal(anonymous.status, 401, anonymous.text);
    assert.equal((await server.get('/gated')).status, 200, 'GET passes the gate');
    const user = await newUser(server, 'gatekeeper', 'gatekeeper-password');
    const res = await server.post('/gated', { title: 'yes' }, user.headers);
    assert.equal(res.status, 200, res.text);
    const stored = (await server.get(`/gated/${res.body.id}`, server.root)).body;
    assert.deepEqual(Object.keys(stored).sort(), ['id', 'secret', 'title']);
  });
});

describe('Go hooks get the same request context and Event resources', { timeout: 900_000 }, () => {
  let go: TestServer | undefined;
  before(async () => {
    useGo();
    go = await startServer(makeApp({ calc: { type: 'Event' }, notes: { type: 'Collection', properties: { title: { type: 'string' }, seen: { type: 'object' } } } }, {
      'resources/calc/post.go': goRun(`	a, _ := ctx.Body["a"].(float64)
	b, _ := ctx.Body["b"].(float64)
	ctx.SetResult(map[string]interface{}{"sum": a + b, "url": ctx.URL, "parts": ctx.Parts})`),
      'resources/notes/post.go': goRun(`	ctx.Data["seen"] = map[string]interface{}{"url": ctx.URL, "extra": ctx.Body["extra"]}`),
    }));
  }, { timeout: 900_000 });
  after(async () => {
    await go?.stop();
  }, { timeout: 30_000 });

  it('an Event resource in Go: ctx.Body, ctx.URL, ctx.Parts and SetResult', async () => {
    const res = await goBuilt(() => go!.post('/calc/x/y', { a: 1, b: 2 }));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { sum: 3, url: '/x/y', parts: ['x', 'y'] });
  });

  it('a collection hook in Go sees the request body as sent, undeclared keys included', async () => {
    const res = await goBuilt(() => go!.post('/notes', { title: 't', extra: 'undeclared' }));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.seen, { url: '/', extra: 'undeclared' });
  });
});
