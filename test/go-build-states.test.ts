/**
 * Go builds never strand a hook: while a build runs, a request waits a bounded time and then gets
 * 503 with Retry-After; /health lists each collection's Go hooks as building / ready / failed (with
 * why); a build that failed for a reason other than the code (here: a `go` that fails like a
 * network download does) is tried again on the next request, without a restart; the log shows the
 * build's progress. Faults are injected with a `go` wrapper first on the server's PATH.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { GO, goBuilt, goRun, slowGo, useGo } from './helpers/go.js';
import { makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';

const BUILD_MS = 600_000;

/** A `go` that fails like a failed module download until `marker` exists, then is the real one. */
function failingGo(marker: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-failgo-'));
  fs.writeFileSync(
    path.join(dir, 'go'),
    `#!/bin/sh\nif [ -e ${JSON.stringify(marker)} ]; then exec ${JSON.stringify(GO)} "$@"; fi\n` +
      `echo 'go: example.com/dep@v1.0.0: Get "https://proxy.golang.org/example.com/dep/@v/v1.0.0.mod": dial tcp: connection refused' >&2\nexit 1\n`,
    { mode: 0o755 },
  );
  return dir;
}

async function health(server: TestServer): Promise<any> {
  const res = await server.get('/health');
  assert.equal(res.status, 200, res.text);
  return res.body;
}

describe('Go hook builds and their states', () => {
  it('while a build runs: 503 with Retry-After past the wait, /health says building, the log shows progress; then ready', { timeout: BUILD_MS }, async () => {
    useGo();
    const slow = slowGo(8000);
    const app = makeApp({ todos: TODOS }, { 'resources/todos/post.go': goRun(`	ctx.Data["built"] = true`) });
    let server: TestServer | undefined;
    try {
      server = await startServer(app, { env: { PATH: `${slow}${path.delimiter}${process.env.PATH}`, DEPLOYD_GO_BUILD_WAIT_MS: '500', DEPLOYD_GO_BUILD_PROGRESS_MS: '1000', LOG_LEVEL: 'info' } });
      const early = await server.post('/todos', { title: 'too soon' });
      assert.equal(early.status, 503, early.text);
      assert.equal(early.body.code, 'DPD_ERR_HOOK_BUILDING');
      assert.equal(early.headers.get('retry-after'), '5');
      const building = await health(server);
      assert.equal(building.goHooks.length, 1);
      assert.equal(building.goHooks[0].collection, 'todos');
      assert.equal(building.goHooks[0].state, 'building');
      assert.deepEqual(building.goHooks[0].events, ['post']);
      assert.equal(typeof building.goHooks[0].seconds, 'number');
      const posted = await goBuilt(() => server!.post('/todos', { title: 'built' }));
      assert.equal(posted.status, 200, posted.text);
      assert.equal(posted.body.built, true);
      assert.deepEqual((await health(server)).goHooks, [{ collection: 'todos', state: 'ready', events: ['post'] }]);
      assert.match(server.output, /building the Go hooks of todos/);
      assert.match(server.output, /"seconds":\d+,"packagesCompiled":\d+.*"msg":"still building the Go hooks of todos"/); // progress while it ran
      assert.match(server.output, /built the Go hooks of todos/);
    } finally {
      await server?.stop();
      fs.rmSync(app, { recursive: true, force: true });
      fs.rmSync(slow, { recursive: true, force: true });
    }
  });

  it('a build that fails for a reason other than the code is retried on the next request, without a restart', { timeout: BUILD_MS }, async () => {
    useGo();
    const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-marker-')), 'network-is-back');
    const failing = failingGo(marker);
    const app = makeApp({ todos: TODOS }, { 'resources/todos/post.go': goRun(`	ctx.Data["built"] = "after the retry"`) });
    let server: TestServer | undefined;
    try {
      server = await startServer(app, { env: { PATH: `${failing}${path.delimiter}${process.env.PATH}` } });
      const failed = await goBuilt(() => server!.post('/todos', { title: 'no network' }));
      assert.equal(failed.status, 500, failed.text);
      assert.match(failed.body.message, /todos\/post\.go: [\s\S]*connection refused/);
      const [state] = (await health(server)).goHooks;
      assert.equal(state.state, 'failed');
      assert.equal(state.retry, 'next request');
      assert.match(state.errors.post, /connection refused/);
      assert.deepEqual((await server.get('/todos')).body, []); // fail closed

      fs.writeFileSync(marker, '');
      const retried = await goBuilt(() => server!.post('/todos', { title: 'network is back' }));
      assert.equal(retried.status, 200, retried.text);
      assert.equal(retried.body.built, 'after the retry');
      assert.equal((await health(server)).goHooks[0].state, 'ready');
    } finally {
      await server?.stop();
      fs.rmSync(app, { recursive: true, force: true });
      fs.rmSync(failing, { recursive: true, force: true });
      fs.rmSync(path.dirname(marker), { recursive: true, force: true });
    }
  });

  it('a compile error is failed until the file changes: /health names file:line, a request does not rebuild', { timeout: BUILD_MS }, async () => {
    useGo();
    const app = makeApp({ todos: TODOS }, { 'resources/todos/post.go': goRun(`	ctx.Data["n"] = undefinedName`) });
    let server: TestServer | undefined;
    try {
      server = await startServer(app);
      const res = await goBuilt(() => server!.post('/todos', { title: 'x' }));
      assert.equal(res.status, 500, res.text);
      const [state] = (await health(server)).goHooks;
      assert.equal(state.state, 'failed');
      assert.equal(state.retry, 'next change');
      assert.match(state.errors.post, /todos\/post\.go:2:\d+: undefined: undefinedName/);
      const again = await server.post('/todos', { title: 'x' });
      assert.equal(again.status, 500);
      assert.doesNotMatch(server.output, /building the Go hooks again/);
    } finally {
      await server?.stop();
      fs.rmSync(app, { recursive: true, force: true });
    }
  });
});
