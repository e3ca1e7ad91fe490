/**
 * Go hook sidecars under faults, through a real bin/deployd, the real Go toolchain and real
 * go-plugin sidecars: a panic (500, the sidecar survives), kill -9 under load (503 for the calls
 * in flight, then a new sidecar), a stuck hook (504, the sidecar is replaced), a compile error
 * (500 naming the file, file:line in the log), AutoMTLS on by default (and off when configured),
 * a hot edit under a request loop (no request fails), builds that do not hold up the server or
 * other collections, a prebuilt go-plugin program (config.json "goPlugin"), and no sidecar or
 * socket left after the server is stopped with SIGTERM or killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pluginServices } from '../src/hooks/go/plugin-protos.js';
import { goBuilt, goRun, GO, SDK, sidecarPids, slowGo, useGo } from './helpers/go.js';
import { eventually, makeApp, startServer, TODOS, writeConfig, type ApiResponse, type TestServer } from './helpers/server.js';

const BUILD_MS = 600_000;

const TODOS_POST = (version: string) =>
  goRun(
    `	ctx.Data["version"] = "${version}"
	switch ctx.Data["title"] {
	case "slow":
		time.Sleep(400 * time.Millisecond)
	case "print":
		fmt.Fprintln(os.Stderr, "a line on the sidecar's stderr")
	case "patient":
		time.Sleep(1500 * time.Millisecond) // past JavaScript's 1 s default, within Go's 2 s
	case "panic":
		var m map[string]int
		m["boom"] = 1 // a nil-map write: a runtime panic
	}`,
    ['time', 'fmt', 'os'],
  );

const STUCK_PUT = goRun(
  `	if ctx.Data["title"] == "stuck" {
		time.Sleep(10 * time.Second)
	}`,
  ['time'],
);

const BROKEN_GET = `import "strings"

func Run(ctx *EventContext) error {
	ctx.Data["x"] = strings.ToUpper(notDefinedAnywhere)
	return nil
}
`;

interface SidecarLine {
  collection: string;
  pid: number;
  address: string;
  tls: boolean;
}

/** The server's "go hook sidecar started" log lines (LOG_LEVEL=info), oldest first. */
function sidecarsStarted(server: TestServer, collection?: string): SidecarLine[] {
  const out: SidecarLine[] = [];
  for (const line of server.output.split('\n')) {
    if (!line.includes('go hook sidecar started')) continue;
    try {
      const entry = JSON.parse(line) as SidecarLine;
      if (!collection || entry.collection === collection) out.push(entry);
    } catch {
      // not a JSON line
    }
  }
  return out;
}

/**
 * At least `count` such lines, waiting for them: the log arrives on the server's stdout, which may
 * be read after an HTTP answer that followed it.
 */
async function sidecarsLogged(server: TestServer, collection: string | undefined, count: number): Promise<SidecarLine[]> {
  await eventually(() => sidecarsStarted(server, collection).length >= count, 5000, `${count} "go hook sidecar started" line(s)`);
  return sidecarsStarted(server, collection);
}

/** A health check over a plain-text (no TLS) gRPC channel to a sidecar's socket. */
function plainHealthCheck(address: string): Promise<string> {
  const m = (pluginServices()['grpc.health.v1.Health'] as Record<string, { path: string; requestSerialize: (v: object) => Buffer; responseDeserialize: (b: Buffer) => object }>).Check!;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, { service: 'plugin' }, new grpc.Metadata(), { deadline: Date.now() + 3000 }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve((res as { status: string }).status);
    });
  });
}

function socketRoot(address: string): string {
  // unix:///tmp/dpd-sock-XXXX/dpd-go-YYYY/plugin123 → /tmp/dpd-sock-XXXX
  return path.dirname(path.dirname(address.replace(/^unix:\/\//, '')));
}

describe('Go hook sidecars', () => {
  let app: string;
  let server: TestServer;

  before(async () => {
    useGo();
    app = makeApp(
      { todos: TODOS, stuck: { ...TODOS, hooks: { timeoutMs: 500 } }, broken: TODOS, plain: TODOS },
      {
        'resources/todos/post.go': TODOS_POST('v1'),
        'resources/stuck/put.go': STUCK_PUT,
        'resources/broken/get.go': BROKEN_GET,
        'resources/broken/post.go': goRun(`	ctx.Data["ok"] = true`),
      },
    );
    server = await startServer(app, { env: { LOG_LEVEL: 'info' } });
    await Promise.all([goBuilt(() => server.post('/todos', { title: 'warm-up' })), goBuilt(() => server.post('/broken', { title: 'warm-up' }))]);
  }, { timeout: BUILD_MS });

  after(async () => {
    await server?.stop();
    if (app) {
      await eventually(() => sidecarPids(app).size === 0, 5000, 'sidecars to exit');
      fs.rmSync(app, { recursive: true, force: true });
    }
  }, { timeout: 60_000 });

  it('AutoMTLS is on by default: the sidecar talks mutual TLS and refuses a plain-text client', async () => {
    assert.equal((await server.post('/todos', { title: 'tls' })).status, 200);
    const [line] = await sidecarsLogged(server, 'todos', 1);
    assert.equal(line.tls, true);
    assert.match(line.address, /^unix:\/\//);
    await assert.rejects(plainHealthCheck(line.address));
  });

  it('a panic in Run answers 500 with the panic message, and the same sidecar keeps serving', async () => {
    const pidsBefore = [...sidecarPids(app).keys()];
    const res = await server.post('/todos', { title: 'panic' });
    assert.equal(res.status, 500, res.text);
    assert.match(res.body.message, /assignment to entry in nil map/);
    const next = await server.post('/todos', { title: 'after panic' });
    assert.equal(next.status, 200, next.text);
    assert.equal(next.body.version, 'v1');
    assert.deepEqual([...sidecarPids(app).keys()].sort(), pidsBefore.sort());
    // The stack goes to the log: the sidecar's stderr, which may reach the server after the answer.
    await eventually(() => /panic: assignment to entry in nil map/.test(server.output), 10_000, 'the panic stack in the server log');
  });

  it('kill -9 of a sidecar under load: calls in flight answer 503 "crashed; restarting", a new sidecar takes over, the server lives', async () => {
    const started = await sidecarsLogged(server, 'todos', 1);
    const pid = started.at(-1)!.pid;
    assert.ok(sidecarPids(app).has(pid));
    const inFlight = Array.from({ length: 4 }, () => server.post('/todos', { title: 'slow' }));
    await new Promise((r) => setTimeout(r, 150));
    process.kill(pid, 'SIGKILL');
    const answers = await Promise.all(inFlight);
    for (const res of answers) {
      assert.equal(res.status, 503, res.text);
      assert.deepEqual(res.body.message, 'go hook todos/post.go crashed; restarting');
    }
    // Load continues through the restart: every answer is 200 or that 503, never anything else.
    const during: ApiResponse[] = [];
    await eventually(async () => {
      const batch = await Promise.all(Array.from({ length: 4 }, (_, i) => server.post('/todos', { title: `load ${i}` })));
      during.push(...batch);
      return batch.every((r) => r.status === 200);
    }, 10_000, 'a restarted sidecar');
    for (const res of during) assert.ok(res.status === 200 || (res.status === 503 && /crashed; restarting/.test(res.body.message)), res.text);
    assert.equal(sidecarPids(app).has(pid), false);
    await eventually(() => sidecarsStarted(server, 'todos').at(-1)!.pid !== pid, 5000, 'the new sidecar in the log');
    assert.equal((await server.get('/health')).status, 200);
  });

  it('a hook past its deadline answers 504 and its stuck sidecar is replaced', async () => {
    const { id } = (await server.post('/stuck', { title: 'x' })).body;
    assert.equal((await goBuilt(() => server.put(`/stuck/${id}`, { title: 'warm-up' }))).status, 200);
    const pid = (await sidecarsLogged(server, 'stuck', 1)).at(-1)!.pid;
    const res = await server.put(`/stuck/${id}`, { title: 'stuck' });
    assert.equal(res.status, 504, res.text);
    assert.equal(res.body.message, 'go hook stuck/put.go timed out');
    await eventually(() => !sidecarPids(app).has(pid), 5000, 'the stuck sidecar to be killed');
    await eventually(async () => (await server.put(`/stuck/${id}`, { title: 'quick' })).status === 200, 10_000, 'a replacement sidecar');
    await eventually(() => sidecarsStarted(server, 'stuck').at(-1)!.pid !== pid, 5000, 'the new sidecar in the log');
  });

  it("a sidecar's own output reaches the server log, tagged with its hook files", async () => {
    assert.equal((await server.post('/todos', { title: 'print' })).status, 200);
    await eventually(() => server.output.split('\n').some((line) => line.includes("a line on the sidecar's stderr") && line.includes('"hookFiles":["todos/post.go"]')), 5000, 'the stderr line in the log');
  });

  it('the default deadline of a Go hook call is 2 s', async () => {
    const res = await server.post('/todos', { title: 'patient' });
    assert.equal(res.status, 200, res.text);
  });

  it('a compile error answers 500 naming the file and is logged with file:line; the other events work', async () => {
    const res = await server.get('/broken');
    assert.equal(res.status, 500, res.text);
    assert.match(res.body.message, /^broken\/get\.go:4:\d+: undefined: notDefinedAnywhere/);
    assert.match(server.output, /broken\/get\.go:4:\d+: undefined: notDefinedAnywhere/);
    const posted = await server.post('/broken', { title: 'fine' });
    assert.equal(posted.status, 200, posted.text);
    // The answer goes through the Get hook, which cannot run: it fails closed to the id alone.
    assert.deepEqual(posted.body, { id: posted.body.id });
    assert.equal((await server.get(`/broken/${posted.body.id}?$skipEvents=true`, server.root)).body.ok, true);
  });

  it('a hot edit rebuilds and swaps in the new sidecar while requests keep succeeding', { timeout: BUILD_MS }, async () => {
    const answers: ApiResponse[] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) answers.push(await server.post('/todos', { title: `hot ${w}-${i}` }));
    };
    const plainAnswers: ApiResponse[] = [];
    const plainWorker = async () => {
      while (!stop) plainAnswers.push(await server.get('/plain'));
    };
    const binariesBefore = new Set(sidecarPids(app).values());
    const workers = [worker(0), worker(1), plainWorker()];
    try {
      await eventually(() => answers.length >= 10, 10_000, 'requests before the edit');
      fs.writeFileSync(path.join(app, 'resources', 'todos', 'post.go'), TODOS_POST('v2'));
      await eventually(() => answers.at(-1)?.body?.version === 'v2', BUILD_MS - 10_000, 'the edited hook');
      const seen = answers.length;
      await eventually(() => answers.length >= seen + 10, 10_000, 'requests after the swap');
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    const failed = [...answers, ...plainAnswers].filter((r) => r.status !== 200);
    assert.deepEqual(failed.map((r) => r.text), []);
    const versions = answers.map((r) => r.body.version);
    assert.ok(versions.includes('v1') && versions.includes('v2'));
    // Once v2 answered, v1 never did again: the swap is one-way.
    assert.equal(versions.lastIndexOf('v1') < versions.indexOf('v2'), true);
    await eventually(() => sidecarPids(app).size === 3, 5000, 'the old todos sidecar to stop'); // todos, stuck, broken
    // The retired program is deleted with its sidecar; the running ones stay.
    const running = new Set(sidecarPids(app).values());
    const retired = [...binariesBefore].filter((b) => !running.has(b));
    assert.equal(retired.length, 1, JSON.stringify({ binariesBefore: [...binariesBefore], running: [...running] }));
    await eventually(() => !fs.existsSync(retired[0]!), 30_000, 'the retired build to be removed (after its 10 s grace)');
    for (const b of running) assert.ok(fs.existsSync(b), b);
  });

  it('a hot edit that does not compile answers 500 naming file:line (fail closed); fixing it serves again', { timeout: BUILD_MS }, async () => {
    const file = path.join(app, 'resources', 'todos', 'post.go');
    fs.writeFileSync(file, goRun('\tctx.Data["version"] = versionThatDoesNotExist'));
    await eventually(async () => (await server.post('/todos', { title: 'broken edit' })).status === 500, BUILD_MS - 20_000, 'the broken edit to load');
    // (Until the broken version loaded, the old one served: those requests succeeded.)
    const res = await server.post('/todos', { title: 'after the broken edit' });
    assert.equal(res.status, 500, res.text);
    assert.match(res.body.message, /^todos\/post\.go:2:\d+: undefined: versionThatDoesNotExist/);
    assert.deepEqual((await server.get('/todos?title=after%20the%20broken%20edit')).body, []);
    fs.writeFileSync(file, TODOS_POST('v3'));
    const fixed = await goBuilt(async () => {
      for (;;) {
        const r = await server.post('/todos', { title: 'fixed' });
        if (r.status !== 500) return r;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
    assert.equal(fixed.status, 200, fixed.text);
    assert.equal(fixed.body.version, 'v3');
  });
});

describe('Go builds stay off the request path', () => {
  it('the server listens and serves other collections while a first build runs; requests for it wait, or get 503 past the wait', { timeout: BUILD_MS }, async () => {
    useGo();
    const slow = slowGo(6000);
    const app = makeApp({ waits: TODOS, plain: TODOS, impatient: TODOS }, {
      'resources/waits/post.go': goRun(`	ctx.Data["built"] = "waits"`),
      'resources/impatient/post.go': goRun(`	ctx.Data["built"] = "impatient"`),
    });
    const env = { PATH: `${slow}${path.delimiter}${process.env.PATH}`, DEPLOYD_GO_BUILD_WAIT_MS: '1500' };
    let server: TestServer | undefined;
    try {
      server = await startServer(app, { env });
      const plain = await server.post('/plain', { title: 'served' });
      assert.equal(plain.status, 200, plain.text);
      // Listening and answering while the (≥ 6 s) Go builds run: no program is built yet.
      const buildDir = path.join(app, '.deployd', 'build');
      assert.equal(fs.existsSync(buildDir) && fs.readdirSync(buildDir).some((d) => fs.existsSync(path.join(buildDir, d, 'plugin'))), false);
      const early = await server.post('/impatient', { title: 'too soon' });
      assert.equal(early.status, 503, early.text);
      assert.equal(early.body.message, 'go hook impatient/post.go is still being built; nothing was stored; try again shortly');
      assert.deepEqual((await server.get('/impatient')).body, []); // fail closed: nothing was stored
      const posted = await goBuilt(() => server!.post('/waits', { title: 'after the build' }));
      assert.equal(posted.status, 200, posted.text);
      assert.equal(posted.body.built, 'waits');
      await server.stop();

      // Default wait (20 s): a request made during the build waits for it instead of failing.
      fs.writeFileSync(path.join(app, 'resources', 'waits', 'post.go'), goRun(`	ctx.Data["built"] = "waits again"`));
      server = await startServer(app, { env: { PATH: env.PATH } });
      // The server holds the request up to its 20 s wait: the client waits longer than that (the
      // harness's 15 s request deadline cut it short on a busy machine).
      const waited = await fetch(`${server.url}/waits`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'during the build' }), signal: AbortSignal.timeout(60_000),
      });
      const text = await waited.text();
      assert.equal(waited.status, 200, text);
      assert.equal(JSON.parse(text).built, 'waits again');
    } finally {
      await server?.stop();
      fs.rmSync(app, { recursive: true, force: true });
      fs.rmSync(slow, { recursive: true, force: true });
    }
  });

  it('an unchanged app starts without building; DEPLOYD_GO_AUTOMTLS=off turns TLS off', { timeout: BUILD_MS }, async () => {
    useGo();
    const app = makeApp({ todos: TODOS }, { 'resources/todos/post.go': goRun(`	ctx.Data["tls"] = "checked"`) });
    let server: TestServer | undefined;
    try {
      server = await startServer(app, { env: { LOG_LEVEL: 'info' } });
      await goBuilt(() => server!.post('/todos', { title: 'warm-up' }));
      await server.stop();
      const noGo = slowGo(0);
      fs.writeFileSync(path.join(noGo, 'go'), '#!/bin/sh\necho "go must not run for an unchanged app" >&2\nexit 3\n');
      server = await startServer(app, { env: { LOG_LEVEL: 'info', DEPLOYD_GO_AUTOMTLS: 'off', PATH: `${noGo}${path.delimiter}${process.env.PATH}` } });
      const res = await server.post('/todos', { title: 'plain' });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.tls, 'checked');
      const [line] = await sidecarsLogged(server, 'todos', 1);
      assert.equal(line?.tls, false);
      assert.equal(await plainHealthCheck(line!.address), 'SERVING');
      assert.doesNotMatch(server.output, /building the Go hooks/);
      fs.rmSync(noGo, { recursive: true, force: true });
    } finally {
      await server?.stop();
      fs.rmSync(app, { recursive: true, force: true });
    }
  });
});

describe('a prebuilt go-plugin program (config.json "goPlugin")', () => {
  let app: string;
  let server: TestServer;

  before(async () => {
    useGo();
    app = makeApp({ plain: TODOS });
    // hooks-go's examples/post, built by hand: any go-plugin program speaking hooks.proto works.
    execFileSync(GO, ['build', '-o', path.join(app, 'bin', 'myhooks'), './examples/post'], { cwd: SDK, env: { ...process.env, GOWORK: 'off' }, timeout: BUILD_MS - 10_000 });
    writeConfig(app, 'todos', { ...TODOS, goPlugin: './bin/myhooks' });
    writeConfig(app, 'picky', { ...TODOS, goPlugin: { path: './bin/myhooks', events: ['post'] } });
    writeConfig(app, 'missing', { ...TODOS, goPlugin: './bin/nothing-here' });
    writeConfig(app, 'bad', { ...TODOS, goPlugin: 42 });
    server = await startServer(app);
  }, { timeout: BUILD_MS });

  after(async () => {
    await server?.stop();
    if (app) {
      await eventually(() => sidecarPids(app, path.join(app, 'bin')).size === 0, 5000, 'the plugin to exit');
      fs.rmSync(app, { recursive: true, force: true });
    }
  }, { timeout: 60_000 });

  it('runs its hooks; events it has no handler for pass through', async () => {
    const anonymous = await server.post('/todos', { title: 'x' });
    assert.equal(anonymous.status, 401, anonymous.text);
    assert.equal(anonymous.body.message, 'log in to create todos');
    const root = await server.post('/todos', { title: 'mine' }, server.root);
    assert.equal(root.status, 200, root.text);
    assert.equal(root.body.owner, 'root');
    const list = await server.get('/todos'); // get, beforerequest: no handler in the program
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.body.map((d: { title: string }) => d.title), ['mine']);
    assert.equal((await server.post('/picky', { title: 'x' })).status, 401);
    assert.equal(sidecarPids(app, path.join(app, 'bin', 'myhooks')).size, 2);
  });

  it('a missing program or a malformed "goPlugin" is a 500 naming it; other collections work', async () => {
    const missing = await server.post('/missing', { title: 'x' });
    assert.equal(missing.status, 500, missing.text);
    assert.match(missing.body.message, /bin\/nothing-here.* is not an executable file/);
    const bad = await server.get('/bad');
    assert.equal(bad.status, 500, bad.text);
    assert.match(bad.body.message, /"goPlugin" must be a path/);
    assert.equal((await server.post('/plain', { title: 'ok' })).status, 200);
  });
});

describe('no sidecar or socket outlives the server', () => {
  it('SIGTERM during a first build stops the build too', { timeout: BUILD_MS }, async () => {
    useGo();
    const slow = slowGo(6000);
    const app = makeApp({ a: TODOS }, { 'resources/a/post.go': goRun(`	ctx.Data["a"] = 2`) });
    const mentioning = () => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((line) => line.includes(app) && !line.includes('bin/deployd') && !line.includes('cli/main'));
    try {
      const server = await startServer(app, { env: { PATH: `${slow}${path.delimiter}${process.env.PATH}` } });
      await eventually(() => mentioning().length > 0, 5000, 'the build to start');
      assert.equal(await server.stop('SIGTERM'), 0);
      await eventually(() => mentioning().length === 0, 5000, 'no build left');
      assert.equal(sidecarPids(app).size, 0);
    } finally {
      fs.rmSync(app, { recursive: true, force: true });
      fs.rmSync(slow, { recursive: true, force: true });
    }
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`after ${signal}`, { timeout: BUILD_MS }, async () => {
      useGo();
      const app = makeApp({ a: TODOS, b: TODOS }, { 'resources/a/post.go': goRun(`	ctx.Data["a"] = 1`), 'resources/b/validate.go': goRun(`	ctx.Data["b"] = 1`) });
      try {
        const server = await startServer(app, { env: { LOG_LEVEL: 'info' } });
        const [a, b] = await Promise.all([goBuilt(() => server.post('/a', { title: 'x' })), goBuilt(() => server.post('/b', { title: 'x' }))]);
        assert.equal(a.status, 200, a.text);
        assert.equal(b.status, 200, b.text);
        const lines = await sidecarsLogged(server, undefined, 2);
        assert.equal(lines.length, 2);
        assert.equal(sidecarPids(app).size, 2);
        const root = socketRoot(lines[0]!.address);
        assert.ok(fs.existsSync(root));
        await server.stop(signal);
        await eventually(() => sidecarPids(app).size === 0, 5000, `sidecars to exit after ${signal}`);
        await eventually(() => !fs.existsSync(root), 5000, `${root} to be removed after ${signal}`);
      } finally {
        fs.rmSync(app, { recursive: true, force: true });
      }
    });
  }
});
