/**
 * Deployd and go-deployd apps run unmodified (issue #16): behaviours a migrating app relies on,
 * written from deployd-behaviour.md and go-deployd-behaviour.md, against a real server.
 * (Users: test/users.test.ts; dpd recursion: test/hooks-api.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
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
};

const FILES = {
  'resources/items/put.js': `if (this.title === 'steal id') this.id = 'ffffffffffffffff';`,
  'resources/items/delete.js': `if (this.title === 'keep') cancel('kept', 400); if (query.reason === 'refuse') cancel('refused: ' + query.id, 403);`,
  'resources/items/get.js': `if (this.secret && !isRoot) cancel('secret', 403);`,
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

  it('the Delete hook sees the query, id included', async () => {
    const item = (await server.post('/items', { title: 'asks why' })).body;
    const res = await server.del(`/items/${item.id}?reason=refuse`);
    assert.equal(res.status, 403, res.text);
    assert.equal(res.body.message, `refused: ${item.id}`);
    assert.deepEqual((await server.del(`/items/${item.id}?reason=fine`)).body, { count: 1 });
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
