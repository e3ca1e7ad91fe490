/**
 * Editor support for Go hooks (`deployd go-env`) and the example app examples/go-hooks: go-env
 * writes go.mod/go.sum and resources/<c>/deployd_env.go so that `go vet ./resources/...` (what
 * gopls sees) passes and the hooks' own `_test.go` files run with `go test`; the server still
 * builds only `<event>.go` and serves the hooks, dpd included. A hook file without a package
 * clause is reported, and a go.mod the user wrote is left alone.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { goBuilt, goRun, GO, useGo } from './helpers/go.js';
import { ROOT, startServer, type TestServer } from './helpers/server.js';

const EXAMPLE = path.join(ROOT, 'examples', 'go-hooks');
const TIMEOUT_MS = 600_000;

function run(cmd: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: TIMEOUT_MS - 10_000, env: { ...process.env, GOFLAGS: '' } }, (error, stdout, stderr) => {
      const output = `$ ${cmd} ${args.join(' ')}\n${stdout}${stderr}`;
      if (error) reject(new assert.AssertionError({ message: `${output}\n${error.message}` }));
      else resolve(output);
    });
  });
}

describe('deployd go-env and examples/go-hooks', () => {
  let app: string;
  let server: TestServer | undefined;

  before(() => {
    useGo();
    app = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-goenv-'));
    fs.cpSync(path.join(EXAMPLE, 'resources'), path.join(app, 'resources'), { recursive: true });
    for (const f of fs.readdirSync(path.join(app, 'resources'), { recursive: true }) as string[]) {
      if (f.endsWith('deployd_env.go')) fs.rmSync(path.join(app, 'resources', f));
    }
  }, { timeout: 600_000 });

  after(async () => {
    await server?.stop();
    if (app) fs.rmSync(app, { recursive: true, force: true });
  }, { timeout: 60_000 });

  it('go-env writes what go vet needs; the hooks vet clean and their unit tests pass; the committed example is what it writes', { timeout: TIMEOUT_MS }, async () => {
    const out = await run(path.join(ROOT, 'bin', 'deployd'), ['go-env', '--app', app], ROOT);
    assert.match(out, /wrote go\.mod/);
    assert.match(out, /wrote resources\/todos\/deployd_env\.go/);
    await run(GO, ['vet', './resources/...'], app);
    const tested = await run(GO, ['test', './resources/...'], app);
    assert.match(tested, /^ok\s+deployd-app\/resources\/todos/m);
    assert.match(tested, /^ok\s+deployd-app\/resources\/comments/m);
    for (const c of ['todos', 'comments']) {
      const file = path.join('resources', c, 'deployd_env.go');
      assert.equal(fs.readFileSync(path.join(app, file), 'utf8'), fs.readFileSync(path.join(EXAMPLE, file), 'utf8'), file);
    }
    const withoutReplace = (text: string) => text.replace(/^replace .*$/m, '');
    assert.equal(withoutReplace(fs.readFileSync(path.join(app, 'go.mod'), 'utf8')), withoutReplace(fs.readFileSync(path.join(EXAMPLE, 'go.mod'), 'utf8')));
  });

  it('the server builds only the hook files and serves them: validate.go, and post.go calling ctx.Dpd("todos")', { timeout: TIMEOUT_MS }, async () => {
    server = await startServer(app);
    const bad = await goBuilt(() => server!.post('/todos', { title: ' ', priority: 11 }));
    assert.equal(bad.status, 400, bad.text);
    assert.deepEqual(bad.body.errors, { title: 'is required', priority: 'must be from 1 to 10' });
    const todo = await server.post('/todos', { title: 'buy milk' });
    assert.equal(todo.status, 200, todo.text);
    const missing = await goBuilt(() => server!.post('/comments', { todoId: 'nope', text: 'hm' }));
    assert.equal(missing.status, 400, missing.text);
    assert.deepEqual(missing.body.errors, { todoId: 'no such todo' });
    const comment = await server.post('/comments', { todoId: todo.body.id, text: 'soon' });
    assert.equal(comment.status, 200, comment.text);
    assert.equal((await server.get(`/todos/${todo.body.id}`)).body.comments, 1);
  });

  it("reports a hook file without a package clause, and leaves a go.mod it did not write alone", async () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-goenv-'));
    try {
      fs.mkdirSync(path.join(other, 'resources', 'notes'), { recursive: true });
      fs.writeFileSync(path.join(other, 'resources', 'notes', 'post.go'), goRun('\tctx.Data["x"] = 1'));
      fs.writeFileSync(path.join(other, 'go.mod'), 'module mine\n');
      const out = await run(path.join(ROOT, 'bin', 'deployd'), ['go-env', '--app', other], ROOT);
      assert.match(out, /note: go\.mod exists and was not written by deployd go-env: left alone/);
      assert.match(out, /note: resources\/notes\/post\.go: no package clause.*add "package notes"/);
      assert.equal(fs.readFileSync(path.join(other, 'go.mod'), 'utf8'), 'module mine\n');
      assert.match(fs.readFileSync(path.join(other, 'resources', 'notes', 'deployd_env.go'), 'utf8'), /^package notes$/m);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
