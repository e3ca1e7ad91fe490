/**
 * The commands a newcomer meets first: `deployd --help` names every flag and command; a folder
 * that is not an app says what to do instead of serving nothing; `deployd create <dir>` makes an
 * app that starts, whose JavaScript and Go hooks run, and whose hooks type-check against the
 * copied types with the generated jsconfig.json.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { FLAGS } from '../src/cli/options.js';
import { goBuilt, useGo } from './helpers/go.js';
import { BIN, ROOT, startServer } from './helpers/server.js';

const run = promisify(execFile);

function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

describe('deployd --help', () => {
  it('lists every flag the parser accepts, and every command', async () => {
    const { stdout } = await run(BIN, ['--help']);
    for (const [name, spec] of Object.entries(FLAGS)) {
      assert.ok(stdout.includes(`--${name}`), `--${name} is missing from --help`);
      if ('short' in spec) assert.ok(stdout.includes(`-${spec.short}, --${name}`), `-${spec.short} is missing`);
    }
    for (const command of ['create <dir>', 'types', 'keygen', 'showkey']) assert.ok(stdout.includes(`deployd ${command}`), command);
    for (const env of ['MASTER_KEY', 'DATABASE_URL', 'REDIS_URL', 'TRUST_PROXY', 'METRICS_TOKEN', 'PORT']) assert.ok(stdout.includes(env), env);
  });

  it('create without a folder is a usage error', async () => {
    await assert.rejects(run(BIN, ['create']), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /create needs the folder/);
      return true;
    });
  });
});

describe('starting where there is no app', () => {
  it('a folder without resources/ exits 1 and says how to create or point at an app', async () => {
    const dir = tmp('dpd-empty-');
    await assert.rejects(run(BIN, ['--port', '0', '--app', dir], { timeout: 15_000 }), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /is not a deployd app \(it has no resources\/ folder\)/);
      assert.match(err.stderr, /deployd create my-app/);
      assert.match(err.stderr, /--app/);
      return true;
    });
    assert.equal(fs.existsSync(path.join(dir, '.deployd')), false, 'nothing was written');
  });

  it('an empty resources/ starts, and says there are no collections yet', async (t) => {
    const dir = tmp('dpd-empty-');
    fs.mkdirSync(path.join(dir, 'resources'));
    const server = await startServer(dir);
    t.after(() => server.stop(), { timeout: 30_000 });
    assert.match(server.output, /no collections yet: add resources\/<name>\/config\.json/);
  });
});

describe('deployd create', () => {
  it('scaffolds an app that starts: JS and Go hooks run, the page and docs are served', { timeout: 660_000 }, async (t) => {
    useGo();
    const parent = tmp('dpd-create-');
    t.after(() => fs.rmSync(parent, { recursive: true, force: true }), { timeout: 30_000 });
    const dir = path.join(parent, 'my-app');
    const { stdout } = await run(BIN, ['create', dir], { env: process.env });
    for (const file of ['resources/todos/config.json', 'resources/todos/aftercommit.js', 'resources/incidents/aftercommit.go', 'public/index.html', 'jsconfig.json', 'types/classic.d.ts', 'README.md', '.gitignore']) {
      assert.ok(fs.existsSync(path.join(dir, file)), file);
      assert.ok(stdout.includes(file), `the output lists ${file}`);
    }
    assert.match(stdout, /cd .*my-app && deployd/);

    const server = await startServer(dir);
    t.after(() => server.stop(), { timeout: 30_000 });
    const todo = await server.post('/todos', { title: 'Fix the outage', priority: 9 });
    assert.equal(todo.status, 200, todo.text);
    assert.deepEqual(todo.body.messages, ['High priority task created - notifications sent!']);
    const incident = await goBuilt(() => server.post('/incidents', { title: 'Disk full', priority: 9 }));
    assert.equal(incident.status, 200, incident.text);
    assert.deepEqual(incident.body.messages, ['incident recorded by aftercommit.go']);
    const page = await server.get('/');
    assert.match(page.text, /<script src="\/dpd\.js"><\/script>/);
    assert.equal((await server.get('/openapi.json')).body.paths['/incidents'] !== undefined, true);
  });

  it('the scaffold\'s hooks type-check with its jsconfig.json (tsc)', { timeout: 120_000 }, async (t) => {
    const parent = tmp('dpd-create-');
    t.after(() => fs.rmSync(parent, { recursive: true, force: true }), { timeout: 30_000 });
    const dir = path.join(parent, 'typed');
    await run(BIN, ['create', dir, '--no-go']);
    assert.equal(fs.existsSync(path.join(dir, 'resources/incidents/aftercommit.go')), false, '--no-go leaves the Go hook out');
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      await run(process.execPath, [tsc, '-p', path.join(dir, 'jsconfig.json')], { cwd: dir, timeout: 100_000 });
    } catch (err) {
      assert.fail(`tsc found errors in the scaffold:\n${(err as { stdout: string }).stdout}`);
    }
    // And a mistake in a hook is caught by that same check.
    fs.appendFileSync(path.join(dir, 'resources/todos/aftercommit.js'), '\nemitt("typo", {});\n');
    await assert.rejects(run(process.execPath, [tsc, '-p', path.join(dir, 'jsconfig.json')], { cwd: dir, timeout: 100_000 }), (err: { stdout: string }) => /emitt/.test(err.stdout));
  });

  it('refuses a folder that is not empty, and leaves it alone', async () => {
    const dir = tmp('dpd-create-');
    fs.writeFileSync(path.join(dir, 'keep.txt'), 'mine');
    await assert.rejects(run(BIN, ['create', dir]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /already exists and is not an empty folder/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(dir), ['keep.txt']);
  });
});
