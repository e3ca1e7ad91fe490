/**
 * Hook unit tests, JavaScript side: runHook(file, context) from deployd-ts runs one hook file in
 * the real sandbox (isolated-vm in a hook worker) without a server, and returns what it did. The
 * example app's validate.js is tested this way; so is a hook using `dpd`, answered by the test.
 * (The Go side: hooks-go/hookstest, used by hooks-go/examples/{validate,post,aftercommit,dpd}, run
 * by go-sdk.test.ts.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { runHook } from '../src/index.js';
import { ROOT } from './helpers/server.js';

const VALIDATE = path.join(ROOT, 'examples', 'todos', 'resources', 'todos', 'validate.js');

describe('runHook: JavaScript hooks unit-tested in the real sandbox', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-runhook-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }), { timeout: 60_000 });

  it("examples/todos validate.js accepts a good todo and names each bad field", { timeout: 60_000 }, async () => {
    const ok = await runHook(VALIDATE, { data: { title: 'buy milk', priority: 3 } });
    assert.deepEqual(ok.errors, {});
    assert.equal(ok.cancel, undefined);
    const bad = await runHook(VALIDATE, { data: { title: 'x'.repeat(201), priority: 11 } });
    assert.deepEqual(bad.errors, { title: 'is too long (200 characters at most)', priority: 'must be from 1 to 10' });
  });

  it('returns the document, hidden fields, emits, cancels and response changes; dpd calls go to the test', { timeout: 60_000 }, async () => {
    const dir = path.join(tmp, 'comments');
    fs.mkdirSync(dir);
    const post = path.join(dir, 'post.js');
    fs.writeFileSync(post, `
      if (!me) cancel('log in to comment', 401);
      var self = this;
      self.author = me.username;
      hide('secret');
      dpd.todos.get(self.todoId).then(function (todo) {
        self.todoTitle = todo.title;
        emit('todo:' + todo.id, 'comment', { text: self.text });
      }, function (err) { error('todoId', err.message); });
    `);
    const res = await runHook(post, {
      data: { todoId: 't1', text: 'soon', secret: 's' },
      me: { id: 'u1', username: 'ann' },
      dpd: { todos: (call) => ({ id: call.id ?? '', title: 'buy milk' }) },
    });
    assert.equal(res.cancel, undefined);
    assert.deepEqual(res.data, { todoId: 't1', text: 'soon', secret: 's', author: 'ann', todoTitle: 'buy milk' });
    assert.deepEqual(res.hidden, ['secret']);
    assert.deepEqual(res.emits, [{ event: 'comment', data: { text: 'soon' }, room: 'todo:t1' }]);
    assert.deepEqual(res.dpdCalls.map((c) => [c.collection, c.method, c.id]), [['todos', 'GET', 't1']]);

    const missing = await runHook(post, {
      data: { todoId: 'gone' },
      me: { id: 'u1', username: 'ann' },
      dpd: { todos: () => { throw { message: 'not found', status: 404 }; } },
    });
    assert.deepEqual(missing.errors, { todoId: 'not found' });

    const anonymous = await runHook(post, { data: { todoId: 't1' } });
    assert.deepEqual(anonymous.cancel, { message: 'log in to comment', status: 401, isError: false });
  });

  it('a file that does not compile is an error naming it', { timeout: 60_000 }, async () => {
    const file = path.join(tmp, 'validate.js');
    fs.writeFileSync(file, 'if (');
    await assert.rejects(runHook(file), /runHook: .*validate\.js/);
  });
});
