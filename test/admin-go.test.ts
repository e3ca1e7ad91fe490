/**
 * Go hook files through the admin API: a save builds the file, answers once it is loaded, and a
 * file that does not compile is refused with the compiler's file:line while the previous version
 * keeps serving. (A cold Go build cache can make the first build take minutes: the save waits for
 * it, DEPLOYD_GO_SAVE_WAIT_MS, and this test's client waits as long.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, it } from 'node:test';
import { useGo } from './helpers/go.js';
import { makeApp, startServer, TODOS, type ApiResponse, type TestServer } from './helpers/server.js';
import { assertError, bearer } from './helpers/users.js';

const VALIDATE_GO = `func Run(ctx *EventContext) error {
	if ctx.Data["title"] == "go-no" {
		ctx.Error("title", "rejected by validate.go")
	}
	return nil
}
`;

const BROKEN_GO = `func Run(ctx *EventContext) error {
	ctx.Data["title"] = undefinedThing
	return nil
}
`;

const SAVE_WAIT_MS = 600_000;

/** PUT with no client deadline shorter than the server's build wait (fetch gives up after 300 s). */
function putHook(server: TestServer, file: string, source: string, headers: Record<string, string>): Promise<ApiResponse> {
  const body = JSON.stringify({ source });
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}/_admin/collections/todos/hooks/${file}`, {
      method: 'PUT', headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: SAVE_WAIT_MS + 30_000,
    }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: new Headers(), body: text ? JSON.parse(text) : undefined, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer to the hook save')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('admin API: Go hooks', () => {
  it('saves a Go hook that builds, and refuses one that does not compile with file:line, keeping the old one', { timeout: SAVE_WAIT_MS * 2 + 60_000 }, async (t) => {
    useGo();
    const server = await startServer(makeApp({ todos: TODOS }), { env: { DEPLOYD_GO_SAVE_WAIT_MS: String(SAVE_WAIT_MS) } });
    t.after(() => server.stop(), { timeout: 30_000 });
    const admin = bearer((await server.post('/_admin/login', { masterKey: server.masterKey })).body.token);

    const saved = await putHook(server, 'validate.go', VALIDATE_GO, admin);
    assert.equal(saved.status, 200, saved.text);
    assert.deepEqual(saved.body, { file: 'todos/validate.go', event: 'validate', loaded: true, state: 'ready' });
    assertError(await server.post('/todos', { title: 'go-no' }), 400, 'DPD_ERR_VALIDATION');
    const sidecars = (await server.get('/_admin/status', admin)).body.hooks.sidecars;
    assert.equal(sidecars.length, 1);
    assert.equal(sidecars[0].collection, 'todos');
    assert.equal(sidecars[0].state, 'ready');
    assert.equal(typeof sidecars[0].pid, 'number');

    const refused = await putHook(server, 'validate.go', BROKEN_GO, admin);
    assertError(refused, 400, 'DPD_ERR_CHANGE_REFUSED', /todos\/validate\.go:2:\d+: undefined: undefinedThing/);
    assert.equal(fs.readFileSync(path.join(server.appDir, 'resources', 'todos', 'validate.go'), 'utf8'), VALIDATE_GO);
    assertError(await server.post('/todos', { title: 'go-no' }), 400, 'DPD_ERR_VALIDATION');
    assert.equal((await server.post('/todos', { title: 'go-yes' })).status, 200);
  });
});
