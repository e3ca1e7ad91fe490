/**
 * Hostile JavaScript hooks against the real server: infinite loops, memory bombs, tampering with
 * built-ins, escape attempts, broken files, hot reload under load and hook-process crashes. Each
 * test injects the fault through a hook file and checks that only the offending request fails and
 * that the server (and the same collection) keeps serving.
 *
 * Limits are kept short through the collections' `"hooks": {"timeoutMs", "memoryMb"}` so the file
 * runs in well under a minute.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, makeApp, startServer, type ApiResponse, type TestServer } from './helpers/server.js';


/** Real HTTP (with the harness's deadline). */
function call(server: TestServer, method: string, urlPath: string, body?: unknown): Promise<ApiResponse> {
  return server.request(method, urlPath, body);
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small collection; `hooks` sets its limits (none: the server defaults, 1 s and 64 MB). */
function collection(hooks?: { timeoutMs?: number; memoryMb?: number }): Record<string, unknown> {
  return {
    type: 'Collection',
    properties: {
      title: { type: 'string' },
      result: { type: 'string' },
      meta: { type: 'object' },
      n: { type: 'number' },
    },
    ...(hooks ? { hooks } : {}),
  };
}

/** Live hook worker processes of a server (children of its process). */
function workerPids(server: TestServer): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(server.proc.pid)], { encoding: 'utf8' })
      .split('\n').map((s) => Number(s.trim())).filter((n) => n > 0);
  } catch {
    return [];
  }
}

/**
 * The pool starts with one worker and adds one (up to one per core) when every serving worker has
 * calls waiting: batches of concurrent calls until `n` serve.
 */
async function growPool(server: TestServer, n: number): Promise<void> {
  const serving = async () => (await server.get('/_admin/status', server.root)).body.hooks.workers.filter((w: { ready: boolean }) => w.ready).length;
  const deadline = Date.now() + 60_000;
  while (await serving() < n) {
    assert.ok(Date.now() < deadline, `the hook worker pool did not grow to ${n} workers`);
    const batch = await Promise.all(Array.from({ length: 20 }, (_, i) => call(server, 'POST', '/busy', { title: `load ${i}` })));
    for (const res of batch) assert.equal(res.status, 200, res.text);
  }
}

async function healthy(server: TestServer): Promise<void> {
  const health = await call(server, 'GET', '/health');
  assert.equal(health.status, 200, 'GET /health answers 200');
  assert.equal(server.proc.exitCode, null, 'the server process is alive');
}

// ---- loops, bombs and crashes (two hook workers, the default) ------------------------------------

const LOOP = 'while (true) {}';

const BOMBS = `
switch (data.title) {
  case 'array': { var a = []; while (true) a.push([1, 2, 3]); }
  case 'string': { var s = 'x'; while (true) s += s; }
  case 'flat-string': { var f = 'xxxxxxxx', keep = []; while (true) { f = f + f; keep.push(f.slice(1)); } }
  case 'map': { var m = new Map(), i = 0; while (true) m.set(i++, [i, i, i]); }
  case 'huge-array': { new Array(Math.pow(2, 31) - 1).fill(0); break; }
  case 'recursion': { var deep = function () { return deep() + 1; }; deep(); break; }
  case 'json': { var o = {}; for (var k = 0; k < 40; k++) o = { a: o, b: o }; data.result = String(JSON.stringify(o).length); break; }
}
data.result = 'ok';
`;

describe('hostile hooks: loops, memory, crashes', () => {
  let server: TestServer;

  before(async () => {
    const app = makeApp(
      {
        plain: collection(),
        busy: collection(),
        looping: collection(), // default limit: 1 s
        looping2: collection(),
        longloop: collection({ timeoutMs: 5000 }),
        longloop2: collection({ timeoutMs: 5000 }),
        quick: collection({ timeoutMs: 300 }),
        thenloop: collection({ timeoutMs: 300 }),
        bomb: collection({ timeoutMs: 5000, memoryMb: 16 }),
        steady: collection({ timeoutMs: 2000 }),
        broken: collection(),
      },
      {
        'resources/busy/post.js': "data.result = 'busy ' + data.title;",
        'resources/busy/get.js': "data.seen = true;",
        'resources/looping/post.js': LOOP,
        'resources/looping/get.js': "data.result = 'looping get';",
        'resources/looping2/post.js': LOOP,
        'resources/longloop/post.js': LOOP,
        'resources/longloop2/post.js': LOOP,
        'resources/quick/post.js': "if (data.title === 'loop') { while (true) {} }\ndata.result = 'quick';",
        'resources/thenloop/post.js': [
          "if (data.title === 'dpd') dpd.plain.get({ $limit: 1 }).then(function () { while (true) {} });",
          "if (data.title === 'microtask') { $addCallback(); Promise.resolve().then(function () { while (true) {} }); }",
          "if (data.title === 'callback') dpd.plain.get({ $limit: 1 }, function () { for (;;) {} });",
          "if (data.title === 'never') $addCallback();",
          "data.result = 'done';",
        ].join('\n'),
        'resources/bomb/post.js': BOMBS,
        'resources/steady/post.js': "dpd.plain.get({ $limit: 1 }, function () { data.result = 'steady'; });",
        // A syntax error on line 3; get.js is fine.
        'resources/broken/post.js': "// broken on purpose\nvar ok = 1;\nvar x = ;\n",
        'resources/broken/get.js': "data.result = 'fine';",
      },
    );
    server = await startServer(app);
    assert.equal((await call(server, 'POST', '/plain', { title: 'seed' })).status, 200);
    assert.equal((await call(server, 'POST', '/busy', { title: 'seed' })).status, 200);
    assert.equal((await call(server, 'POST', '/broken', { title: 'never' })).status, 500);
    await growPool(server, 2);
  }, { timeout: 120_000 });

  after(async () => {
    await server?.stop();
  }, { timeout: 60_000 });

  it('an infinite loop answers 500 after the default 1 s while every other request is served meanwhile', async (t) => {
    const t0 = performance.now();
    // Two loops at the default limit, and two under a long one: with two workers, both processes
    // have an isolate spinning for the whole time the other requests below are made.
    let settled = false;
    const loops = Promise.all([call(server, 'POST', '/looping', { title: 'a' }), call(server, 'POST', '/looping2', { title: 'b' })]);
    const long = Promise.all([call(server, 'POST', '/longloop', { title: 'a' }), call(server, 'POST', '/longloop2', { title: 'b' })]);
    void long.then(() => { settled = true; });
    await sleep(100);
    const checks: Array<[string, () => Promise<ApiResponse>, (r: ApiResponse) => void]> = [
      ['GET /plain (no hooks)', () => call(server, 'GET', '/plain'), (r) => assert.equal(r.body.length >= 1, true)],
      ['POST /plain (no hooks)', () => call(server, 'POST', '/plain', { title: 'during loop' }), (r) => assert.equal(r.body.title, 'during loop')],
      ['POST /busy (another collection\'s hook)', () => call(server, 'POST', '/busy', { title: 'x' }), (r) => assert.equal(r.body.result, 'busy x')],
      ['GET /busy (another collection\'s get hook)', () => call(server, 'GET', '/busy'), (r) => assert.equal(r.body[0].seen, true)],
      ['POST /steady (a hook with a dpd call)', () => call(server, 'POST', '/steady', { title: 's' }), (r) => assert.equal(r.body.result, 'steady')],
      ['GET /looping (the same collection, another event)', () => call(server, 'GET', '/looping'), (r) => assert.deepEqual(r.body, [])],
    ];
    let slowest = 0;
    for (const [label, request, check] of checks) {
      for (let i = 0; i < 3; i++) {
        const { value, ms } = await timed(request);
        assert.equal(value.status, 200, `${label}: ${value.text}`);
        check(value);
        // Served while the loops spin, not queued behind them (a bound on behaviour, not on speed).
        assert.equal(settled, false, `${label} was answered only after the long loops ended`);
        slowest = Math.max(slowest, ms);
      }
    }
    t.diagnostic(`${checks.length * 3} requests during the loops, slowest ${slowest.toFixed(1)} ms`);
    const [a, b] = await loops;
    const elapsed = performance.now() - t0;
    for (const [res, file] of [[a, 'looping/post.js'], [b, 'looping2/post.js']] as const) {
      assert.equal(res.status, 500, res.text);
      assert.equal(res.body.message, `hook timed out: ${file}`);
    }
    // Stopped at the default limit: not before it, and well before the 5 s of the long loops.
    assert.ok(elapsed >= 950 && elapsed < 4500, `the loops were stopped after ${elapsed.toFixed(0)} ms (limit 1000)`);
    t.diagnostic(`loops answered after ${elapsed.toFixed(0)} ms`);
    for (const [res, file] of (await long).map((r, i) => [r, `longloop${i ? '2' : ''}/post.js`] as const)) {
      assert.equal(res.status, 500, res.text);
      assert.equal(res.body.message, `hook timed out: ${file}`);
    }
    assert.equal((await call(server, 'GET', '/looping')).status, 200);
    await healthy(server);
  });

  it('"hooks": {"timeoutMs": 300} in config.json overrides the limit; the collection serves again', async () => {
    const { value, ms } = await timed(() => call(server, 'POST', '/quick', { title: 'loop' }));
    assert.equal(value.status, 500, value.text);
    assert.equal(value.body.message, 'hook timed out: quick/post.js');
    assert.ok(ms >= 280 && ms < 5000, `stopped after ${ms.toFixed(0)} ms (limit 300)`);
    for (let i = 0; i < 4; i++) {
      const ok = await call(server, 'POST', '/quick', { title: 'fine' });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.result, 'quick');
    }
  });

  it('a loop inside a .then, a microtask or a dpd callback is stopped too, and so is a hook that never finishes', async () => {
    for (const title of ['dpd', 'microtask', 'callback', 'never']) {
      const { value, ms } = await timed(() => call(server, 'POST', '/thenloop', { title }));
      assert.equal(value.status, 500, `${title}: ${value.text}`);
      assert.equal(value.body.message, 'hook timed out: thenloop/post.js', title);
      assert.ok(ms < 5000, `${title}: ${ms.toFixed(0)} ms`); // the limit ends it (a hang would run to the 15 s client deadline)
      const ok = await call(server, 'POST', '/thenloop', { title: 'fine' });
      assert.equal(ok.status, 200, `after ${title}: ${ok.text}`);
      assert.equal(ok.body.result, 'done');
    }
    await healthy(server);
  });

  const bombs: Array<[string, number | 'error', RegExp]> = [
    ['array', 500, /memory limit: bomb\/post\.js/],
    ['string', 'error', /Invalid string length/],
    ['flat-string', 500, /memory limit: bomb\/post\.js/],
    ['map', 500, /(hook process crashed|memory limit).*bomb\/post\.js/],
    ['huge-array', 500, /(hook process crashed|memory limit).*bomb\/post\.js/],
    ['recursion', 'error', /Maximum call stack size exceeded/],
    ['json', 500, /memory limit: bomb\/post\.js/],
  ];
  for (const [kind, status, message] of bombs) {
    it(`memory bomb "${kind}" fails its request; the server and the collection keep serving`, async () => {
      const res = await call(server, 'POST', '/bomb', { title: kind });
      if (status === 'error') assert.ok(res.status >= 400 && res.status <= 500, `${kind}: ${res.status} ${res.text}`);
      else assert.equal(res.status, status, `${kind}: ${res.text}`);
      assert.match(res.body?.message ?? '', message);
      await healthy(server);
      for (let i = 0; i < 4; i++) {
        const ok = await call(server, 'POST', '/bomb', { title: 'fine' });
        assert.equal(ok.status, 200, `after ${kind}: ${ok.text}`);
        assert.equal(ok.body.result, 'ok');
      }
      assert.equal((await call(server, 'POST', '/busy', { title: kind })).body.result, `busy ${kind}`);
    });
  }

  it('a worker crash fails only its invocations; the other worker keeps serving and the crashed one is replaced', async (t) => {
    await eventually(() => workerPids(server).length === 3, 5000, 'two hook workers and their warm spare');
    const before = workerPids(server);
    let done = false;
    const bomb = call(server, 'POST', '/bomb', { title: 'map' }).finally(() => { done = true; });
    const during: ApiResponse[] = [];
    while (!done && during.length < 500) during.push(await call(server, 'POST', '/steady', { title: 'during' }));
    const res = await bomb;
    assert.equal(res.status, 500, res.text);
    assert.match(res.body.message, /hook process crashed.*bomb\/post\.js/);
    assert.ok(during.length >= 1, 'requests ran while the bomb was going off');
    t.diagnostic(`${during.length} requests served by the other worker while the bomb went off`);
    for (const r of during) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.result, 'steady');
    }
    await eventually(() => {
      const now = workerPids(server);
      return now.length === 3 && before.some((pid) => !now.includes(pid));
    }, 5000, 'the crashed worker to be replaced');
    for (let i = 0; i < 6; i++) {
      for (const [p, expected] of [['/steady', 'steady'], ['/bomb', 'ok'], ['/busy', 'busy after']] as const) {
        const ok = await call(server, 'POST', p, { title: 'after' });
        assert.equal(ok.status, 200, `${p}: ${ok.text}`);
        assert.equal(ok.body.result, expected);
      }
    }
    assert.match(server.output, /hook worker exited/);
    await healthy(server);
  });

  it('a worker that stops answering (SIGSTOP) is killed after the limit plus a grace period and replaced', async () => {
    await eventually(() => workerPids(server).length === 3, 5000, 'two hook workers and their warm spare');
    const stopped = workerPids(server);
    for (const pid of stopped) process.kill(pid, 'SIGSTOP');
    try {
      const { value, ms } = await timed(() => call(server, 'POST', '/quick', { title: 'fine' }));
      assert.equal(value.status, 500, value.text);
      assert.equal(value.body.message, 'hook timed out: quick/post.js');
      // The stopped worker never answered it: it may have begun, so it fails rather than run twice.
      assert.ok(ms < 9000, `${ms.toFixed(0)} ms`);
      assert.equal((await call(server, 'POST', '/plain', { title: 'no hooks' })).status, 200);
    } finally {
      for (const pid of stopped) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // killed already
        }
      }
    }
    await eventually(() => {
      const now = workerPids(server);
      return now.length === 3 && now.some((pid) => !stopped.includes(pid));
    }, 5000, 'a replacement worker');
    for (let i = 0; i < 4; i++) {
      const ok = await call(server, 'POST', '/quick', { title: 'fine' });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.result, 'quick');
    }
    assert.match(server.output, /hook worker stopped answering/);
  });

  it('a syntax error is logged at load with file:line and fails closed; other events and collections work', async () => {
    assert.match(server.output, /broken\/post\.js.*:3/);
    const res = await call(server, 'POST', '/broken', { title: 'x' });
    assert.equal(res.status, 500, res.text);
    assert.match(res.body.message, /broken\/post\.js.*:3/);
    assert.ok(server.output.includes(res.body.message), 'the answer carries the logged message');
    const count = await call(server, 'GET', '/broken');
    assert.equal(count.status, 200, count.text);
    assert.equal((await call(server, 'POST', '/busy', { title: 'y' })).body.result, 'busy y');
    assert.equal((await call(server, 'POST', '/plain', { title: 'y' })).status, 200);
  });
});

// ---- tampering and escapes (one hook worker, so every request shares the same isolates) ----------

const TAMPER = `
if (data.title === 'tamper') {
  var attempts = {
    push: function () { Array.prototype.push = function () { return 'pwned'; }; },
    defineMap: function () { Object.defineProperty(Array.prototype, 'map', { value: function () { return 'pwned'; } }); },
    polluted: function () { Object.prototype.polluted = 1; },
    protoPolluted: function () { ({}).__proto__.polluted2 = 1; },
    parse: function () { JSON.parse = function () { return 'pwned'; }; },
    stringify: function () { JSON.stringify = function () { return '"pwned"'; }; },
    random: function () { Math.random = function () { return 4; }; },
    then: function () { Promise.prototype.then = function () { return 'pwned'; }; },
    trim: function () { String.prototype.trim = function () { return 'pwned'; }; },
    global: function () { globalThis.x = 1; },
    implicit: function () { leak = 1; },
    defineGlobal: function () { Object.defineProperty(globalThis, 'y', { value: 1 }); },
    callee: function () { attempts.self.stash = 'from an earlier request'; },
    calleePrototype: function () { attempts.self.prototype.stash = 'from an earlier request'; },
    regexp: function () { /password=(\\w+)/.exec('password=hunter2'); },
  };
  attempts.self = arguments.callee;
  var outcome = {};
  for (var k in attempts) if (k !== 'self') { try { attempts[k](); outcome[k] = 'no error'; } catch (e) { outcome[k] = String(e); } }
  data.meta = outcome;
  data.result = 'tampered';
} else {
  var seen = [];
  var list = [1];
  seen.push(2);
  data.meta = {
    push: list.push(3) === 2 && seen.length === 1,
    map: typeof [1].map(function (v) { return v; }) === 'object',
    polluted: typeof ({}).polluted + typeof ({}).polluted2,
    parse: JSON.parse('{"a":1}').a === 1,
    stringify: JSON.stringify({ a: 1 }) === '{"a":1}',
    random: Math.random() < 1,
    then: typeof Promise.resolve(1).then(function () {}) === 'object',
    trim: ' a '.trim() === 'a',
    x: typeof x + typeof globalThis.x,
    leak: typeof leak,
    y: typeof y,
    callee: typeof arguments.callee.stash + typeof arguments.callee.prototype.stash,
    regexp: String(RegExp.$1 || '') + String(RegExp.input || '') + String(RegExp.lastMatch || ''),
  };
  data.result = 'checked';
}
`;

const CLEAN_CHECK = {
  push: true, map: true, polluted: 'undefinedundefined', parse: true, stringify: true, random: true, then: true, trim: true,
  x: 'undefinedundefined', leak: 'undefined', y: 'undefined', callee: 'undefinedundefined', regexp: '',
};

// A PUT protects \`id\`: its accessor is shared by every PUT of the isolate (one per property name).
const GUARDED_PUT = `
var accessor = Object.getOwnPropertyDescriptor(this, 'id');
if (this.title === 'tamper') {
  var outcome = {};
  try { accessor.get.stash = 'from an earlier request'; outcome.get = 'no error'; } catch (e) { outcome.get = String(e); }
  try { accessor.set.stash = 'from an earlier request'; outcome.set = 'no error'; } catch (e) { outcome.set = String(e); }
  try { Object.defineProperty(accessor.get, 'stash2', { value: 1 }); outcome.define = 'no error'; } catch (e) { outcome.define = String(e); }
  this.meta = outcome;
} else {
  this.meta = { stash: typeof accessor.get.stash + typeof accessor.set.stash + typeof accessor.get.stash2, id: this.id, isAccessor: typeof accessor.get };
}
`;

const SPY = `
data.meta = { x: typeof x, leak: typeof leak, polluted: typeof ({}).polluted, secret: typeof secret, push: [].push(1) === 1 };
data.result = 'spied';
`;

const LEAKER = `
try { secret = data.title; } catch (e) {}
try { globalThis.secret2 = data.title; } catch (e) {}
try { Object.prototype.secret3 = data.title; } catch (e) {}
data.result = 'leaked';
`;

/** Escape attempts: each must throw (or be stopped), never hand back a host object. */
const ESCAPES: Record<string, string> = {
  process: 'return process.pid;',
  require: "return require('fs').readdirSync('/');",
  module: 'return module.exports;',
  exports: 'return exports;',
  globalProcess: 'return globalThis.process.env;',
  constructorConstructor: "return this.constructor.constructor('return process')().pid;",
  functionThis: "return Function('return this')().process.pid;",
  asyncFunction: "return (async function () {}).constructor('return process')();",
  generatorFunction: "return (function* () {}).constructor('return process')().next().value.pid;",
  importFs: "return import('fs').then(function (m) { return m.readdirSync('/'); });",
  importProcess: "return import('node:process').then(function (m) { return m.default.pid; });",
  setTimeout: 'return setTimeout(function () {}, 1);',
  setImmediate: 'return setImmediate(function () {});',
  queueMicrotask: 'return queueMicrotask(function () {});',
  fetch: "return fetch('http://127.0.0.1/');",
  XMLHttpRequest: 'return new XMLHttpRequest();',
  WebAssembly: 'return typeof WebAssembly.Memory;',
  SharedArrayBuffer: 'return new SharedArrayBuffer(Math.pow(2, 30)).byteLength;',
  // With a timeout, V8 posts a delayed task, which isolated-vm 5.0.4 answers by aborting the process.
  atomicsWaitAsync: 'return Atomics.waitAsync(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20).value;',
  eval: "return eval('process').pid;",
  indirectEval: "return (0, eval)('this').process.pid;",
  Buffer: "return Buffer.from('x');",
  global: 'return global.process;',
  ivm: "return _ivm || ivm || isolatedVm;",
  consoleHost: "return console.log.constructor('return process')();",
  dpdHost: "return dpd.plain.get.constructor('return process')();",
  errorStack: "Error.prepareStackTrace = function (e, frames) { return frames; }; return new Error('x').stack[0].getThis();",
};

function escapeHook(): string {
  const cases = Object.entries(ESCAPES).map(([name, body]) => `  ${JSON.stringify(name)}: function () { ${body} },`).join('\n');
  return `
var cases = {
${cases}
};
var self = this;
function show(v) {
  try { return typeof v + ' ' + JSON.stringify(v); } catch (e) { return typeof v + ' (not JSON)'; }
}
if (data.title === 'atomics') {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
} else {
  $addCallback();
  Promise.resolve()
    .then(function () { return cases[data.title].call(self); })
    .then(function (v) { data.result = 'value: ' + show(v); }, function (e) { data.result = 'threw: ' + (e && e.name) + ': ' + (e && e.message); })
    .then(function () { $finishCallback(); });
}
`;
}

describe('hostile hooks: tampering and escapes', () => {
  let server: TestServer;

  before(async () => {
    const app = makeApp(
      { tamper: collection(), spy: collection(), leaker: collection(), escape: collection({ timeoutMs: 300 }), plain: collection(), guarded: collection() },
      {
        'resources/guarded/put.js': GUARDED_PUT,
        'resources/tamper/post.js': TAMPER,
        'resources/spy/post.js': SPY,
        'resources/leaker/post.js': LEAKER,
        'resources/escape/post.js': escapeHook(),
      },
    );
    // One worker: the tampering request and the checking request run in the very same isolate.
    server = await startServer(app, { args: ['--hook-workers', '1'] });
  }, { timeout: 120_000 });

  after(async () => {
    await server?.stop();
  }, { timeout: 60_000 });

  it('tampering with built-ins, globals or the hook function does not affect the next request', async () => {
    const clean = await call(server, 'POST', '/tamper', { title: 'check' });
    assert.equal(clean.status, 200, clean.text);
    assert.deepEqual(clean.body.meta, CLEAN_CHECK, 'baseline');
    for (let round = 0; round < 2; round++) {
      const tampered = await call(server, 'POST', '/tamper', { title: 'tamper' });
      assert.equal(tampered.status, 200, tampered.text);
      assert.equal(tampered.body.result, 'tampered');
      const after = await call(server, 'POST', '/tamper', { title: 'check' });
      assert.equal(after.status, 200, after.text);
      assert.deepEqual(after.body.meta, CLEAN_CHECK, `after tampering: ${JSON.stringify(tampered.body.meta)}`);
    }
  });

  it('a protected property\'s accessor (shared by the isolate\'s PUTs) keeps nothing from one request for the next', async () => {
    const created = await call(server, 'POST', '/guarded', { title: 'doc' });
    assert.equal(created.status, 200, created.text);
    const id = created.body.id;
    const tampered = await call(server, 'PUT', `/guarded/${id}`, { title: 'tamper' });
    assert.equal(tampered.status, 200, tampered.text);
    // Sloppy-mode assignments to a frozen function fail silently; defineProperty throws.
    assert.match(tampered.body.meta.define, /TypeError/, JSON.stringify(tampered.body.meta));
    const checked = await call(server, 'PUT', `/guarded/${id}`, { title: 'check' });
    assert.equal(checked.status, 200, checked.text);
    assert.deepEqual(checked.body.meta, { stash: 'undefinedundefinedundefined', id, isAccessor: 'function' });
  });

  it('collections are isolated: state set in one collection\'s hook is invisible in another\'s', async () => {
    const leaked = await call(server, 'POST', '/leaker', { title: 'top secret' });
    assert.equal(leaked.status, 200, leaked.text);
    const spied = await call(server, 'POST', '/spy', { title: 'x' });
    assert.equal(spied.status, 200, spied.text);
    assert.deepEqual(spied.body.meta, { x: 'undefined', leak: 'undefined', polluted: 'undefined', secret: 'undefined', push: true });
    assert.ok(!spied.text.includes('top secret'));
  });

  for (const name of Object.keys(ESCAPES)) {
    it(`escape attempt "${name}" does not reach the host`, async () => {
      const res = await call(server, 'POST', '/escape', { title: name });
      assert.equal(res.status, 200, res.text);
      assert.match(res.body.result, /^threw: /, `${name} answered ${res.body.result}`);
      assert.equal(server.proc.exitCode, null);
    });
  }

  it('Atomics.wait blocking forever is stopped by the time limit', async () => {
    const { value, ms } = await timed(() => call(server, 'POST', '/escape', { title: 'atomics' }));
    assert.equal(value.status, 500, value.text);
    assert.equal(value.body.message, 'hook timed out: escape/post.js');
    assert.ok(ms < 5000, `${ms.toFixed(0)} ms`); // the limit ends it (a hang would run to the 15 s client deadline)
    assert.equal((await call(server, 'POST', '/escape', { title: 'process' })).status, 200);
    await healthy(server);
  });
});

// ---- hot reload under load -----------------------------------------------------------------------

function versioned(v: number): string {
  // Two dpd round trips, so the invocation is in flight (waiting on the server) most of the time.
  return `
dpd.plain.get({ $limit: 1 }, function () {
  dpd.plain.get({ $limit: 1 }, function () { data.result = 'v${v}'; });
});
`;
}

describe('hot reload of hook files', () => {
  let server: TestServer;
  let app: string;

  before(async () => {
    app = makeApp({ hot: collection({ timeoutMs: 2000 }), plain: collection() }, { 'resources/hot/post.js': versioned(0) });
    server = await startServer(app);
    assert.equal((await call(server, 'POST', '/plain', { title: 'seed' })).status, 200);
  }, { timeout: 120_000 });

  after(async () => {
    await server?.stop();
  }, { timeout: 60_000 });

  it('rewriting a hook file under a steady stream of requests applies without restart and fails none', async () => {
    const file = path.join(app, 'resources', 'hot', 'post.js');
    const first = await call(server, 'POST', '/hot', { title: 'x' });
    assert.equal(first.body.result, 'v0');
    const VERSIONS = 6;
    let stop = false;
    const answers: ApiResponse[] = [];
    const client = async () => {
      for (let i = 0; i < 2000 && !stop; i++) answers.push(await call(server, 'POST', '/hot', { title: 'x' }));
    };
    const clients = Promise.all([client(), client(), client()]);
    try {
      // Paced by answers, not by a clock: at least 9 requests answered before each rewrite, whatever the load.
      for (let v = 1; v <= VERSIONS; v++) {
        await eventually(() => answers.length >= 9 * v, 30_000, `9 more answers before rewrite ${v}`);
        fs.writeFileSync(file, versioned(v));
      }
      await eventually(async () => (await call(server, 'POST', '/hot', { title: 'x' })).body?.result === `v${VERSIONS}`, 20_000, 'the last version to apply');
    } finally {
      stop = true;
      await clients;
    }
    assert.ok(answers.length >= 50, `${answers.length} requests during the rewrites`);
    const failed = answers.filter((r) => r.status !== 200);
    assert.deepEqual(failed.map((r) => r.text), [], 'no request failed during the swaps');
    const seen = new Set(answers.map((r) => r.body.result));
    for (const result of seen) assert.match(result, /^v[0-6]$/);
    assert.ok(seen.size >= 3, `several versions were served: ${[...seen].join(', ')}`);
    await healthy(server);
  });
  it('adding and removing hook files under load applies without restart and fails none', async () => {
    const validate = path.join(app, 'resources', 'hot', 'validate.js');
    let stop = false;
    const answers: ApiResponse[] = [];
    const client = async () => {
      for (let i = 0; i < 150 && !stop; i++) answers.push(await call(server, 'POST', '/hot', { title: 'x' }));
    };
    const clients = Promise.all([client(), client()]);
    for (let round = 0; round < 4; round++) {
      await sleep(100);
      fs.writeFileSync(validate, "this.checked = 'yes';\n");
      await eventually(async () => (await call(server, 'POST', '/hot', { title: 'x' })).body?.checked === 'yes', 5000, 'validate.js to apply');
      fs.rmSync(validate);
      await eventually(async () => (await call(server, 'POST', '/hot', { title: 'x' })).body?.checked === undefined, 5000, 'validate.js to go away');
    }
    stop = true;
    await clients;
    const failed = answers.filter((r) => r.status !== 200);
    assert.deepEqual(failed.map((r) => r.text), [], 'no request failed while hook files came and went');
    assert.ok(answers.some((r) => r.body.checked === 'yes') && answers.some((r) => r.body.checked === undefined));
    await healthy(server);
  });
});
