/**
 * README.md's code blocks, run as written. Every fenced block must match one rule below (a block
 * no rule knows fails the test, so a new example cannot go untested); only the address changes:
 * `localhost:2403` becomes the test server's free port. Shell blocks run in bash in a folder where
 * `bin/deployd` and `examples/todos` are what they are in a checkout (the latter a copy, served).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { FLAGS } from '../src/cli/options.js';
import { parseSchema } from '../src/core/schema.js';
import { readRealtimeConfig } from '../src/realtime/config.js';
import { goBuilt, useGo } from './helpers/go.js';
import { RedisServer } from './helpers/redis.js';
import { BIN, eventually, freePort, makeApp, ROOT, startServer, TODOS, type TestServer } from './helpers/server.js';

const run = promisify(execFile);

interface Block {
  line: number;
  lang: string;
  text: string;
}

/** Fenced blocks, indented ones (inside list items) included, with their indentation removed. */
function readmeBlocks(): Block[] {
  const lines = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]); j++) body.push(lines[j].slice(Math.min(indent, lines[j].search(/\S|$/))));
    blocks.push({ line: i + 1, lang: open[2], text: body.join('\n') + '\n' });
    i = j;
  }
  return blocks;
}

const BLOCKS = readmeBlocks();

/** The block whose text starts with (or, for a RegExp, matches) `key`; exactly one. */
function block(key: string | RegExp): Block {
  const found = BLOCKS.filter((b) => (typeof key === 'string' ? b.text.trimStart().startsWith(key) : key.test(b.text)));
  assert.equal(found.length, 1, `README blocks matching ${key}: ${found.map((b) => b.line).join(', ') || 'none'}`);
  return found[0];
}

const RULES: Array<{ key: string | RegExp; how: string }> = [];
function rule(key: string | RegExp, how: string): Block {
  RULES.push({ key, how });
  return block(key);
}

function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A folder that looks like a checkout: bin/ (linked) and examples/todos (a copy, served by the test). */
function checkout(): { dir: string; app: string } {
  const dir = tmp('dpd-readme-');
  fs.symlinkSync(path.join(ROOT, 'bin'), path.join(dir, 'bin'));
  const app = path.join(dir, 'examples', 'todos');
  fs.cpSync(path.join(ROOT, 'examples', 'todos'), app, { recursive: true, filter: (src) => !src.includes(`${path.sep}.deployd`) });
  return { dir, app };
}

function local(text: string, server: TestServer): string {
  return text.replaceAll('localhost:2403', new URL(server.url).host);
}

async function bash(script: string, cwd: string): Promise<string> {
  try {
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], { cwd, timeout: 60_000, env: { ...process.env, LOG_LEVEL: 'warn' } });
    return stdout;
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    throw new Error(`bash exited ${e.code}:\n${e.stdout}\n${e.stderr}`);
  }
}

async function tsc(project: string): Promise<void> {
  try {
    await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { timeout: 120_000 });
  } catch (err) {
    assert.fail(`tsc: ${(err as { stdout: string }).stdout}`);
  }
}

describe('README.md code blocks', () => {
  let server: TestServer;
  let work: { dir: string; app: string };

  before(async () => {
    useGo();
    work = checkout();
    server = await startServer(work.app, { masterKey: null });
  }, { timeout: 60_000 });
  after(async () => {
    await server?.stop();
    fs.rmSync(work.dir, { recursive: true, force: true });
  }, { timeout: 30_000 });

  it('the make targets at the top exist (make -n)', async () => {
    const b = rule('make run    #', 'make -n per line');
    for (const line of b.text.split('\n').filter((l) => l.startsWith('make '))) {
      const args = line.replace(/#.*$/, '').trim().split(/\s+/).slice(1);
      await run('make', ['-n', '-C', ROOT, ...args], { timeout: 60_000 });
    }
  });

  it('the five-minute tour runs against the example app', { timeout: 60_000 }, async () => {
    const out = await bash(local(rule('# Create (200', 'bash against the example app').text, server), work.dir);
    assert.match(out, /"title":"Write the report","priority":4/);
    assert.match(out, /"errors":\{"priority":"must be a number","title":"is required"\}/);
    assert.match(out, /\{"count":1\}/);
    assert.doesNotMatch(out, /DPD_ERR_(?!VALIDATION)/, 'no other error');
  });

  it('the collection config example loads and serves', async (t) => {
    const config = JSON.parse(rule(/"sku":\s+\{ "type": "string", "unique": true \}/, 'a collection of its own').text);
    parseSchema('items', config);
    const s = await startServer(makeApp({ items: config }));
    t.after(() => s.stop(), { timeout: 30_000 });
    const res = await s.post('/items', { title: 'a', sku: 'x', tags: ['t'] });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.priority, 1);
    assert.match(res.body.due, /^\d{4}-\d\d-\d\dT/);
    assert.equal((await s.post('/items', { title: 'b', sku: 'x' })).status, 409);
  });

  it('the JS hooks example runs and type-checks', { timeout: 120_000 }, async (t) => {
    const b = rule('// resources/todos/validate.js', 'files split at their // resources/ line');
    const files: Record<string, string> = {};
    for (const part of b.text.split(/(?=^\/\/ resources\/)/m)) files[/^\/\/ (resources\/\S+)/.exec(part)![1]] = part;
    const app = makeApp({ todos: TODOS }, files);
    // As `deployd create` lays an app out: the hook types in types/, a jsconfig.json next to resources/.
    fs.cpSync(path.join(ROOT, 'hooks-js', 'types'), path.join(app, 'types'), { recursive: true });
    fs.writeFileSync(path.join(app, 'jsconfig.json'), JSON.stringify({
      compilerOptions: { checkJs: true, allowJs: true, noEmit: true, target: 'ES2022', lib: ['ES2022'], types: [], module: 'ESNext', moduleResolution: 'bundler' },
      include: ['resources/**/*.js', 'types/classic.d.ts'],
    }));
    await tsc(path.join(app, 'jsconfig.json'));
    const s = await startServer(app);
    t.after(() => s.stop(), { timeout: 30_000 });
    const ok = await s.post('/todos', { title: '  Write it  ', priority: 9, assignedTo: 'ana' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.title, 'Write it');
    assert.equal(ok.body.assignedTo, undefined, 'protected for non-root callers');
    const long = await s.post('/todos', { title: 'x'.repeat(81) });
    assert.equal(long.status, 400);
    assert.equal(long.body.errors.title, 'is too long');
  });

  it('the users example runs as written', { timeout: 60_000 }, async (t) => {
    const s = await startServer(makeApp({ users: { type: 'UserCollection', properties: {} } }));
    t.after(() => s.stop(), { timeout: 30_000 });
    const out = await bash(local(rule('curl -X POST localhost:2403/users', 'bash against an app with users').text, s), work.dir);
    assert.match(out, /\{"id":"[0-9a-f]{16}","username":"ana"\}/);
    assert.match(out, /X-Session-Token: /i);
    assert.match(out, /\{"count":1\}\s*$/);
    assert.equal((out.match(/"username":"ana"/g) ?? []).length, 2, 'created, then /users/me');
  });

  it('the access rules example loads', () => {
    parseSchema('notes', JSON.parse(rule(/"rules": \{ "read": "owner"/, 'parseSchema').text));
  });

  it('the browser WebSocket snippet is run in Chromium by test/browser.test.ts', () => {
    rule('// Browser WebSocket connection', 'test/browser.test.ts');
    assert.match(fs.readFileSync(path.join(ROOT, 'test', 'browser.test.ts'), 'utf8'), /runs the README's real-time snippet/);
  });

  it('the Node client example runs against the example app', { timeout: 60_000 }, async () => {
    const b = rule("import { createClient } from 'deployd-ts/client';", 'node, inside the package so deployd-ts/client resolves');
    // Inside the package: `deployd-ts/client` resolves to this checkout (package self-reference).
    const file = path.join(ROOT, `.readme-${randomBytes(4).toString('hex')}.mjs`);
    fs.writeFileSync(file, local(b.text, server));
    try {
      const { stdout } = await run(process.execPath, [file], { timeout: 30_000 });
      assert.match(stdout, /\[ 'High priority task created - notifications sent!' \]/);
      assert.match(stdout, /created: From Node/);
      assert.match(stdout, /urgent: From Node/);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it('the realtime.json example is accepted', () => {
    const app = makeApp({});
    fs.mkdirSync(path.join(app, '.deployd'));
    fs.writeFileSync(path.join(app, '.deployd', 'realtime.json'), rule(/"rooms": \["lobby", "team-\*"\]/, 'readRealtimeConfig').text);
    const config = readRealtimeConfig(app);
    assert.equal(config.maxConnections, 10000);
  });

  it('the multi-server example starts three instances sharing Redis', { timeout: 90_000 }, async (t) => {
    const b = rule('# Set Redis URL for multi-server', 'bash with ./deployd, free ports and the test Redis');
    const redis = await RedisServer.start();
    t.after(() => redis.stop(), { timeout: 30_000 });
    const app = makeApp({ todos: TODOS });
    fs.symlinkSync(BIN, path.join(app, 'deployd'));
    const ports = await Promise.all([0, 1, 2].map(() => freePort()));
    let script = b.text.replace('redis://localhost:6379', redis.url);
    ['2403', '2404', '2405'].forEach((p, i) => { script = script.replace(`--port ${p}`, `--port ${ports[i]} --host 127.0.0.1`); });
    const child = spawn('bash', ['-c', `${script}\nwait`], { cwd: app, detached: true, stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'warn', MASTER_KEY: randomBytes(24).toString('hex') } });
    t.after(() => { try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ } }, { timeout: 30_000 });
    for (const port of ports) {
      await eventually(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
        return res?.status === 200 && (await res.json()).bus === 'ok';
      }, 30_000, `instance ${port} with the Redis bus`);
    }
  });

  it('the Go hook examples build and run', { timeout: 660_000 }, async (t) => {
    const post = rule('// resources/todos/post.go', 'Go hook files');
    const aftercommit = rule('// resources/todos/aftercommit.go', 'Go hook files');
    const s = await startServer(makeApp({ todos: TODOS }, { 'resources/todos/post.go': post.text, 'resources/todos/aftercommit.go': aftercommit.text }));
    t.after(() => s.stop(), { timeout: 30_000 });
    const res = await goBuilt(() => s.post('/todos', { title: '  Go  ', priority: 9 }));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.title, 'Go');
    // aftercommit.go is the seed page's, verbatim: it emits urgent_task_created (test/go-seed.test.ts
    // checks that event end to end) and leaves the answer as it is.
    assert.equal(res.body.messages, undefined);
    const blank = await s.post('/todos', { title: '   ' });
    assert.equal(blank.status, 422);
    assert.equal(blank.body.message, 'title cannot be blank');
  });

  it('the create example makes an app that starts', { timeout: 120_000 }, async (t) => {
    const b = rule('bin/deployd create my-app', 'bash; the server it starts gets a free port and is stopped');
    const port = await freePort();
    const script = b.text.replace('../bin/deployd', `exec ../bin/deployd --port ${port} --host 127.0.0.1`);
    const dir = tmp('dpd-readme-create-');
    fs.symlinkSync(path.join(ROOT, 'bin'), path.join(dir, 'bin'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }), { timeout: 30_000 });
    const child = spawn('bash', ['-c', script], { cwd: dir, detached: true, stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'warn' } });
    t.after(() => { try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ } }, { timeout: 30_000 });
    await eventually(async () => (await fetch(`http://127.0.0.1:${port}/todos`).catch(() => undefined))?.status === 200, 60_000, 'the created app to serve');
    assert.ok(fs.existsSync(path.join(dir, 'my-app', 'resources', 'todos', 'aftercommit.js')));
  });

  it('the metrics example runs against the example app', { timeout: 60_000 }, async () => {
    const out = await bash(local(rule('KEY=$(bin/deployd showkey --app examples/todos)\ncurl -s localhost:2403/metrics', 'bash against the example app').text, server), work.dir);
    assert.match(out, /^dpd_http_requests_total\{collection="[^"]+",method="\w+",status="\d+"\} \d+$/m);
    assert.match(out, /^\/incidents .*\/todos \/todos\/count .*\/health$/m);
  });

  it('the usage block names exactly the flags the CLI accepts', () => {
    const b = rule('deployd [--port 2403]', 'compared with FLAGS');
    const named = new Set([...b.text.matchAll(/--([a-z-]+)/g)].map((m) => m[1]));
    assert.deepEqual([...named].sort(), Object.keys(FLAGS).sort());
  });

  it('the MongoDB lines need a MongoDB server: their commands are exercised by test/mongo-server.test.ts', () => {
    rule('DATABASE_URL=mongodb://127.0.0.1:27017/todos make run', 'test/mongo-server.test.ts');
    assert.ok(fs.existsSync(path.join(ROOT, 'test', 'mongo-server.test.ts')));
  });

  it('every route of the admin API listing is served by src/admin/admin-routes.ts', () => {
    const b = rule('GET  /_admin/status', 'each listed path found in admin-routes.ts');
    const source = fs.readFileSync(path.join(ROOT, 'src', 'admin', 'admin-routes.ts'), 'utf8');
    for (const line of b.text.split('\n').filter(Boolean)) {
      const url = /(\/_admin\/[^\s\[?]*)/.exec(line)?.[1];
      assert.ok(url, line);
      assert.ok(source.includes(`'${url}`), `${url} is not a route in admin-routes.ts`);
    }
  });

  it('the Go dpd snippet builds and runs as a hook', { timeout: 660_000 }, async (t) => {
    const b = rule('func Run(ctx *EventContext) error {\n\ttodo, err := ctx.Dpd("todos").GetOne', 'a Go hook file (errors imported)');
    const s = await startServer(makeApp({ todos: { ...TODOS, properties: { ...TODOS.properties, comments: { type: 'number' } } }, notes: { type: 'Collection', properties: { todoId: { type: 'string' } } } }, {
      'resources/notes/post.go': `import "errors"\n\n${b.text}`,
    }));
    t.after(() => s.stop(), { timeout: 30_000 });
    const todo = (await s.post('/todos', { title: 'commented', comments: 0 })).body;
    const res = await goBuilt(() => s.post('/notes', { todoId: todo.id }));
    assert.equal(res.status, 200, res.text);
    assert.equal((await s.get(`/todos/${todo.id}`)).body.comments, 1);
    const missing = await s.post('/notes', { todoId: 'ffffffffffffffff' });
    assert.deepEqual([missing.status, missing.body.errors], [400, { todoId: 'no such todo' }]);
  });

  it('the hook unit-test snippets are what the examples run (test/go-sdk.test.ts, test/example-hooks.test.ts)', () => {
    rule('res := hookstest.Run(Run', 'hooks-go/hookstest, run by go test');
    assert.ok(fs.existsSync(path.join(ROOT, 'hooks-go', 'hookstest')));
    rule("import { runHook } from 'deployd-ts';", 'test/example-hooks.test.ts');
    assert.match(fs.readFileSync(path.join(ROOT, 'src', 'index.ts'), 'utf8'), /runHook/);
    assert.ok(fs.existsSync(path.join(ROOT, 'test', 'example-hooks.test.ts')));
  });

  it('every path in the layout exists', () => {
    const b = rule('bin/deployd          the CLI', 'fs.existsSync per path');
    for (const line of b.text.split('\n').filter(Boolean)) {
      const rel = line.split(/\s+/)[0];
      assert.ok(fs.existsSync(path.join(ROOT, rel)), rel);
    }
  });

  it('every block of the README has a rule here', () => {
    for (const b of BLOCKS) {
      const rules = RULES.filter((r) => (typeof r.key === 'string' ? b.text.trimStart().startsWith(r.key) : r.key.test(b.text)));
      assert.equal(rules.length, 1, `README.md line ${b.line} (${b.lang || 'no language'}) is run by ${rules.length} rules: add one to test/readme.test.ts`);
    }
  });
});
