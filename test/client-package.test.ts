/**
 * The client as its own package and typed for an app:
 *  - `subscribe/unsubscribe/join/leave` against a real server: what reaches the client, refusals,
 *    and the same subscriptions and rooms after the server restarts (the client replays them);
 *  - `npm pack` of scripts/client-package.mjs: a tarball with no dependencies and nothing of the
 *    server, installed into a fresh project and imported from plain Node;
 *  - `deployd types` for an app with declared events, checked by `tsc` against that installed
 *    package: right uses compile, wrong bodies and unknown events do not.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createClient } from '../src/client/index.js';
import { BIN, eventually, freePort, makeApp, ROOT, startServer, TODOS } from './helpers/server.js';

const run = promisify(execFile);
const FAST_RECONNECT = { minDelayMs: 50, maxDelayMs: 300 };

const NOTES = { type: 'Collection', properties: { title: { type: 'string' } } };
/** Emits to the room named in the document (or nowhere). */
const ROOM_EMIT = `if (this.title && this.title.indexOf('room:') === 0) emit(this.title.slice(5), 'room_news', { title: this.title });`;

describe('client subscribe/unsubscribe/join/leave', () => {
  it('narrows collections, follows rooms, refuses what the server refuses, and keeps all of it across a restart', { timeout: 90_000 }, async (t) => {
    const port = await freePort();
    const app = makeApp({ todos: TODOS, notes: NOTES }, {
      'resources/notes/aftercommit.js': ROOM_EMIT,
      '.deployd/realtime.json': JSON.stringify({ rooms: ['lobby', 'team-*'] }),
    });
    let server = await startServer(app, { args: ['--port', String(port)] });
    t.after(() => server.stop(), { timeout: 30_000 });
    const dpd = createClient({ baseUrl: server.url, WebSocket, collections: ['todos', 'notes'], reconnect: FAST_RECONNECT });
    t.after(() => dpd.close(), { timeout: 30_000 });

    const seen: string[] = [];
    dpd.todos.on('created', (doc: { title: string }) => seen.push(`todos:${doc.title}`));
    dpd.notes.on('created', (doc: { title: string }) => seen.push(`notes:${doc.title}`));
    dpd.on('room_news', (data: { title: string }) => seen.push(`room:${data.title}`));

    // Before the socket is open: settled once connected and confirmed.
    await dpd.subscribe(['notes']);
    await server.post('/todos', { title: 'hidden' });
    await server.post('/notes', { title: 'shown' });
    await eventually(() => seen.includes('notes:shown'), 5000, 'the subscribed collection');
    assert.deepEqual(seen, ['notes:shown'], 'todos is not subscribed');

    await dpd.subscribe('todos');
    await dpd.unsubscribe(['notes']);
    await server.post('/notes', { title: 'not any more' });
    await server.post('/todos', { title: 'now shown' });
    await eventually(() => seen.includes('todos:now shown'), 5000, 'todos after subscribe');
    assert.ok(!seen.includes('notes:not any more'));

    await dpd.join('team-blue');
    await assert.rejects(dpd.join('secret'), (err: { message: string }) => /cannot be joined/.test(err.message));
    await assert.rejects(dpd.subscribe([]), (err: { message: string }) => /collection names/.test(err.message));
    // A room's event needs a notes change; notes is unsubscribed but room events are not collection changes.
    await server.post('/notes', { title: 'room:team-blue' });
    await eventually(() => seen.includes('room:room:team-blue'), 5000, 'the room event');

    // The server restarts: the client reconnects and replays subscriptions and rooms.
    seen.length = 0;
    await server.stop();
    server = await startServer(app, { args: ['--port', String(port)] });
    await eventually(() => dpd.connected, 15_000, 'the reconnect');
    await dpd.leave('lobby'); // confirmed after the replay (never joined: still "left")
    await server.post('/notes', { title: 'still unsubscribed' });
    await server.post('/notes', { title: 'room:team-blue' });
    await server.post('/todos', { title: 'after restart' });
    await eventually(() => seen.includes('todos:after restart') && seen.includes('room:room:team-blue'), 5000, 'events after the restart');
    assert.ok(!seen.includes('notes:still unsubscribed'), 'the unsubscribe survived the restart');

    await dpd.leave('team-blue');
    await server.post('/notes', { title: 'room:team-blue' });
    await server.post('/todos', { title: 'marker' });
    await eventually(() => seen.includes('todos:marker'), 5000, 'the marker');
    assert.equal(seen.filter((s) => s === 'room:room:team-blue').length, 1, 'no room event after leave');
  });
});

describe('the client as its own package', () => {
  it('packs without dependencies, installs alone, and the generated app types check with tsc', { timeout: 180_000 }, async (t) => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-client-pkg-'));
    t.after(() => fs.rmSync(work, { recursive: true, force: true }), { timeout: 30_000 });
    const { stdout } = await run(process.execPath, [path.join(ROOT, 'scripts', 'client-package.mjs'), '--out', path.join(work, 'pkg')], { timeout: 120_000 });
    const tarball = stdout.trim().split('\n').pop()!;
    assert.ok(fs.existsSync(tarball), `npm pack wrote ${tarball}`);
    const listing = (await run('tar', ['tzf', tarball])).stdout.trim().split('\n').sort();
    assert.deepEqual(listing, ['package/README.md', 'package/index.d.ts', 'package/index.js', 'package/package.json']);

    // A fresh project with only this package (and `ws`, which Node 20 needs for WebSocket).
    const project = path.join(work, 'project');
    const installed = path.join(project, 'node_modules', '@deployd-ts', 'client');
    fs.mkdirSync(installed, { recursive: true });
    await run('tar', ['xzf', tarball, '-C', installed, '--strip-components=1']);
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
    assert.equal(manifest.name, '@deployd-ts/client');
    assert.equal(manifest.dependencies, undefined, 'no dependencies');
    assert.equal(manifest.peerDependencies, undefined);
    fs.symlinkSync(path.join(ROOT, 'node_modules', 'ws'), path.join(project, 'node_modules', 'ws'));
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ type: 'module', private: true }));

    // The app, its generated types, and a program that uses them.
    const app = makeApp({
      todos: {
        ...TODOS,
        events: {
          urgent_task_created: { properties: { title: { type: 'string', required: true }, priority: { type: 'number', required: true } } },
          'todos:done': {},
        },
      },
      'shop/orders': { properties: { item: { type: 'string', required: true }, qty: { type: 'number', default: 1 } } },
      ping: { type: 'Event' },
    }, { 'resources/todos/aftercommit.js': `if (this.priority >= 8) emit('urgent_task_created', { title: this.title, priority: this.priority });` });
    const types = await run(BIN, ['types', '--app', app, '--client', '@deployd-ts/client', '--out', path.join(project, 'deployd-types.ts')]);
    assert.match(types.stdout, /wrote .*deployd-types\.ts/);
    const server = await startServer(app);
    t.after(() => server.stop(), { timeout: 30_000 });
    fs.writeFileSync(path.join(project, 'main.ts'), `
import { WebSocket } from 'ws';
import { createAppClient, type Todos } from './deployd-types.js';
declare const process: { argv: string[] }; // no @types/node in this project

const dpd = createAppClient({ baseUrl: process.argv[2], WebSocket });
const urgent = new Promise<string>((resolve) => {
  dpd.on('urgent_task_created', (data) => resolve(data.title + ':' + data.priority.toFixed(0)));
});
await new Promise<void>((resolve) => dpd.socketReady(resolve));
const todo: Todos = await dpd.todos.post({ title: 'typed', priority: 9 });
const order = await dpd.shoporders.post({ item: 'book' });
const moved = await dpd.todos.put(todo.id, { priority: { $inc: 1 } });
console.log(JSON.stringify({ title: todo.title, qty: order.qty, priority: moved.priority, urgent: await urgent }));
dpd.close();
`);
    fs.writeFileSync(path.join(project, 'wrong.ts'), `
import { createAppClient } from './deployd-types.js';
const dpd = createAppClient({ baseUrl: 'http://localhost:2403' });
// @ts-expect-error title is required
void dpd.todos.post({ priority: 3 });
// @ts-expect-error priority is a number
void dpd.todos.post({ title: 'x', priority: 'high' });
// @ts-expect-error no such collection
void dpd.nothing;
// @ts-expect-error the event's data has no such field
dpd.on('urgent_task_created', (data) => data.nope);
dpd.todos.on('done', (data) => data);
dpd.todos.on('created', (doc) => doc.title.toUpperCase());
void dpd.ping.post({ any: 'thing' }); // an Event resource: any JSON
`);
    fs.writeFileSync(path.join(project, 'ws.d.ts'), `declare module 'ws' { export const WebSocket: any; }\n`);
    fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', types: [], skipLibCheck: false, lib: ['ES2022', 'DOM'] },
      files: ['main.ts', 'wrong.ts', 'deployd-types.ts', 'ws.d.ts'],
    }));
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      await run(process.execPath, [tsc, '-p', project], { cwd: project, timeout: 120_000 });
    } catch (err) {
      assert.fail(`tsc failed on the generated types:\n${(err as { stdout: string }).stdout}`);
    }
    const result = await run(process.execPath, [path.join(project, 'out', 'main.js'), server.url], { cwd: project, timeout: 30_000 });
    assert.deepEqual(JSON.parse(result.stdout), { title: 'typed', qty: 1, priority: 10, urgent: 'typed:9' });
  });

  it('refuses an app with a malformed "events" declaration, naming the file', async () => {
    const app = makeApp({ todos: { ...TODOS, events: 'urgent' } });
    await assert.rejects(run(BIN, ['types', '--app', app, '--out', '-']), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /resources\/todos\/config\.json: "events" must be/);
      return true;
    });
  });
});
