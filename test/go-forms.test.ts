/**
 * Both Go hook source forms on every event type: go-deployd's (no package clause, `func Run(ctx
 * *EventContext) error` plus a helper) and the seed's (`package main`, a value EventHandler whose
 * `Run(ctx interface{}) error` asserts `ctx.(*EventContext)`). One collection per form has a file
 * for each of the seven events a collection serves over HTTP, each leaving a trace the client can
 * see; Login runs through POST /<users>/login, and is also called on the built program directly.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildGoHooks } from '../src/hooks/go/build.js';
import { GoPluginProcess } from '../src/hooks/go/plugin-host.js';
import type { HookEvent } from '../src/hooks/protocol.js';
import { goBuilt, SDK, useGo } from './helpers/go.js';
import { makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';

type Form = 'run' | 'seed';

/** What each event does, with `c` the *EventContext and `form` the form's name. */
const BODIES: Record<HookEvent, string> = {
  beforerequest: `if c.Query["block"] != nil {
		c.Cancel(label(form, "beforerequest "+c.Event), 403)
	}`,
  validate: `if c.Data["title"] == "invalid" {
		c.Error("title", label(form, "validate"))
	}`,
  post: `c.Data["post"] = label(form, "post")`,
  put: `c.Data["put"] = label(form, "put")
	c.Data["previousTitle"] = c.Previous["title"]`,
  get: `c.Data["get"] = label(form, "get")`,
  delete: `if c.Data["title"] == "keep" {
		c.Cancel(label(form, "delete"), 409)
	}`,
  aftercommit: `c.AddResponseField("after", label(form, "aftercommit "+c.Method))`,
  login: `c.Data["login"] = label(form, "login")
	if !c.Success {
		c.Cancel(label(form, "login failed"), 401)
	}`,
};

function source(form: Form, event: HookEvent): string {
  const helper = `func label(form, what string) string { return form + ": " + what }`;
  if (form === 'run') {
    return `import "strings"

${helper}

func Run(ctx *EventContext) error {
	c := ctx
	form := strings.ToLower("RUN")
	${BODIES[event]}
	return nil
}
`;
  }
  return `// ${event}.go
package main

type eventHandler struct{}

${helper}

func (h *eventHandler) Run(ctx interface{}) error {
	c := ctx.(*EventContext)
	form := "seed"
	${BODIES[event]}
	return nil
}

var EventHandler = &eventHandler{}
`;
}

const HTTP_EVENTS: HookEvent[] = ['beforerequest', 'validate', 'post', 'put', 'get', 'delete', 'aftercommit'];

describe('Go hook source forms on every event', () => {
  let app: string;
  let server: TestServer;

  before(async () => {
    useGo();
    const files: Record<string, string> = {};
    for (const form of ['run', 'seed'] as const) {
      for (const event of HTTP_EVENTS) files[`resources/${form}/${event}.go`] = source(form, event);
      files[`resources/${form}users/login.go`] = source(form, 'login');
    }
    const users = { type: 'UserCollection', properties: { login: { type: 'string' } } };
    app = makeApp({ run: TODOS, seed: TODOS, runusers: users, seedusers: users }, files);
    server = await startServer(app);
    await Promise.all([goBuilt(() => server.get('/run')), goBuilt(() => server.get('/seed'))]);
  }, { timeout: 600_000 });

  after(async () => {
    await server?.stop();
    if (app) fs.rmSync(app, { recursive: true, force: true });
  }, { timeout: 60_000 });

  for (const form of ['run', 'seed'] as const) {
    it(`${form === 'run' ? "go-deployd's form" : "the seed's form"}: beforerequest, validate, post, put, get, delete, aftercommit`, async () => {
      const blocked = await server.get(`/${form}?block=1`);
      assert.equal(blocked.status, 403, blocked.text);
      assert.equal(blocked.body.message, `${form}: beforerequest GET`);

      const invalid = await server.post(`/${form}`, { title: 'invalid' });
      assert.equal(invalid.status, 400, invalid.text);
      assert.deepEqual(invalid.body.errors, { title: `${form}: validate` });

      const posted = await server.post(`/${form}`, { title: 'keep' });
      assert.equal(posted.status, 200, posted.text);
      assert.equal(posted.body.post, `${form}: post`);
      assert.equal(posted.body.after, `${form}: aftercommit POST`);
      const id = posted.body.id;

      const put = await server.put(`/${form}/${id}`, { title: 'kept' });
      assert.equal(put.status, 200, put.text);
      assert.equal(put.body.put, `${form}: put`);
      assert.equal(put.body.previousTitle, 'keep');
      assert.equal(put.body.after, `${form}: aftercommit PUT`);

      const got = await server.get(`/${form}/${id}`);
      assert.equal(got.body.get, `${form}: get`);
      assert.equal(got.body.post, `${form}: post`);
      const listed = await server.get(`/${form}`);
      assert.deepEqual(listed.body.map((d: { get: string }) => d.get), [`${form}: get`]);

      await server.put(`/${form}/${id}`, { title: 'keep' });
      const refused = await server.del(`/${form}/${id}`);
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.message, `${form}: delete`);
      await server.put(`/${form}/${id}`, { title: 'gone' });
      const deleted = await server.del(`/${form}/${id}`);
      assert.equal(deleted.status, 200, deleted.text);
      assert.equal(deleted.body.after, `${form}: aftercommit DELETE`);
      assert.equal((await server.get(`/${form}/${id}`)).status, 404);
    });
  }

  for (const form of ['run', 'seed'] as const) {
    it(`${form === 'run' ? "go-deployd's form" : "the seed's form"}: login over HTTP (POST /<users>/login)`, async () => {
      const coll = `${form}users`;
      const signup = await server.post(`/${coll}`, { username: 'ann', password: 'ann-password-1' });
      assert.equal(signup.status, 200, signup.text);
      const wrong = await goBuilt(() => server.post(`/${coll}/login`, { username: 'ann', password: 'not-it' }));
      assert.equal(wrong.status, 401, wrong.text);
      assert.equal(wrong.body.message, `${form}: login failed`);
      const right = await server.post(`/${coll}/login`, { username: 'ann', password: 'ann-password-1' });
      assert.equal(right.status, 200, right.text);
      // What Login changed on the user is saved (Deployd).
      const user = await server.get(`/${coll}/${signup.body.id}`, server.root);
      assert.equal(user.body.login, `${form}: login`);
    });
  }

  it('both forms: login (called on the built program, as the server calls it)', { timeout: 600_000 }, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-forms-'));
    try {
      for (const form of ['run', 'seed'] as const) {
        const res = await buildGoHooks({ collection: 'users', files: [{ event: 'login', file: 'users/login.go', source: source(form, 'login') }], buildDir: tmp, sdkDir: SDK });
        assert.ok('binary' in res, JSON.stringify(res));
        const p = await GoPluginProcess.start({ binary: res.binary, socketDir: tmp, log: () => {}, autoMTLS: true });
        try {
          const call = (success: boolean) =>
            p.run({ collection: 'users', event: 'EVENT_LOGIN', method: 'POST', request_event: 'LOGIN', data_json: Buffer.from('{"username":"ann"}'), success }, 2000);
          const ok = await call(true);
          assert.equal(ok.cancel, null);
          assert.deepEqual(JSON.parse(ok.data_json.toString()), { username: 'ann', login: `${form}: login` });
          const failed = await call(false);
          assert.deepEqual(failed.cancel, { message: `${form}: login failed`, status: 401, is_error: false });
        } finally {
          await p.stop();
        }
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
