/**
 * Go hooks end to end (`resources/<collection>/<event>.go`): a real bin/deployd builds them with the
 * real Go toolchain and runs them in go-plugin sidecars (src/hooks/go/go-runner.ts, routed by
 * src/hooks/composite-runner.ts). go-deployd's file form and the seed's EventHandler form, JS and Go
 * hooks in one collection, a compile error as a 500 naming file:line (other events keep working),
 * an event with both a .js and a .go file, no Go toolchain, and a sidecar killed with SIGKILL.
 * The builds are warmed in before() so the server's own load reuses them (the server builds in the
 * background, and a request waits only 20 s for it: the first Go build of a machine can take longer).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildGoHooks } from '../src/hooks/go/build.js';
import { SDK, useGo } from './helpers/go.js';
import { eventually, makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';


// go-deployd's form.
const POST_GO = `import "strings"

func Run(ctx *EventContext) error {
	title, _ := ctx.Data["title"].(string)
	ctx.Data["title"] = strings.TrimSpace(title)
	if ctx.Data["title"] == "" {
		ctx.Cancel("title must not be blank", 422)
	}
	ctx.Emit("todo:created", map[string]interface{}{"title": ctx.Data["title"]})
	return nil
}
`;

// The seed's form with the two fixes Go demands (type renamed eventHandler, time imported).
const AFTERCOMMIT_GO = `// aftercommit.go - shape the response from Go
package main

import "time"

type eventHandler struct{}

func (h *eventHandler) Run(ctx interface{}) error {
    eventCtx := ctx.(*EventContext)
    if eventCtx.Method == "POST" {
        eventCtx.SetResponseData(map[string]interface{}{
            "id":    eventCtx.Data["id"],
            "title": eventCtx.Data["title"],
            "at":    time.Now(),
        })
        eventCtx.AddResponseMessage("created from Go")
    }
    return nil
}

var EventHandler = &eventHandler{}
`;

const VALIDATE_JS = `if (this.title === 'js-no') error('title', 'rejected by validate.js');`;

const BROKEN_GET_GO = `import "strings"

func Run(ctx *EventContext) error {
	ctx.Data["x"] = strings.ToUpper(undefinedThing)
	return nil
}
`;

const NOTES_POST_GO = `func Run(ctx *EventContext) error {
	ctx.Data["title"] = "note: " + ctx.Data["title"].(string)
	return nil
}
`;

const SLOW_PUT_GO = `import "time"

func Run(ctx *EventContext) error {
	if ctx.Data["title"] == "slow" {
		time.Sleep(5 * time.Second)
	}
	return nil
}
`;

function sidecarPids(appDir: string): Map<number, string> {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  const pids = new Map<number, string>();
  const marker = path.join(appDir, '.deployd', 'build');
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m && m[2]!.startsWith(marker)) pids.set(Number(m[1]), m[2]!);
  }
  return pids;
}

describe('Go hooks', () => {
  let appDir: string;
  let server: TestServer;
  let todosBinary: string;

  before(async () => {
    appDir = makeApp(
      { todos: TODOS, notes: { ...TODOS, hooks: { timeoutMs: 500 } }, both: TODOS },
      {
        'resources/todos/post.go': POST_GO,
        'resources/todos/aftercommit.go': AFTERCOMMIT_GO,
        'resources/todos/validate.js': VALIDATE_JS,
        'resources/notes/get.go': BROKEN_GET_GO,
        'resources/notes/post.go': NOTES_POST_GO,
        'resources/notes/put.go': SLOW_PUT_GO,
        'resources/both/post.js': `this.title = 'js';`,
        'resources/both/post.go': NOTES_POST_GO,
      },
    );
    useGo();
    const buildDir = path.join(appDir, '.deployd', 'build');
    const [todos] = await Promise.all([
      buildGoHooks({
        collection: 'todos',
        files: [
          { event: 'post', file: 'todos/post.go', source: POST_GO },
          { event: 'aftercommit', file: 'todos/aftercommit.go', source: AFTERCOMMIT_GO },
        ],
        buildDir,
        sdkDir: SDK,
      }),
      buildGoHooks({
        collection: 'notes',
        files: [
          { event: 'post', file: 'notes/post.go', source: NOTES_POST_GO },
          { event: 'put', file: 'notes/put.go', source: SLOW_PUT_GO },
        ],
        buildDir,
        sdkDir: SDK,
      }),
    ]);
    assert.ok('binary' in todos, JSON.stringify(todos));
    todosBinary = todos.binary;
    server = await startServer(appDir);
  }, { timeout: 600_000 });

  after(async () => {
    await server?.stop();
    if (appDir) {
      await eventually(() => sidecarPids(appDir).size === 0, 5000, 'sidecars to exit');
      fs.rmSync(appDir, { recursive: true, force: true });
    }
  }, { timeout: 60_000 });

  it('runs go-deployd-form and seed-form Go hooks next to a JS hook', async () => {
    const res = await server.post('/todos', { title: '  Milk  ' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.title, 'Milk');
    assert.equal(typeof res.body.id, 'string');
    assert.equal(typeof res.body.at, 'string');
    assert.deepEqual(res.body.messages, ['created from Go']);
    const stored = await server.get(`/todos/${res.body.id}`);
    assert.equal(stored.body.title, 'Milk');

    const cancelled = await server.post('/todos', { title: '   ' });
    assert.equal(cancelled.status, 422, cancelled.text);
    assert.match(cancelled.text, /title must not be blank/);

    const js = await server.post('/todos', { title: 'js-no' });
    assert.equal(js.status, 400, js.text);
    assert.match(js.text, /rejected by validate\.js/);
  });

  it('answers 500 naming file:line for a Go hook that does not compile; other events work', async () => {
    const posted = await server.post('/notes', { title: 'a' });
    assert.equal(posted.status, 200, posted.text);
    // The answer goes through the Get hook, which cannot run: it fails closed to the id alone.
    assert.deepEqual(posted.body, { id: posted.body.id });
    assert.equal((await server.get(`/notes/${posted.body.id}?$skipEvents=true`, server.root)).body.title, 'note: a');
    const got = await server.get('/notes');
    assert.equal(got.status, 500, got.text);
    assert.match(got.body.message, /notes\/get\.go:4:\d+: undefined: undefinedThing/);
  });

  it('answers 504 when a Go hook passes its time limit, and keeps serving', async () => {
    const posted = await server.post('/notes', { title: 'b' });
    const slow = await server.put(`/notes/${posted.body.id}`, { title: 'slow' });
    assert.equal(slow.status, 504, slow.text);
    assert.match(slow.body.message, /go hook notes\/put\.go timed out/);
    await eventually(async () => (await server.put(`/notes/${posted.body.id}`, { title: 'quick' })).status === 200, 10_000, 'a replaced sidecar');
  });

  it('rejects an event with both a .js and a .go file', async () => {
    const res = await server.post('/both', { title: 'x' });
    assert.equal(res.status, 500, res.text);
    assert.match(res.body.message, /both\/post\.js and both\/post\.go/);
  });

  it('restarts a sidecar killed with SIGKILL', async () => {
    const before = [...sidecarPids(appDir)].filter(([, args]) => args.startsWith(todosBinary)).map(([pid]) => pid);
    assert.equal(before.length, 1, `todos sidecars: ${before}`);
    process.kill(before[0]!, 'SIGKILL');
    const first = await server.post('/todos', { title: ' after kill ' });
    assert.ok(first.status === 200 || first.status === 503, first.text);
    if (first.status === 503) assert.match(first.body.message, /go hook todos\/post\.go crashed; restarting/);
    await eventually(async () => {
      const res = await server.post('/todos', { title: ' again ' });
      return res.status === 200 && res.body.title === 'again';
    }, 10_000, 'the todos sidecar to come back');
    const now = [...sidecarPids(appDir)].filter(([, args]) => args.startsWith(todosBinary)).map(([pid]) => pid);
    assert.equal(now.length, 1);
    assert.notEqual(now[0], before[0]);
  });

  it('without a Go toolchain, an app with Go hooks refuses to start and says why', async () => {
    const dir = makeApp({ todos: TODOS }, { 'resources/todos/post.go': POST_GO, 'resources/todos/validate.js': VALIDATE_JS });
    const nodeDir = path.dirname(process.execPath);
    const PATH = `${nodeDir}${path.delimiter}/usr/bin${path.delimiter}/bin`.split(path.delimiter).filter((d) => !fs.existsSync(path.join(d, 'go'))).join(path.delimiter);
    try {
      await assert.rejects(startServer(dir, { env: { PATH } }), (err: Error) => {
        assert.match(err.message, /exited with 1 before listening/);
        assert.match(err.message, /Go toolchain \(go 1\.26\+\) is not installed/);
        assert.match(err.message, /todos\/post\.go/);
        return true;
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
