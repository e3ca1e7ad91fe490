/**
 * JavaScript hook costs (issue #19), in one run:
 *
 * 0. The isolate call alone: the sandbox runtime's `start` for a trivial validate.js (classic and
 *    go-deployd `Run(context)` style, POST and PUT), called with applySync in this process, as a
 *    hook worker does: the JavaScript work per invocation, without IPC.
 * 1. The host call path alone: the real JsHookRunner (worker processes, isolated-vm) called in
 *    this process with a trivial validate EventContext, one call at a time: per-call p50/p99.
 * 2. Over HTTP, paired, beside its floor: one bin/deployd server with two collections of the same
 *    schema, `plain` (no hook) and `hooked` (a trivial validate.js), and the floor
 *    (bench/baseline-hook-server.js: bare fastify + better-sqlite3 + one forked isolated-vm child,
 *    the same two routes). POSTs go plain, hooked to each server in turn, one keep-alive connection
 *    per server, so all four see the same machine load; added p50/p99 = hooked − plain.
 * 3. Memory: RSS and PSS of each server and of its hook processes (/proc/<pid>/smaps_rollup) once
 *    started, deployd-ts's again after the traffic, and its isolates' heaps as `/metrics` reports them.
 *
 *   node --no-node-snapshot bench/js-hooks.js     (after npx tsc -p .)
 * run.js runs it too (BENCH_ONLY=jshook selects only it). Timing is reported, never asserted.
 * Env: BENCH_JS_REQUESTS requests per side (default 4000), BENCH_JS_CALLS host calls (default 5000).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { baselineHook, deployd } from './targets.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const REQUESTS = Number(process.env.BENCH_JS_REQUESTS ?? 4000);
const CALLS = Number(process.env.BENCH_JS_CALLS ?? 5000);
const GOALS = { httpP50AddedMs: 0.1, startRssMb: 120 };
const METRICS_TOKEN = 'bench-metrics-token';

const SCHEMA = {
  type: 'Collection',
  properties: { title: { type: 'string', required: true }, priority: { type: 'number' } },
};
const VALIDATE_JS = "if (!this.title) error('title', 'is required');\n";
const BODY = JSON.stringify({ title: 'bench', priority: 3 });

const quiet = { debug() {}, info() {}, warn() {}, error() {}, trace() {}, fatal() {}, child() { return quiet; } };

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summary(times) {
  const sorted = [...times].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), n: sorted.length };
}

const ms = (n) => n.toFixed(3);

/** µs per `start()` call into an isolate set up as src/hooks/js/worker.ts does (without its IPC). */
async function isolateCalls() {
  const { default: ivm } = await import('isolated-vm');
  const dist = (file) => import(pathToFileURL(path.join(ROOT, 'dist', 'src', 'hooks', ...file.split('/'))).href);
  const { sandboxRuntime } = await dist('js/sandbox-runtime.js');
  const { HOOK_PARAMS, wrapHookSource } = await dist('hook-params.js');
  const isolate = new ivm.Isolate({ memoryLimit: 64 });
  try {
    const context = isolate.createContextSync();
    const ignored = () => new ivm.Callback(() => {}, { ignored: true });
    const factory = isolate.compileScriptSync(`(${sandboxRuntime.toString()})`).runSync(context, { reference: true });
    const runtime = factory.applySync(undefined, [JSON.stringify(HOOK_PARAMS), ignored(), ignored()], { result: { reference: true } });
    const start = runtime.getSync('start', { reference: true });
    const register = runtime.getSync('register', { reference: true });
    const sources = { classic: VALIDATE_JS, 'Run(context)': "function Run(context) { if (!context.data.title) context.error('title', 'is required'); }\n" };
    const rows = [];
    let inv = 1;
    for (const [style, source] of Object.entries(sources)) {
      const fn = isolate.compileScriptSync(wrapHookSource('validate', source), { filename: 'todos/validate.js', lineOffset: -1 }).runSync(context, { reference: true });
      register.applySync(undefined, ['validate', fn.derefInto(), 'todos/validate.js']);
      for (const method of ['POST', 'PUT']) {
        const ctxJson = JSON.stringify({
          collection: 'todos', event: 'validate', method, requestEvent: method, data: { id: 'a1', ...JSON.parse(BODY) }, previous: method === 'PUT' ? { id: 'a1', title: 'old' } : null,
          query: {}, caller: { isRoot: false, me: null }, internal: false, requestId: 'bench', success: false, url: '/todos', body: JSON.parse(BODY),
        });
        const names = JSON.stringify(['todos', 'users']);
        const call = () => start.applySync(undefined, [inv++, 'validate', ctxJson, names], { timeout: 1000 });
        for (let i = 0; i < 3000; i++) call();
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < CALLS; i++) call();
        rows.push({ label: `${style}, ${method}`, us: Number(process.hrtime.bigint() - t0) / CALLS / 1000 });
      }
    }
    return rows;
  } finally {
    isolate.dispose();
  }
}

/** The host call path: JsHookRunner.run on a loaded validate.js, in this process. */
async function hostCalls() {
  const { JsHookRunner } = await import(pathToFileURL(path.join(ROOT, 'dist', 'src', 'hooks', 'js', 'js-runner.js')).href);
  const runner = new JsHookRunner(Number(process.env.BENCH_JS_WORKERS ?? 2), quiet);
  try {
    const errors = await runner.load('todos', [{ event: 'validate', file: 'todos/validate.js', source: VALIDATE_JS }], { timeoutMs: 1000, memoryMb: 64 });
    if (Object.keys(errors).length) throw new Error(`validate.js did not load: ${JSON.stringify(errors)}`);
    const ctx = {
      collection: 'todos', event: 'validate', method: 'POST', requestEvent: 'POST', data: JSON.parse(BODY), previous: null, query: {},
      caller: { isRoot: false, me: null }, internal: false, requestId: 'bench', success: false,
    };
    const call = async () => {
      const res = await runner.run(ctx);
      if (res.cancel || Object.keys(res.errors).length) throw new Error(`unexpected hook result ${JSON.stringify(res)}`);
    };
    for (let i = 0; i < 1000; i++) await call();
    const times = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = process.hrtime.bigint();
      await call();
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    // Throughput with 16 calls in flight.
    const t0 = process.hrtime.bigint();
    let done = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (done < CALLS) {
        done++;
        await call();
      }
    }));
    const callsPerSecond = CALLS / (Number(process.hrtime.bigint() - t0) / 1e9);
    return { ...summary(times), callsPerSecond };
  } finally {
    await runner.close();
  }
}

/** One POST on a keep-alive agent; resolves its latency in ms. */
function post(agent, url, collection) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(`${url}/${collection}`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) } }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`POST /${collection} answered ${res.statusCode}`));
        else resolve(Number(process.hrtime.bigint() - t0) / 1e6);
      });
    });
    req.on('error', reject);
    req.end(BODY);
  });
}

/** RSS and PSS (shared pages, e.g. the node binary, split between the processes sharing them) in MiB. */
function memoryMb(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    return { rss: kb('Rss') / 1024, pss: kb('Pss') / 1024 };
  } catch {
    return { rss: NaN, pss: NaN };
  }
}

/** The server's and its hook workers' memory. */
function footprint(pid) {
  return { server: memoryMb(pid), workers: children(pid).map(memoryMb) };
}

/** Direct children of `pid` (the hook workers). */
function children(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The hook-related lines of /metrics. */
async function hookMetrics(url) {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  const text = await res.text();
  return text.split('\n').filter((line) => line.startsWith('dpd_hook_worker') || line.startsWith('dpd_hook_isolate'));
}

/**
 * deployd-ts and the floor (bench/baseline-hook-server.js) started side by side; each one's memory
 * is read before any request. Then every round sends plain and hooked POSTs to both, on one
 * keep-alive connection per server, rotating the order, so both see the same machine load.
 */
async function overHttp() {
  const ours = await deployd({ plain: SCHEMA, hooked: SCHEMA }, { label: 'deployd-ts', env: { METRICS_TOKEN }, files: { 'resources/hooked/validate.js': VALIDATE_JS } }).start();
  let floor;
  try {
    floor = await baselineHook().start();
    // At start: each server and its hook process(es), before any request.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const start = { ours: footprint(ours.pid), floor: footprint(floor.pid) };
    // One keep-alive connection per server, shared by its two collections.
    const agents = { ours: new http.Agent({ keepAlive: true, maxSockets: 1 }), floor: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
    const sides = [
      { name: 'ours', server: ours, collection: 'plain' },
      { name: 'ours', server: ours, collection: 'hooked' },
      { name: 'floor', server: floor, collection: 'plain' },
      { name: 'floor', server: floor, collection: 'hooked' },
    ].map((side) => ({ ...side, times: [] }));
    const send = (side) => post(agents[side.name], side.server.url, side.collection);
    for (let i = 0; i < 500; i++) for (const side of sides) await send(side);
    for (let i = 0; i < REQUESTS; i++) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(i + k) % sides.length];
        side.times.push(await send(side));
      }
    }
    for (const agent of Object.values(agents)) agent.destroy();
    ours.check();
    floor.check();
    const after = footprint(ours.pid);
    const metrics = await hookMetrics(ours.url).catch(() => []);
    const timesOf = (name, collection) => summary(sides.find((s) => s.name === name && s.collection === collection).times);
    return {
      plain: timesOf('ours', 'plain'), hooked: timesOf('ours', 'hooked'),
      floorPlain: timesOf('floor', 'plain'), floorHooked: timesOf('floor', 'hooked'),
      start, after, metrics,
    };
  } finally {
    await floor?.stop();
    await ours.stop();
  }
}

export async function jsHookBench() {
  const load = os.loadavg().map((n) => n.toFixed(2)).join(' ');
  const lines = [`## JavaScript hooks (bench/js-hooks.js), ${new Date().toISOString()}, load ${load}`, ''];
  const isolate = await isolateCalls();
  lines.push('| isolate call, in process (the runtime\'s start() for validate.js) | µs per call |', '|---|---:|');
  for (const row of isolate) lines.push(`| ${row.label} | ${row.us.toFixed(1)} |`);
  lines.push('');
  const host = await hostCalls();
  lines.push('| host call path (JsHookRunner.run, trivial validate.js) | p50 ms | p99 ms | calls/s, 16 in flight |', '|---|---:|---:|---:|');
  lines.push(`| one call at a time, ${host.n} calls | ${ms(host.p50)} | ${ms(host.p99)} | ${Math.round(host.callsPerSecond)} |`, '');
  const web = await overHttp();
  const added = (hooked, plain) => ({ p50: hooked.p50 - plain.p50, p99: hooked.p99 - plain.p99 });
  const ourAdded = added(web.hooked, web.plain);
  const floorAdded = added(web.floorHooked, web.floorPlain);
  lines.push('| POST, one connection per server, both servers in turn | deployd-ts p50 / p99 ms | floor p50 / p99 ms |', '|---|---:|---:|');
  lines.push(`| plain (no hook), ${web.plain.n} requests each | ${ms(web.plain.p50)} / ${ms(web.plain.p99)} | ${ms(web.floorPlain.p50)} / ${ms(web.floorPlain.p99)} |`);
  lines.push(`| hooked (validate.js), ${web.hooked.n} requests each | ${ms(web.hooked.p50)} / ${ms(web.hooked.p99)} | ${ms(web.floorHooked.p50)} / ${ms(web.floorHooked.p99)} |`);
  lines.push(`| **added by the hook** (goal p50 ≤ ${GOALS.httpP50AddedMs}) | **${ms(ourAdded.p50)}** / ${ms(ourAdded.p99)} | **${ms(floorAdded.p50)}** / ${ms(floorAdded.p99)} |`, '');
  lines.push('Floor: bench/baseline-hook-server.js, bare fastify + better-sqlite3 sending each hooked POST over IPC to one forked isolated-vm child (no pool, sandbox API or watchdog).', '');
  lines.push(`| memory MiB (RSS / PSS) | server | hook processes | total RSS | total PSS |`, '|---|---:|---:|---:|---:|');
  const row = (label, m) => {
    const sum = (key) => m.server[key] + m.workers.reduce((a, w) => a + w[key], 0);
    const workers = m.workers.map((w) => `${w.rss.toFixed(1)} / ${w.pss.toFixed(1)}`).join(' + ') || 'none';
    return `| ${label} | ${m.server.rss.toFixed(1)} / ${m.server.pss.toFixed(1)} | ${workers} | ${sum('rss').toFixed(1)} | ${sum('pss').toFixed(1)} |`;
  };
  lines.push(
    row(`deployd-ts at start (goal ≤ ${GOALS.startRssMb} RSS)`, web.start.ours),
    row('floor at start', web.start.floor),
    row(`deployd-ts after ${4 * (REQUESTS + 500)} POSTs to both`, web.after),
    '',
  );
  if (web.metrics.length) lines.push('```', ...web.metrics, '```', '');
  const text = lines.join('\n');
  console.log(text);
  return text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  jsHookBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
