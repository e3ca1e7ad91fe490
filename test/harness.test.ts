/**
 * The harness stops what a test file started, so the file ends: a server a test forgot, and the
 * servers a `before` started beside one whose start failed (it used to leave them running, their
 * pipes held the file open and the whole run hung). Each case is a small test file run by
 * `node --test` in a child process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

const HELPERS = pathToFileURL(path.join(path.dirname(new URL(import.meta.url).pathname), 'helpers', 'server.js')).href;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deployd-harness-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }), { timeout: 10_000 });

/** Runs `body` as a test file; resolves with its exit code and the pids it wrote to `pids`. */
function runFile(name: string, body: string): Promise<{ code: number | null; pids: number[]; output: string }> {
  const file = path.join(dir, `${name}.test.mjs`);
  const pidsFile = path.join(dir, `${name}.pids`);
  fs.writeFileSync(file, `import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { makeApp, startServer } from ${JSON.stringify(HELPERS)};
const record = (server) => { fs.appendFileSync(${JSON.stringify(pidsFile)}, server.proc.pid + '\\n'); return server; };
${body}
`);
  return new Promise((resolve) => {
    // Its own test run, not a part of this one (node:test marks its children with NODE_TEST_CONTEXT).
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    // Its own process group: a file that does not end within 90 s (the failure this test is about)
    // is killed with everything it started.
    const child = spawn(process.execPath, ['--no-node-snapshot', '--test', file], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 90_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const pids = fs.existsSync(pidsFile) ? fs.readFileSync(pidsFile, 'utf8').split('\n').filter(Boolean).map(Number) : [];
      resolve({ code, pids, output });
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the harness ends what a test file started', { timeout: 240_000 }, () => {
  it('a server a test never stopped is stopped when the file ends, and the file ends', async () => {
    const run = await runFile('forgotten', `
it('starts a server and forgets it', async () => {
  record(await startServer(makeApp({})));
});`);
    assert.equal(run.code, 0, run.output);
    assert.equal(run.pids.length, 1, run.output);
    assert.equal(alive(run.pids[0]), false, `server ${run.pids[0]} still running`);
  });

  it('a before whose Promise.all failed on one start: the others are stopped, and the file ends', async () => {
    const run = await runFile('half-started', `
describe('servers', () => {
  before(async () => {
    // The second server is given a flag it does not know: it exits before listening.
    await Promise.all([startServer(makeApp({})).then(record), startServer(makeApp({}), { args: ['--no-such-flag'] })]);
  }, { timeout: 120_000 });
  it('never runs', () => {});
});`);
    assert.notEqual(run.code, 0, 'the failed before fails the file');
    assert.match(run.output, /server exited with \d+ before listening/, run.output);
    assert.equal(run.pids.length, 1, run.output);
    assert.equal(alive(run.pids[0]), false, `server ${run.pids[0]} still running`);
  });
});
