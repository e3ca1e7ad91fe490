/**
 * The resources watcher never goes deaf: rename-style saves (`sed -i`, editors' atomic save),
 * in-place saves after them, deletes and re-creates, a renamed collection folder, a swapped
 * resources/ tree (`git checkout`), and files written while the server starts. The periodic
 * sweep (the safety net) is turned off here (DEPLOYD_WATCH_SWEEP_MS=0), so these prove the watcher
 * itself; the last test turns the watcher's events off (DEPLOYD_WATCH_EVENTS=off) to prove the sweep.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { eventually, makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';

const NO_SWEEP = { DEPLOYD_WATCH_SWEEP_MS: '0', LOG_LEVEL: 'info' };
/** A post.js that stamps which version of it ran. */
const stamp = (version: string) => `this.version = '${version}';\n`;
const SCHEMA = { ...TODOS, properties: { ...TODOS.properties, version: { type: 'string' } } };

/** Waits until a POST to `coll` is stamped `version` by its post.js. */
async function runs(server: TestServer, coll: string, version: string): Promise<void> {
  let last = '';
  await eventually(async () => {
    const res = await server.post(`/${coll}`, { title: 'probe' });
    last = `${res.status} ${res.text}`;
    return res.status === 200 && res.body.version === version;
  }, 20_000, `${coll}/post.js version ${version} to run (last answer: ${last})`).catch((err: Error) => {
    throw new Error(`${err.message}; last answer: ${last}\n${server.output.slice(-2000)}`);
  });
}

/** Writes through a temporary file and a rename, as `sed -i` and atomic-saving editors do. */
function renameSave(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.tmp-${path.basename(file)}-${process.hrtime.bigint()}`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

describe('hot reload never goes deaf', () => {
  const apps: string[] = [];
  let server: TestServer | undefined;

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  }, { timeout: 60_000 });
  after(() => {
    for (const app of apps) fs.rmSync(app, { recursive: true, force: true });
  }, { timeout: 60_000 });

  function app(files: Record<string, string> = {}): string {
    const dir = makeApp({ todos: SCHEMA }, { 'resources/todos/post.js': stamp('v1'), ...files });
    apps.push(dir);
    return dir;
  }

  it('`mv tmp post.js`, then in-place saves (`echo > post.js`), again and again; config.json too', { timeout: 60_000 }, async () => {
    const dir = app();
    server = await startServer(dir, { env: NO_SWEEP });
    const hook = path.join(dir, 'resources', 'todos', 'post.js');
    await runs(server, 'todos', 'v1');
    for (let round = 0; round < 3; round++) {
      renameSave(hook, stamp(`renamed-${round}`));
      await runs(server, 'todos', `renamed-${round}`);
      fs.writeFileSync(hook, stamp(`in-place-${round}`));
      await runs(server, 'todos', `in-place-${round}`);
    }
    // The config: a rename-style save, then an in-place one, each applies.
    const config = path.join(dir, 'resources', 'todos', 'config.json');
    const withField = (field: string) => JSON.stringify({ ...SCHEMA, properties: { ...SCHEMA.properties, [field]: { type: 'string', required: true } } });
    renameSave(config, withField('first'));
    await eventually(async () => (await server!.post('/todos', { title: 't' })).body?.errors?.first !== undefined, 5000, 'renamed config.json to apply');
    fs.writeFileSync(config, withField('second'));
    await eventually(async () => (await server!.post('/todos', { title: 't', first: 'x' })).body?.errors?.second !== undefined, 5000, 'in-place config.json to apply');
    // Every reload is logged at info with the collection, the files and the outcome.
    assert.match(server.output, /"collection":"todos","files":\["todos\/post\.js"\][^\n]*"msg":"reloaded todos: todos\/post\.js: ok"/);
  });

  it('a save seen between its truncate and its write keeps the previous hook (never an empty one); a file left empty applies', { timeout: 60_000 }, async () => {
    const dir = app({ 'resources/todos/validate.js': "if (this.title === 'bad') cancel('no bad titles', 400);\n" });
    // A long settle, so that "the reload saw the empty file" can be waited for before asking.
    server = await startServer(dir, { env: { ...NO_SWEEP, DEPLOYD_WATCH_EMPTY_SETTLE_MS: '4000' } });
    const validate = path.join(dir, 'resources', 'todos', 'validate.js');
    assert.equal((await server.post('/todos', { title: 'bad' })).status, 400);
    fs.writeFileSync(validate, ''); // what an in-place save looks like between its two system calls
    await eventually(() => /"files":\["todos\/validate\.js"\][^\n]*a file became empty/.test(server!.output), 10_000, 'the reload to see the empty validate.js');
    const during = await server.post('/todos', { title: 'bad' });
    assert.equal(during.status, 400, `the previous validate.js still guards writes: ${during.text}`);
    fs.writeFileSync(validate, "if (this.title === 'worse') cancel('no worse titles', 400);\n");
    await eventually(async () => (await server!.post('/todos', { title: 'worse' })).status === 400, 10_000, 'the written validate.js to apply');
    assert.equal((await server.post('/todos', { title: 'bad' })).status, 200);
    // Emptied on purpose: once it has stayed empty for the settle time, the empty hook is what runs.
    fs.writeFileSync(validate, '');
    await eventually(async () => (await server!.post('/todos', { title: 'worse' })).status === 200, 20_000, 'the empty validate.js to apply');
  });

  it('a hook deleted and re-created; a hook with an error is logged as such, and its fix applies', { timeout: 60_000 }, async () => {
    const dir = app();
    server = await startServer(dir, { env: NO_SWEEP });
    const hook = path.join(dir, 'resources', 'todos', 'post.js');
    fs.rmSync(hook);
    await eventually(async () => {
      const res = await server!.post('/todos', { title: 'x' });
      return res.status === 200 && res.body.version === undefined;
    }, 5000, 'the deleted hook to stop running');
    fs.writeFileSync(hook, 'this.version = ;');
    await eventually(() => /reloaded todos: todos\/post\.js: todos\/post\.js: Unexpected token/.test(server!.output), 5000, 'the broken hook to be logged');
    fs.writeFileSync(hook, stamp('fixed'));
    await runs(server, 'todos', 'fixed');
  });

  it('a hook file created 50 ms after start is loaded', { timeout: 60_000 }, async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const dir = makeApp({ todos: SCHEMA, other: SCHEMA });
      apps.push(dir);
      const starting = startServer(dir, { env: NO_SWEEP });
      await new Promise((resolve) => setTimeout(resolve, 50));
      fs.writeFileSync(path.join(dir, 'resources', 'todos', 'post.js'), stamp(`early-${attempt}`));
      server = await starting;
      await runs(server, 'todos', `early-${attempt}`);
      await server.stop();
      server = undefined;
    }
  });

  it('a renamed collection folder serves under its new name and keeps hearing edits', { timeout: 60_000 }, async () => {
    const dir = app();
    server = await startServer(dir, { env: NO_SWEEP });
    await runs(server, 'todos', 'v1');
    fs.renameSync(path.join(dir, 'resources', 'todos'), path.join(dir, 'resources', 'tasks'));
    await runs(server, 'tasks', 'v1');
    await eventually(async () => (await server!.get('/todos')).status === 404, 5000, '/todos to go away');
    fs.writeFileSync(path.join(dir, 'resources', 'tasks', 'post.js'), stamp('v2'));
    await runs(server, 'tasks', 'v2');
  });

  it('a swapped resources/ tree (git checkout of another branch) applies, and later edits too', { timeout: 60_000 }, async () => {
    const dir = app();
    server = await startServer(dir, { env: NO_SWEEP });
    await runs(server, 'todos', 'v1');
    const next = path.join(dir, 'resources.next');
    fs.mkdirSync(path.join(next, 'todos'), { recursive: true });
    fs.writeFileSync(path.join(next, 'todos', 'config.json'), JSON.stringify(SCHEMA));
    fs.writeFileSync(path.join(next, 'todos', 'post.js'), stamp('branch'));
    fs.renameSync(path.join(dir, 'resources'), path.join(dir, 'resources.old'));
    fs.renameSync(next, path.join(dir, 'resources'));
    await runs(server, 'todos', 'branch');
    fs.writeFileSync(path.join(dir, 'resources', 'todos', 'post.js'), stamp('after-checkout'));
    await runs(server, 'todos', 'after-checkout');
  });

  it('the sweep alone applies an edit the watcher never reported; with neither, the edit waits', { timeout: 60_000 }, async () => {
    const dir = app();
    server = await startServer(dir, { env: { DEPLOYD_WATCH_EVENTS: 'off', DEPLOYD_WATCH_SWEEP_MS: '300', LOG_LEVEL: 'info' } });
    await runs(server, 'todos', 'v1');
    fs.writeFileSync(path.join(dir, 'resources', 'todos', 'post.js'), stamp('swept'));
    await runs(server, 'todos', 'swept');
    await server.stop();
    // The control: no events and no sweep, the same kind of edit is not seen.
    server = await startServer(dir, { env: { DEPLOYD_WATCH_EVENTS: 'off', DEPLOYD_WATCH_SWEEP_MS: '0' } });
    await runs(server, 'todos', 'swept');
    fs.writeFileSync(path.join(dir, 'resources', 'todos', 'post.js'), stamp('unseen'));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const res = await server.post('/todos', { title: 'probe' });
    assert.equal(res.body.version, 'swept');
  });
});
