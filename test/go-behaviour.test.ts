/**
 * The hook behaviour table, run against JavaScript and Go hooks alike: every case below is one
 * behaviour (cancel, error, hide, protect, emit queuing until the commit, response mutations, …)
 * written once per language, and the same requests and the same assertions run against a
 * collection with the JavaScript version and one with the Go version. A difference between the
 * two runtimes fails the case for one of them.
 *
 * Each case's hook code runs only for its own documents (`title` equal to the case's key, or
 * `?case=<key>` in BeforeRequest), so one collection per language holds the whole table and Go
 * builds one program for it. One in-process server, so the event bus can be observed; a WebSocket
 * subscriber checks that the AfterCommit failure rows still publish their change.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { HookEvent } from '../src/hooks/protocol.js';
import { goBuilt, goRun, useGo } from './helpers/go.js';
import { eventually, makeApp, startInProcess, type ApiResponse, type TestServer } from './helpers/server.js';
import { Peer } from './helpers/ws-peer.js';

type Snippet = { js: string; go: string };

interface Lang {
  name: 'js' | 'go';
  api: TestServer;
  /** The collection holding this language's hooks. */
  coll: string;
  /** Bus messages published since the call, as `event:<name>` / `<action>:<collection>` with data. */
  watch(): () => { kind: string; data?: unknown; room?: string }[];
  /** A WebSocket subscriber connected to /ws for the whole table. */
  peer: Peer;
}

interface Case {
  key: string;
  what: string;
  hooks: Partial<Record<HookEvent, Snippet>>;
  act(l: Lang): Promise<void>;
}

/** The target of the dpd cases: its post.js stamps who made the document and how. */
const DPDT = {
  type: 'Collection',
  properties: { name: { type: 'string' }, tag: { type: 'string' }, n: { type: 'number' }, by: { type: 'string' }, internal: { type: 'boolean' } },
};
const DPDT_POST = `this.by = isRoot ? 'root' : (me ? me.username : 'nobody'); this.internal = !!internal;`;
const VAULT = { type: 'Collection', properties: { tag: { type: 'string' } }, rules: { create: 'root' } };

const SCHEMA = {
  type: 'Collection',
  properties: { title: { type: 'string', required: true, unique: true }, secret: { type: 'string' }, owner: { type: 'string' }, n: { type: 'number' }, was: { type: 'string' } },
};

function body(res: ApiResponse, status = 200): any {
  assert.equal(res.status, status, `${res.status} ${res.text}`);
  return res.body;
}

const CASES: Case[] = [
  {
    key: 'cancel',
    what: 'cancel(msg, status) stops the request with that status; nothing is stored or published',
    hooks: { post: { js: `cancel('not allowed', 409);`, go: `ctx.Cancel("not allowed", 409)` } },
    async act({ api, coll, watch }) {
      const seen = watch();
      const res = await api.post(`/${coll}`, { title: 'cancel' });
      assert.equal(res.status, 409);
      assert.equal(res.body.message, 'not allowed');
      assert.deepEqual(body(await api.get(`/${coll}?title=cancel`)), []);
      assert.deepEqual(seen(), []);
    },
  },
  {
    key: 'cancel-default',
    what: 'cancel without a status is a 400',
    hooks: { post: { js: `cancel('no status');`, go: `ctx.Cancel("no status", 0)` } },
    async act({ api, coll }) {
      const res = await api.post(`/${coll}`, { title: 'cancel-default' });
      assert.equal(res.status, 400);
      assert.equal(res.body.message, 'no status');
    },
  },
  {
    key: 'error',
    what: 'error(field, msg) collects validation errors; hasErrors() sees them; 400 {errors}',
    hooks: {
      validate: {
        js: `var before = hasErrors(); error('n', 'must be positive'); error('summary', 'hasErrors was ' + before + ', now ' + hasErrors());`,
        go: `before := ctx.HasErrors()
	ctx.Error("n", "must be positive")
	ctx.Error("summary", fmt.Sprint("hasErrors was ", before, ", now ", ctx.HasErrors()))`,
      },
    },
    async act({ api, coll, watch }) {
      const seen = watch();
      const res = await api.post(`/${coll}`, { title: 'error' });
      assert.equal(res.status, 400);
      assert.deepEqual(res.body.errors, { n: 'must be positive', summary: 'hasErrors was false, now true' });
      assert.deepEqual(seen(), []);
    },
  },
  {
    key: 'failure',
    what: 'a failing hook (thrown Error / returned error) is a 500 DPD_ERR_HOOK_FAILED naming its file; nothing is stored',
    hooks: { post: { js: `throw new Error('broken');`, go: `return errors.New("broken")` } },
    async act({ name, api, coll }) {
      const res = await api.post(`/${coll}`, { title: 'failure' });
      assert.equal(res.status, 500);
      assert.equal(res.body.code, 'DPD_ERR_HOOK_FAILED');
      // JavaScript knows the line and column of the throw; a returned Go error only its file.
      assert.match(res.body.message, name === 'js' ? new RegExp(`^${coll}/post\\.js:\\d+:\\d+: broken$`) : new RegExp(`^${coll}/post\\.go: broken$`));
      assert.deepEqual(body(await api.get(`/${coll}?title=failure`)), []);
    },
  },
  {
    key: 'typo',
    what: 'a runtime error (TypeError / nil map panic) is a 500 naming file:line, not a 400',
    hooks: {
      validate: {
        js: `var missing;\nmissing.field = 1;`,
        go: `var m map[string]int\n\tm["x"] = 1`,
      },
    },
    async act({ name, api, coll, watch }) {
      const seen = watch();
      const res = await api.post(`/${coll}`, { title: 'typo' });
      assert.equal(res.status, 500, res.text);
      assert.equal(res.body.code, 'DPD_ERR_HOOK_FAILED');
      assert.match(res.body.message, new RegExp(`^${coll}/validate\\.${name}:\\d+(:\\d+)?: `));
      assert.match(res.body.message, name === 'js' ? /TypeError/ : /panic: assignment to entry in nil map/);
      assert.deepEqual(body(await api.get(`/${coll}?title=typo`)), []);
      assert.deepEqual(seen(), []);
    },
  },
  {
    key: 'hide',
    what: 'hide(field) removes it from responses (POST and GET, one and many); the document keeps it',
    hooks: {
      post: { js: `hide('secret');`, go: `ctx.Hide("secret")` },
      get: { js: `hide('secret');`, go: `ctx.Hide("secret")` },
    },
    async act({ api, coll }) {
      const posted = body(await api.post(`/${coll}`, { title: 'hide', secret: 's' }));
      assert.equal('secret' in posted, false);
      assert.equal('secret' in body(await api.get(`/${coll}/${posted.id}`)), false);
      const [listed] = body(await api.get(`/${coll}?title=hide`));
      assert.equal(listed.id, posted.id);
      assert.equal('secret' in listed, false);
      const [stored] = body(await api.get(`/${coll}?title=hide&$skipEvents=true`, api.root));
      assert.equal(stored.secret, 's');
    },
  },
  {
    key: 'protect',
    what: 'protect(field) keeps the stored value on PUT, drops the field on POST; assigning it afterwards fails the request',
    hooks: {
      post: { js: `protect('owner');`, go: `ctx.Protect("owner")` },
      put: {
        js: `protect('owner'); if (this.n === 13) this.owner = 'set-after-protect';`,
        go: `ctx.Protect("owner")\n\tif ctx.Data["n"] == 13.0 {\n\t\tctx.Data["owner"] = "set-after-protect"\n\t}`,
      },
    },
    async act({ api, coll }) {
      const posted = body(await api.post(`/${coll}`, { title: 'protect', owner: 'mallory' }));
      assert.equal('owner' in posted, false);
      const id = posted.id;
      body(await api.put(`/${coll}/${id}?$skipEvents=true`, { owner: 'alice' }, api.root));
      const put = body(await api.put(`/${coll}/${id}`, { owner: 'mallory', n: 2 }));
      assert.equal(put.owner, 'alice');
      assert.equal(put.n, 2);
      const written = await api.put(`/${coll}/${id}`, { n: 13 });
      assert.equal(written.status, 400);
      assert.match(written.body.message, /Cannot modify protected property 'owner'/);
      assert.deepEqual(body(await api.get(`/${coll}/${id}`)), { id, title: 'protect', owner: 'alice', n: 2 });
    },
  },
  {
    key: 'previous',
    what: 'previous is the stored document on PUT; changes to the data are stored',
    hooks: {
      put: {
        js: `this.was = previous.n + ' by ' + (me ? me.username : 'nobody') + (isRoot ? ' (root)' : '');`,
        go: `who := "nobody"
	if ctx.Me != nil {
		who = fmt.Sprint(ctx.Me["username"])
	}
	root := ""
	if ctx.IsRoot {
		root = " (root)"
	}
	ctx.Data["was"] = fmt.Sprint(ctx.Previous["n"], " by ", who, root)`,
      },
    },
    async act({ api, coll }) {
      const { id } = body(await api.post(`/${coll}`, { title: 'previous', n: 1 }));
      assert.equal(body(await api.put(`/${coll}/${id}`, { n: 2 }, api.root)).was, '1 by root (root)');
      assert.equal(body(await api.put(`/${coll}/${id}`, { n: 3 })).was, '2 by nobody');
      assert.equal(body(await api.get(`/${coll}/${id}`)).was, '2 by nobody');
    },
  },
  {
    key: 'emit',
    what: 'emit waits for the commit: published after the write, in order, rooms kept',
    hooks: {
      post: {
        js: `emit('hello', { title: this.title }); emit('room-a', 'roomy', { n: 1 });`,
        go: `ctx.Emit("hello", map[string]interface{}{"title": ctx.Data["title"]})
	ctx.Emit("roomy", map[string]interface{}{"n": 1}, "room-a")`,
      },
    },
    async act({ api, coll, watch }) {
      const seen = watch();
      const { id } = body(await api.post(`/${coll}`, { title: 'emit' }));
      const list = seen();
      assert.deepEqual(list.map((m) => m.kind), ['event:hello', 'event:roomy', `created:${coll}`]);
      assert.deepEqual(list[0]!.data, { title: 'emit' });
      assert.deepEqual(list[1]!.data, { n: 1 });
      assert.equal(list[1]!.room, 'room-a');
      assert.equal(typeof id, 'string');
    },
  },
  {
    key: 'emit-dup',
    what: 'emit waits for the commit: a write that fails after the hook emitted publishes nothing',
    hooks: { post: { js: `emit('dup-emitted', {});`, go: `ctx.Emit("dup-emitted", map[string]interface{}{})` } },
    async act({ api, coll, watch }) {
      body(await api.post(`/${coll}`, { title: 'emit-dup' }));
      const seen = watch();
      const res = await api.post(`/${coll}`, { title: 'emit-dup' }); // unique title: the insert fails
      assert.equal(res.status, 409, res.text);
      assert.deepEqual(seen(), []);
    },
  },
  {
    key: 'emit-cancel',
    what: 'a cancelled event publishes none of its emits',
    hooks: {
      post: {
        js: `emit('before-cancel', {}); cancel('cancelled after emit', 403);`,
        go: `ctx.Emit("before-cancel", map[string]interface{}{})\n\tctx.Cancel("cancelled after emit", 403)`,
      },
    },
    async act({ api, coll, watch }) {
      const seen = watch();
      const res = await api.post(`/${coll}`, { title: 'emit-cancel' });
      assert.equal(res.status, 403);
      assert.deepEqual(seen(), []);
    },
  },
  {
    key: 'shape',
    what: 'AfterCommit response mutations: setResponseData, addResponseField, addResponseMessage, setResponseStatus; its emits follow the change',
    hooks: {
      aftercommit: {
        js: `setResponseData({ replaced: true, id: this.id }); addResponseField('extra', { a: [1, 2] }); addResponseMessage('m1'); addResponseMessage('m2'); setResponseStatus(201); emit('after', { id: this.id });`,
        go: `ctx.SetResponseData(map[string]interface{}{"replaced": true, "id": ctx.Data["id"]})
	ctx.AddResponseField("extra", map[string]interface{}{"a": []int{1, 2}})
	ctx.AddResponseMessage("m1")
	ctx.AddResponseMessage("m2")
	ctx.SetResponseStatus(201)
	ctx.Emit("after", map[string]interface{}{"id": ctx.Data["id"]})`,
      },
    },
    async act({ api, coll, watch }) {
      const seen = watch();
      const res = body(await api.post(`/${coll}`, { title: 'shape' }), 201);
      assert.deepEqual(res, { replaced: true, id: res.id, extra: { a: [1, 2] }, messages: ['m1', 'm2'] });
      const list = seen();
      assert.deepEqual(list.map((m) => m.kind), [`created:${coll}`, 'event:after']);
      assert.deepEqual(list[1]!.data, { id: res.id });
      assert.deepEqual(body(await api.get(`/${coll}/${res.id}`)), { id: res.id, title: 'shape' });
    },
  },
  {
    key: 'block',
    what: 'BeforeRequest can cancel a request before anything is read',
    hooks: { beforerequest: { js: `cancel('blocked', 403);`, go: `ctx.Cancel("blocked", 403)` } },
    async act({ api, coll }) {
      const res = await api.get(`/${coll}?case=block`);
      assert.equal(res.status, 403);
      assert.equal(res.body.message, 'blocked');
    },
  },
  {
    key: 'rewrite',
    what: 'BeforeRequest can rewrite the query',
    hooks: {
      beforerequest: {
        js: `delete query.case; query.title = 'hide';`,
        go: `delete(ctx.Query, "case")\n\tctx.Query["title"] = "hide"`,
      },
    },
    async act({ api, coll }) {
      const list = body(await api.get(`/${coll}?case=rewrite`));
      assert.deepEqual(list.map((d: { title: string }) => d.title), ['hide']);
    },
  },
  {
    key: 'keep',
    what: 'a delete hook with an error keeps the document',
    hooks: { delete: { js: `error('title', 'cannot be deleted');`, go: `ctx.Error("title", "cannot be deleted")` } },
    async act({ api, coll }) {
      const { id } = body(await api.post(`/${coll}`, { title: 'keep' }));
      const res = await api.del(`/${coll}/${id}`);
      assert.equal(res.status, 400);
      assert.deepEqual(res.body.errors, { title: 'cannot be deleted' });
      assert.equal(body(await api.get(`/${coll}/${id}`)).title, 'keep');
    },
  },
  {
    key: 'drop',
    what: 'a deliberate cancel in a GET list drops that item',
    hooks: { get: { js: `cancel('not for you');`, go: `ctx.Cancel("not for you", 0)` } },
    async act({ api, coll }) {
      const { id } = body(await api.post(`/${coll}`, { title: 'drop' }));
      assert.deepEqual(body(await api.get(`/${coll}?title=drop`)), []);
      assert.equal((await api.get(`/${coll}/${id}`)).status, 400);
    },
  },
  // ---- dpd: the internal client, the same function behind both languages ----
  {
    key: 'dpd-crud',
    what: 'dpd: post, put, get one, get a list and delete another collection, as the caller, through its hooks; each change is published after its own commit, before the outer one',
    hooks: {
      post: {
        js: `var self = this, dpdt = dpd.dpdt, made;
	dpdt.post({ name: 'x', tag: self.owner }).then(function (d) { made = d; return dpdt.put(d.id, { n: 2 }); })
	  .then(function (put) { return dpdt.get(put.id); })
	  .then(function (one) { self.was = 'by=' + made.by + ' internal=' + made.internal + ' n=' + one.n; return dpdt.get({ tag: self.owner }); })
	  .then(function (list) { self.was += ' count=' + list.length; return dpdt.del(list[0].id); })
	  .then(function (res) { self.was += ' deleted=' + res.count; });`,
        go: `dpdt := ctx.Dpd("dpdt")
	made, err := dpdt.Post(map[string]interface{}{"name": "x", "tag": ctx.Data["owner"]})
	if err != nil {
		return err
	}
	put, err := dpdt.Put(made["id"].(string), map[string]interface{}{"n": 2})
	if err != nil {
		return err
	}
	one, err := dpdt.GetOne(put["id"].(string))
	if err != nil {
		return err
	}
	list, err := dpdt.Get(map[string]interface{}{"tag": ctx.Data["owner"]})
	if err != nil {
		return err
	}
	res, err := dpdt.Delete(list[0]["id"].(string))
	if err != nil {
		return err
	}
	ctx.Data["was"] = fmt.Sprint("by=", made["by"], " internal=", made["internal"], " n=", one["n"], " count=", len(list), " deleted=", res["count"])`,
      },
    },
    async act({ name, api, coll, watch }) {
      const seen = watch();
      const res = body(await api.post(`/${coll}`, { title: 'dpd-crud', owner: name }));
      assert.equal(res.was, 'by=nobody internal=true n=2 count=1 deleted=1');
      assert.deepEqual(seen().map((m) => m.kind), ['created:dpdt', 'updated:dpdt', 'deleted:dpdt', `created:${coll}`]);
      assert.deepEqual(body(await api.get(`/dpdt?tag=${name}`)), []);
    },
  },
  {
    key: 'dpd-rules',
    what: "dpd: the target's access rules apply to the hook's caller (anonymous refused, root allowed)",
    hooks: {
      post: {
        js: `var self = this;
	dpd.vault.post({ tag: self.owner }).then(function (d) { self.was = 'stored ' + d.tag; }, function (err) { error('vault', err.status + ' ' + err.message); });`,
        go: `d, err := ctx.Dpd("vault").Post(map[string]interface{}{"tag": ctx.Data["owner"]})
	if e, ok := err.(*DpdError); ok {
		ctx.Error("vault", fmt.Sprint(e.Status, " ", e.Message))
	} else if err != nil {
		return err
	} else {
		ctx.Data["was"] = fmt.Sprint("stored ", d["tag"])
	}`,
      },
    },
    async act({ name, api, coll }) {
      const refused = await api.post(`/${coll}`, { title: 'dpd-rules', owner: name });
      assert.equal(refused.status, 400, refused.text);
      assert.deepEqual(refused.body.errors, { vault: '401 log in to create here: only with the master key' });
      assert.deepEqual(body(await api.get(`/vault?tag=${name}`, api.root)), []);
      assert.equal(body(await api.post(`/${coll}`, { title: 'dpd-rules', owner: name }, api.root)).was, `stored ${name}`);
      assert.equal(body(await api.get(`/vault?tag=${name}`, api.root)).length, 1);
    },
  },
  {
    key: 'dpd-recursion',
    what: 'dpd: a hook calling its own collection stops at the recursion limit (as Deployd counts: the same GET twice on the stack of internal calls), with a 400 the hook sees',
    hooks: {
      get: {
        js: `var self = this;
	dpd.$COLL.get({ title: 'dpd-recursion' }).then(function (list) { self.was = 'inner:' + (list[0] ? list[0].was : 'none'); }, function (err) { self.was = 'error:' + err.status + ' ' + err.message; });`,
        go: `list, err := ctx.Dpd(ctx.Collection).Get(map[string]interface{}{"title": "dpd-recursion"})
	if e, ok := err.(*DpdError); ok {
		ctx.Data["was"] = fmt.Sprint("error:", e.Status, " ", e.Message)
	} else if err != nil {
		return err
	} else if len(list) > 0 {
		ctx.Data["was"] = fmt.Sprint("inner:", list[0]["was"])
	} else {
		ctx.Data["was"] = "inner:none"
	}`,
      },
    },
    async act({ api, coll }) {
      const { id } = body(await api.post(`/${coll}`, { title: 'dpd-recursion' }));
      assert.equal(body(await api.get(`/${coll}/${id}`)).was, `inner:inner:error:400 Recursive call to GET /${coll} detected`);
    },
  },
  {
    key: 'dpd-events',
    what: 'dpd: callable from every event of a request (BeforeRequest, Validate, Post, Get, Put, Delete, AfterCommit; Login below)',
    hooks: Object.fromEntries(
      (['beforerequest', 'validate', 'post', 'get', 'put', 'delete', 'aftercommit'] as const).map((event) => [event, {
        js: `dpd.dpdt.post({ tag: '$LANG-events', name: '${event}' });`,
        go: `if _, err := ctx.Dpd("dpdt").Post(map[string]interface{}{"tag": "$LANG-events", "name": "${event}"}); err != nil {
		return err
	}`,
      }]),
    ),
    async act({ name, api, coll }) {
      const q = '?case=dpd-events';
      const { id } = body(await api.post(`/${coll}${q}`, { title: 'dpd-events' }));
      body(await api.get(`/${coll}/${id}${q}`));
      body(await api.put(`/${coll}/${id}${q}`, { n: 1 }));
      body(await api.del(`/${coll}/${id}${q}`));
      // A Get hook also runs when a change is delivered to the WebSocket subscriber (its read check),
      // after the answer: that dpd.post may land a moment after the DELETE's answer.
      const expected = 18;
      let names: string[] = [];
      await eventually(async () => {
        names = body(await api.get(`/dpdt?tag=${name}-events`)).map((d: { name: string }) => d.name).sort();
        return names.length >= expected;
      }, 10_000, `${expected} dpd posts from ${name} hooks`);
      assert.deepEqual(names, [
        'aftercommit', 'aftercommit', 'aftercommit', 'beforerequest', 'beforerequest', 'beforerequest', 'beforerequest',
        // Get runs for the GET, on the document a POST and a PUT answer with, and — these requests
        // carry a query — to judge the PUT's and the DELETE's query on what the caller may see.
        'delete', 'get', 'get', 'get', 'get', 'get', 'get', 'post', 'put', 'validate', 'validate',
      ]);
    },
  },
  {
    key: 'ac-throw',
    what: 'AfterCommit throws/panics: 2xx with the stored document, its emits and response changes dropped, the change still published',
    hooks: {
      aftercommit: {
        js: `emit('ac-lost', {}); addResponseField('lost', true); throw new Error('after boom');`,
        go: `ctx.Emit("ac-lost", map[string]interface{}{})\n\tctx.AddResponseField("lost", true)\n\tpanic("after boom")`,
      },
    },
    async act({ api, coll, watch, peer }) {
      const seen = watch();
      const res = body(await api.post(`/${coll}`, { title: 'ac-throw' }));
      assert.deepEqual(res, { id: res.id, title: 'ac-throw' });
      await peer.take((f) => f.type === 'collection_change' && f.action === 'created' && f.document?.id === res.id, 'the subscriber\'s created event');
      assert.deepEqual(seen().map((m) => m.kind), [`created:${coll}`]);
      assert.equal(body(await api.get(`/${coll}/${res.id}`)).title, 'ac-throw');
      const put = body(await api.put(`/${coll}/${res.id}`, { n: 5 }));
      assert.equal(put.n, 5);
      assert.equal(body(await api.del(`/${coll}/${res.id}`)).count, 1);
      assert.deepEqual(seen().map((m) => m.kind), [`created:${coll}`, `updated:${coll}`, `deleted:${coll}`]);
    },
  },
  {
    key: 'ac-timeout',
    what: 'AfterCommit runs past its time limit: 2xx, the change published, and the next request is served',
    hooks: {
      aftercommit: {
        js: `emit('ac-late', {}); while (true) {}`,
        go: `ctx.Emit("ac-late", map[string]interface{}{})\n\ttime.Sleep(time.Hour)`,
      },
    },
    async act({ api, coll, watch, peer }) {
      const seen = watch();
      const res = body(await api.post(`/${coll}`, { title: 'ac-timeout' }));
      assert.equal(res.title, 'ac-timeout');
      await peer.take((f) => f.type === 'collection_change' && f.action === 'created' && f.document?.id === res.id, 'the subscriber\'s created event');
      assert.deepEqual(seen().map((m) => m.kind), [`created:${coll}`]);
      assert.equal(body(await api.get(`/${coll}/${res.id}`)).title, 'ac-timeout');
    },
  },
  {
    key: 'ac-crash',
    what: 'AfterCommit crashes its worker/sidecar: 2xx, the change published, and the next request is served',
    hooks: {
      aftercommit: {
        // A growing Map aborts the worker process at the isolate's memory limit (isolated-vm#527).
        js: `var m = new Map(); for (var i = 0; ; i++) m.set(i, { i: i, s: 'x' + i });`,
        go: `os.Exit(3)`,
      },
    },
    async act({ api, coll, watch, peer }) {
      const seen = watch();
      const res = body(await api.post(`/${coll}`, { title: 'ac-crash' }));
      assert.equal(res.title, 'ac-crash');
      await peer.take((f) => f.type === 'collection_change' && f.action === 'created' && f.document?.id === res.id, 'the subscriber\'s created event');
      assert.deepEqual(seen().map((m) => m.kind), [`created:${coll}`]);
      assert.equal(body(await api.get(`/${coll}/${res.id}`)).title, 'ac-crash');
    },
  },
];

/** Login hooks (a users collection per language) calling dpd as the user logging in. */
const USERS = { type: 'UserCollection', properties: {} };
const LOGIN_HOOKS = {
  'resources/jsusers/login.js': `dpd.dpdt.post({ tag: 'js-login', name: success ? 'ok' : 'failed' });`,
  'resources/gousers/login.go': goRun(`	name := "failed"
	if ctx.Success {
		name = "ok"
	}
	if _, err := ctx.Dpd("dpdt").Post(map[string]interface{}{"tag": "go-login", "name": name}); err != nil {
		return err
	}`),
};

/** One file per event, each case's snippet guarded by its key. */
function hookFiles(lang: 'js' | 'go', coll: string): Record<string, string> {
  const files: Record<string, string> = {};
  const events = [...new Set(CASES.flatMap((c) => Object.keys(c.hooks)))] as HookEvent[];
  for (const event of events) {
    const parts = CASES.filter((c) => c.hooks[event]).map((c) => {
      const code = c.hooks[event]![lang].replaceAll('$COLL', coll).replaceAll('$LANG', lang);
      if (lang === 'js') return event === 'beforerequest' ? `if (query.case === '${c.key}') {\n${code}\n}` : `if (this.title === '${c.key}') {\n${code}\n}`;
      return event === 'beforerequest' ? `\tif ctx.Query["case"] == "${c.key}" {\n\t${code}\n\t}` : `\tif ctx.Data["title"] == "${c.key}" {\n\t${code}\n\t}`;
    });
    files[`resources/${coll}/${event}.${lang}`] = lang === 'js' ? parts.join('\n') : goRun(parts.join('\n'), ['errors', 'fmt', 'os', 'time']);
  }
  return files;
}

describe('the hook behaviour table, JavaScript and Go', () => {
  let app: string;
  let started: Awaited<ReturnType<typeof startInProcess>>;
  let peer: Peer | undefined;
  const langs: Lang[] = [];

  before(async () => {
    useGo();
    app = makeApp(
      { jsb: SCHEMA, gob: SCHEMA, dpdt: DPDT, vault: VAULT, jsusers: USERS, gousers: USERS },
      { ...hookFiles('js', 'jsb'), ...hookFiles('go', 'gob'), 'resources/dpdt/post.js': DPDT_POST, ...LOGIN_HOOKS },
    );
    started = await startInProcess(app);
    const watch = () => {
      const from = started.messages.length;
      return () =>
        started.messages.slice(from).map((m) => {
          const msg = m as { type: string; event?: string; action?: string; collection?: string; data?: unknown; room?: string };
          return msg.type === 'custom_event'
            ? { kind: `event:${msg.event}`, data: msg.data, ...(msg.room ? { room: msg.room } : {}) }
            : { kind: `${msg.action}:${msg.collection}` };
        });
    };
    peer = await Peer.connect(started.api, 'subscriber');
    langs.push({ name: 'js', api: started.api, coll: 'jsb', watch, peer }, { name: 'go', api: started.api, coll: 'gob', watch, peer });
    await goBuilt(() => started.api.get('/gob?title=none'));
    await goBuilt(() => started.api.post('/gousers/login', { username: 'nobody', password: 'x' }));
  }, { timeout: 600_000 });

  after(async () => {
    peer?.close();
    await started?.close();
    if (app) fs.rmSync(app, { recursive: true, force: true });
  }, { timeout: 60_000 });

  for (const name of ['js', 'go'] as const) {
    it(`${name}: dpd from a Login hook runs as the user logging in, on success and on failure`, async () => {
      const { api } = langs.find((l) => l.name === name)!;
      const users = `/${name}users`;
      body(await api.post(users, { username: `${name}-ann`, password: 'correct horse' }));
      assert.equal((await api.post(`${users}/login`, { username: `${name}-ann`, password: 'wrong' })).status, 401);
      body(await api.post(`${users}/login`, { username: `${name}-ann`, password: 'correct horse' }));
      const made = body(await api.get(`/dpdt?tag=${name}-login`)).map((d: { name: string; by: string }) => `${d.name} by ${d.by}`);
      assert.deepEqual(made.filter((m: string) => m.endsWith(`${name}-ann`)).sort(), [`failed by ${name}-ann`, `ok by ${name}-ann`]);
    });
  }

  for (const c of CASES) {
    for (const name of ['js', 'go'] as const) {
      it(`${name}: ${c.what}`, async () => {
        await c.act(langs.find((l) => l.name === name)!);
      });
    }
  }
});
