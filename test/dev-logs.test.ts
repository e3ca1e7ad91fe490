/**
 * Logs a developer can read: pretty lines with --dev (or on a terminal), JSON otherwise; a hook's
 * console.log names its collection, event and file; the start lists each collection's hooks (in event order).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { goRun, useGo } from './helpers/go.js';
import { eventually, makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';

const FILES = {
  'resources/todos/post.js': `console.log('hello from', this.title);`,
  'resources/todos/validate.go': goRun(''),
  'resources/plain/config.json': JSON.stringify(TODOS),
};

async function withServer(args: string[], fn: (server: TestServer) => Promise<void>): Promise<void> {
  useGo();
  const app = makeApp({ todos: TODOS }, FILES);
  let server: TestServer | undefined;
  try {
    // (validate.go builds in the background; these tests only read the start-up lines and the JavaScript hook's log.)
    server = await startServer(app, { args, env: { LOG_LEVEL: 'info' } });
    await fn(server);
  } finally {
    await server?.stop();
    fs.rmSync(app, { recursive: true, force: true });
  }
}

describe('development logs', () => {
  it('without --dev and not on a terminal: JSON lines; console.log carries collection, event and file', { timeout: 120_000 }, async () => {
    await withServer([], async (server) => {
      const lines = server.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      const todos = lines.find((l) => l.msg?.startsWith('collection todos:'));
      assert.equal(todos?.msg, 'collection todos: hooks validate.go (Go), post.js (JavaScript)');
      assert.deepEqual(todos.hooks, [{ file: 'validate.go', language: 'Go' }, { file: 'post.js', language: 'JavaScript' }]);
      assert.ok(lines.some((l) => l.msg === 'collection plain: no hooks'), server.output);
      assert.equal((await server.post('/plain', { title: 'x' })).status, 200);
      await server.post('/todos', { title: 'json' }).catch(() => undefined);
      await eventually(() => server.output.includes('hello from json'), 5000, 'the hook log line');
      const hookLine = server.output.split('\n').find((l) => l.includes('hello from json'))!;
      const parsed = JSON.parse(hookLine);
      assert.deepEqual({ collection: parsed.collection, event: parsed.event, file: parsed.file, hookLog: parsed.hookLog, msg: parsed.msg },
        { collection: 'todos', event: 'post', file: 'todos/post.js', hookLog: true, msg: 'hello from json' });
    });
  });

  it('with --dev: readable lines, a hook\'s console.log starts with its file', { timeout: 120_000 }, async () => {
    await withServer(['--dev'], async (server) => {
      assert.match(server.output, /INFO[^\n]*: collection todos: hooks validate\.go \(Go\), post\.js \(JavaScript\)/);
      assert.doesNotMatch(server.output, /^\{"level"/m);
      await server.post('/todos', { title: 'pretty' }).catch(() => undefined);
      await eventually(() => /INFO[^\n]*: \[todos\/post\.js\] hello from pretty/.test(server.output), 5000, 'the pretty hook log line');
    });
  });
});
