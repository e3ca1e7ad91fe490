/**
 * The request pipeline (src/pipeline/): one place opens a request's scope, runs it and publishes its
 * outbox — once, in commit order, on every path (REST, /auth/login, /users/login|logout, the admin
 * API, a hook's `dpd` call). A request that fails publishes only what it had already committed.
 *
 * In process: the pipeline itself, then a real server (real SQLite, real hook workers) driven with
 * `app.inject`, watching its event log.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { EventMessage } from '../src/events/messages.js';
import { ANONYMOUS, ROOT } from '../src/auth/authenticator.js';
import { runNested, runRequest } from '../src/pipeline/run-request.js';
import type { RequestScope } from '../src/pipeline/request-scope.js';
import type { DeploydServer } from '../src/server.js';
import { makeApp, TODOS } from './helpers/server.js';

const START_MS = 60_000;

function facts(identity = { caller: ANONYMOUS }) {
  return { identity, requestId: 'test', key: 'POST /todos', query: {}, body: {} };
}

describe('the pipeline publishes a request\'s outbox', () => {
  it('once, when the request succeeds, in the order queued; a commit sends what was queued before it first', async () => {
    const published: string[] = [];
    let kept: RequestScope | undefined;
    const result = await runRequest(facts(), async (scope) => {
      kept = scope;
      scope.outbox.add(() => published.push('emit-1'));
      scope.outbox.commit(() => published.push('change'));
      scope.outbox.add(() => published.push('emit-2'));
      assert.deepEqual(published, ['emit-1', 'change'], 'nothing after the commit goes out before the request ends');
      return 'answer';
    });
    assert.equal(result, 'answer');
    assert.deepEqual(published, ['emit-1', 'change', 'emit-2']);
    kept!.outbox.release();
    kept!.outbox.add(() => published.push('late'));
    kept!.outbox.release();
    assert.deepEqual(published, ['emit-1', 'change', 'emit-2'], 'an ended request publishes nothing more');
  });

  it('a failed request publishes only what it had committed', async () => {
    const published: string[] = [];
    await assert.rejects(runRequest(facts(), async (scope) => {
      scope.outbox.add(() => published.push('before-commit'));
      scope.outbox.commit(() => published.push('change'));
      scope.outbox.add(() => published.push('after-commit'));
      throw new Error('fails after its commit');
    }), /fails after its commit/);
    assert.deepEqual(published, ['before-commit', 'change']);
  });

  it('a nested (dpd) request publishes when it succeeds, before its parent; a failed one publishes nothing', async () => {
    const published: string[] = [];
    await runRequest(facts({ caller: ROOT }), async (scope) => {
      scope.outbox.add(() => published.push('parent-emit'));
      const call = { stack: [], url: '/', body: {}, skipEvents: undefined };
      await runNested(scope, call, async (inner) => {
        assert.equal(inner.internal, true);
        assert.notEqual(inner.outbox, scope.outbox);
        inner.outbox.add(() => published.push('nested-emit'));
      });
      assert.deepEqual(published, ['nested-emit']);
      await assert.rejects(runNested(scope, call, async (inner) => {
        inner.outbox.add(() => published.push('failed-nested-emit'));
        throw new Error('nested fails');
      }));
    });
    assert.deepEqual(published, ['nested-emit', 'parent-emit']);
  });

  it('the scope says who calls: $skipEvents only for root, $limitRecursion within bounds', async () => {
    const skip = { ...facts({ caller: ROOT }), query: { $skipEvents: 'true', $limitRecursion: '99' } };
    await runRequest(skip, async (scope) => {
      assert.equal(scope.skipEvents, true);
      assert.equal(scope.limitRecursion, 16);
      assert.deepEqual(scope.stack, ['POST /todos']);
    });
    await runRequest({ ...skip, identity: { caller: ANONYMOUS } }, async (scope) => assert.equal(scope.skipEvents, false));
  });
});

const KEY = randomBytes(24).toString('hex');
const USERS = { type: 'UserCollection', properties: { name: { type: 'string' } } };
const FILES: Record<string, string> = {
  'resources/todos/post.js': `emit('todos-post', { title: this.title });`,
  'resources/todos/aftercommit.js': `emit('todos-after-' + method.toLowerCase(), { title: this.title });`,
  'resources/todos/validate.js': `
emit('todos-validate', { title: this.title });
if (this.title === 'cancel-me') cancel('refused', 400);`,
  // A hook's dpd call commits another collection's document, then its own request may be cancelled.
  'resources/parents/post.js': `
var self = this;
dpd.children.post({ title: 'child of ' + this.title }, function (child, err) {
  if (err) return cancel(err.message, 500);
  emit('parents-post', { title: self.title });
  if (self.title === 'cancel-after-child') cancel('refused after the child', 400);
});`,
  'resources/children/aftercommit.js': `emit('children-after', { title: this.title });`,
  'resources/users/login.js': `if (success) emit('welcome', { username: this.username });`,
};

describe('every path publishes through the pipeline (in-process server, real SQLite)', () => {
  let app: string | undefined;
  let server: DeploydServer | undefined;
  let messages: EventMessage[] = [];

  before(async () => {
    app = makeApp({ todos: TODOS, parents: TODOS, children: TODOS, users: USERS }, FILES);
    const { createServer } = await import('../src/server.js');
    server = await createServer({ appDir: app, port: 0, host: '127.0.0.1', masterKey: KEY, logLevel: 'silent' });
    await server.app.ready();
    server.events.subscribe({ event: ({ message }) => messages.push(message), gap: () => {} });
  }, { timeout: START_MS });

  after(async () => {
    await server?.close();
    if (app) fs.rmSync(app, { recursive: true, force: true });
  }, { timeout: START_MS });

  /** One request; what the bus carried while it ran, each message as `kind:detail`. */
  async function send(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
    messages = [];
    const res = await server!.app.inject({
      method: method as 'GET', url, headers: { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    const seen = messages.map(describeMessage);
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined, seen };
  }

  const root = { 'x-master-key': KEY };

  it('REST: a committed POST publishes its hooks\' emits and its change once, in commit order', async () => {
    const res = await send('POST', '/todos', { title: 'one' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.seen, ['emit:todos-validate', 'emit:todos-post', 'change:todos:created:one', 'emit:todos-after-post']);
    const next = await send('GET', `/todos/${res.body.id}`);
    assert.deepEqual(next.seen, [], 'a read publishes nothing, and nothing of the earlier request is published again');
  });

  it('REST: a cancelled request publishes nothing', async () => {
    const res = await send('POST', '/todos', { title: 'cancel-me' });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'DPD_ERR_HOOK_CANCELLED');
    assert.deepEqual(res.seen, []);
  });

  it('REST: a bulk delete publishes each change as it commits, with what was queued before it', async () => {
    for (const title of ['bulk-a', 'bulk-b']) assert.equal((await send('POST', '/todos', { title, status: 'bulk' })).status, 200);
    const res = await send('DELETE', '/todos?status=bulk', undefined, root);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.count, 2);
    const [first, second] = res.seen.filter((m) => m.startsWith('change:')).map((m) => m.split(':')[3]);
    assert.deepEqual(res.seen, [
      `change:todos:deleted:${first}`, 'emit:todos-after-delete', `change:todos:deleted:${second}`, 'emit:todos-after-delete',
    ]);
  });

  it('dpd: a nested request publishes when it succeeds, before the request that made it', async () => {
    const res = await send('POST', '/parents', { title: 'p1' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.seen, ['change:children:created:child of p1', 'emit:children-after', 'emit:parents-post', 'change:parents:created:p1']);
  });

  it('dpd: a request cancelled after its nested request committed publishes only the nested one', async () => {
    const res = await send('POST', '/parents', { title: 'cancel-after-child' });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.deepEqual(res.seen, ['change:children:created:child of cancel-after-child', 'emit:children-after']);
  });

  it('admin API: a document written as root publishes its change once', async () => {
    const res = await send('POST', '/_admin/collections/todos/documents', { title: 'admin' }, root);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.seen, ['emit:todos-validate', 'emit:todos-post', 'change:todos:created:admin', 'emit:todos-after-post']);
  });

  describe('users and sessions', () => {
    let userId = '';

    async function login(path: string): Promise<string> {
      const res = await send('POST', path, { username: 'ada', password: 'correct horse' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.seen, ['emit:welcome'], `${path} publishes its Login hook's emit once`);
      return res.body.id ?? res.body.token;
    }

    it('sign-up publishes the new user (without the password)', async () => {
      const res = await send('POST', '/users', { username: 'ada', password: 'correct horse' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      userId = res.body.id;
      assert.deepEqual(res.seen, ['change:users:created:ada']);
      assert.equal(messages[0].type === 'collection_change' && 'password' in messages[0].document, false);
    });

    it('/users/login and /auth/login publish the Login hook\'s emits; a wrong password publishes nothing', async () => {
      await login('/users/login');
      await login('/auth/login');
      const wrong = await send('POST', '/users/login', { username: 'ada', password: 'wrong password' });
      assert.equal(wrong.status, 401);
      assert.deepEqual(wrong.seen, []);
    });

    it('logout publishes session_ended once', async () => {
      const token = await login('/users/login');
      const res = await send('POST', '/users/logout', {}, { authorization: `Bearer ${token}` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.seen, ['session_ended:1']);
      const again = await send('POST', '/users/logout', {}, { authorization: `Bearer ${token}` });
      assert.deepEqual(again.seen, [], 'an ended session ends nothing more');
    });

    it('a password change ends the user\'s other sessions: session_ended, then the change', async () => {
      const other = await login('/users/login');
      const mine = await login('/auth/login');
      const res = await send('PUT', `/users/${userId}`, { password: 'another horse' }, { authorization: `Bearer ${mine}` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      // Ended: `other` and the two sessions of the login test; the caller's own session stays.
      assert.deepEqual(res.seen, ['session_ended:3', 'change:users:updated:ada']);
      const ended = await send('GET', '/users/me', undefined, { authorization: `Bearer ${other}` });
      assert.equal(ended.status, 204, 'the other session is over');
    });

    it('deleting a user publishes session_ended with the delete, through the outbox', async () => {
      const res = await send('DELETE', `/users/${userId}`, undefined, root);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.seen, ['session_ended:1', 'change:users:deleted:ada']);
    });
  });
});

function describeMessage(m: EventMessage): string {
  switch (m.type) {
    case 'collection_change': return `change:${m.collection}:${m.action}:${String(m.document.title ?? m.document.username ?? '')}`;
    case 'custom_event': return `emit:${m.event}`;
    case 'session_ended': return `session_ended:${m.sessionIds.length}`;
    case 'session_rooms': return `session_rooms:${m.rooms.join(',')}`;
  }
}
