/**
 * The server as an operator sees it: the CLI, the master key file, start-up and shutdown,
 * durability across `kill -9`, several processes on one database, and live config reloads.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BIN, eventually, makeApp, startServer, TODOS, writeConfig, type TestServer } from './helpers/server.js';

const run = promisify(execFile);

describe('CLI', () => {
  it('prints usage with --help and rejects unknown flags with exit code 2', async () => {
    const help = await run(BIN, ['--help']);
    assert.match(help.stdout, /deployd \[options\]/);
    assert.match(help.stdout, /--max-body/);
    await assert.rejects(run(BIN, ['--no-such-flag']), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /no-such-flag/);
      return true;
    });
  });

  it('keygen writes .deployd/security.json with mode 0600 and showkey prints the same key', async () => {
    const app = makeApp({});
    const created = await run(BIN, ['keygen', '--app', app]);
    const file = path.join(app, '.deployd', 'security.json');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const key = JSON.parse(fs.readFileSync(file, 'utf8')).masterKey as string;
    assert.match(key, /^[0-9a-f]{96}$/);
    assert.ok(created.stdout.includes(key));
    const shown = await run(BIN, ['showkey', '--app', app]);
    assert.equal(shown.stdout.trim(), key);
  });

  it('showkey without a key file explains how to create one', async () => {
    const app = makeApp({});
    await assert.rejects(run(BIN, ['showkey', '--app', app]), /deployd keygen/);
  });

  it('refuses a missing app folder', async () => {
    await assert.rejects(run(BIN, ['--app', '/nonexistent/app', '--port', '0']), /does not exist/);
  });
});

describe('start-up', () => {
  it('generates a master key on first start, prints it once, and accepts it as root', async () => {
    const app = makeApp({ todos: TODOS });
    const first = await startServer(app, { masterKey: null });
    try {
      const keyFile = path.join(app, '.deployd', 'security.json');
      const key = JSON.parse(fs.readFileSync(keyFile, 'utf8')).masterKey as string;
      assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
      assert.ok(first.output.includes(key), 'the new key is printed on first start');
      assert.match(first.output, /listening on http:\/\/.+ app .+ store sqlite:.+data\.sqlite, master key .+security\.json/);
      const bulk = await first.del('/todos?{"id":{"$ne":null}}', { 'x-master-key': key });
      assert.equal(bulk.status, 200);
    } finally {
      await first.stop();
    }
    const second = await startServer(app, { masterKey: null });
    try {
      const key = JSON.parse(fs.readFileSync(path.join(app, '.deployd', 'security.json'), 'utf8')).masterKey as string;
      assert.ok(!second.output.includes(key), 'the key is not printed again');
    } finally {
      await second.stop();
    }
  });

  it('never writes the master key to the logs, even when a request sends it', async () => {
    const app = makeApp({ todos: TODOS });
    const server = await startServer(app, { args: ['--dev', '--log-level', 'debug', '--log-format', 'json'] });
    try {
      await server.get('/todos', server.root);
      await server.get('/todos', { 'x-master-key': 'wrong-key-value-123' });
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(server.output.includes('"url":"/todos"'), 'request logging is on in this test');
      assert.ok(!server.output.includes(server.masterKey!), 'master key leaked into the logs');
      assert.ok(!server.output.includes('wrong-key-value-123'), 'a sent key leaked into the logs');
    } finally {
      await server.stop();
    }
  });
});

describe('shutdown', () => {
  it('on SIGTERM finishes the request in flight, then exits 0', async () => {
    const app = makeApp({ todos: TODOS });
    const server = await startServer(app);
    // A POST whose body is still arriving when the signal lands.
    let push!: (chunk: string | null) => void;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (chunk) => (chunk === null ? controller.close() : controller.enqueue(new TextEncoder().encode(chunk)));
      },
    });
    const pending = fetch(`${server.url}/todos`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    push('{"title":"in flight",');
    await new Promise((r) => setTimeout(r, 200));
    const exited = new Promise<number | null>((resolve) => server.proc.once('exit', (code) => resolve(code)));
    server.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    push('"priority":2}');
    push(null);
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal((await res.json()).title, 'in flight');
    assert.equal(await exited, 0);
  });

  it('on SIGINT with nothing in flight exits 0 promptly', async () => {
    const server = await startServer(makeApp({ todos: TODOS }));
    const started = Date.now();
    assert.equal(await server.stop('SIGINT'), 0);
    assert.ok(Date.now() - started < 5000);
  });
});

describe('durability', () => {
  it('every write answered 200 survives kill -9 right after', async () => {
    const app = makeApp({ todos: TODOS });
    const server = await startServer(app);
    const created = await Promise.all(Array.from({ length: 40 }, (_, i) => server.post('/todos', { title: `t${i}`, priority: i })));
    const last = await server.put(`/todos/${created[0].body.id}`, { title: 'updated before the crash' });
    assert.equal(last.status, 200);
    await server.stop('SIGKILL');
    const restarted = await startServer(app);
    try {
      const all = await restarted.get('/todos?$limit=100');
      assert.equal(all.body.length, 40);
      assert.deepEqual(new Set(all.body.map((d: { id: string }) => d.id)), new Set(created.map((c) => c.body.id)));
      assert.equal((await restarted.get(`/todos/${created[0].body.id}`)).body.title, 'updated before the crash');
    } finally {
      await restarted.stop();
    }
  });
});

describe('several processes on one database file', () => {
  const servers: TestServer[] = [];
  before(async () => {
    const app = makeApp({ todos: TODOS });
    for (let i = 0; i < 3; i++) servers.push(await startServer(app));
  }, { timeout: 120_000 });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  }, { timeout: 60_000 });

  it('concurrent creates on three instances all land', async () => {
    await Promise.all(servers.flatMap((s, i) => Array.from({ length: 30 }, (_, j) => s.post('/todos', { title: `s${i}-${j}` }).then((r) => assert.equal(r.status, 200)))));
    const count = await servers[0].get('/todos/count');
    assert.equal(count.body.count, 90);
  });

  it('concurrent $inc from three instances never loses an update', async () => {
    const doc = (await servers[0].post('/todos', { title: 'counter', n: 0 })).body;
    await Promise.all(servers.flatMap((s) => Array.from({ length: 20 }, () => s.put(`/todos/${doc.id}`, { n: { $inc: 1 } }).then((r) => assert.equal(r.status, 200)))));
    assert.equal((await servers[1].get(`/todos/${doc.id}`)).body.n, 60);
  });
});

describe('live configuration', () => {
  let server: TestServer;
  let app: string;
  before(async () => {
    app = makeApp({ todos: TODOS, notes: { properties: { text: { type: 'string' } } } });
    server = await startServer(app);
  }, { timeout: 120_000 });
  after(() => server.stop(), { timeout: 60_000 });

  it('a collection added while running is served without a restart', async () => {
    writeConfig(app, 'shop/orders', { properties: { sku: { type: 'string', required: true } } });
    await eventually(async () => (await server.get('/shop/orders')).status === 200, 5000, '/shop/orders');
    const created = await server.post('/shop/orders', { sku: 'A-1' });
    assert.equal(created.status, 200);
    assert.equal(created.body.sku, 'A-1');
  });

  it('an edited config applies without a restart', async () => {
    writeConfig(app, 'notes', { properties: { text: { type: 'string' }, pinned: { type: 'boolean' } } });
    await eventually(async () => {
      const res = await server.post('/notes', { text: 'x', pinned: true });
      return res.body.pinned === true;
    }, 5000, 'the new property');
  });

  it('a broken config makes only that collection answer 500 naming the file', async () => {
    writeConfig(app, 'notes', '{ "properties": { "text": ');
    await eventually(async () => (await server.get('/notes')).status === 500, 5000, 'the broken config');
    const broken = await server.get('/notes');
    assert.match(broken.body.message, /resources\/notes\/config\.json/);
    assert.equal(broken.body.code, 'DPD_ERR_CONFIG_INVALID');
    assert.equal((await server.get('/todos')).status, 200, 'other collections keep serving');
    writeConfig(app, 'notes', { properties: { text: { type: 'string' }, unknownTypeProp: { type: 'email' } } });
    await eventually(async () => /unknown type "email"/.test((await server.get('/notes')).body?.message ?? ''), 5000, 'the type error');
    writeConfig(app, 'notes', { properties: { text: { type: 'string' } } });
    await eventually(async () => (await server.get('/notes')).status === 200, 5000, 'the repaired config');
  });

  it('a removed collection is no longer served', async () => {
    fs.rmSync(path.join(app, 'resources', 'shop'), { recursive: true });
    await eventually(async () => (await server.get('/shop/orders')).status === 404, 5000, 'removal');
  });
});

describe('static files', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer(makeApp({ todos: TODOS }, {
      'public/index.html': '<h1>home</h1>',
      'public/css/site.css': 'body{}',
    }));
  }, { timeout: 120_000 });
  after(() => server.stop(), { timeout: 60_000 });

  it('serves public/ at / next to the collections', async () => {
    const home = await server.get('/');
    assert.equal(home.status, 200);
    assert.equal(home.text, '<h1>home</h1>');
    assert.match(home.headers.get('content-type') ?? '', /text\/html/);
    assert.equal((await server.get('/css/site.css')).text, 'body{}');
  });

  it('answers 404 JSON for missing files and never leaves public/', async () => {
    const missing = await server.get('/nope.html');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.message, 'resource not found');
    const escape = await server.get('/%2e%2e/%2e%2e/etc/passwd');
    assert.equal(escape.status, 404);
  });
});
