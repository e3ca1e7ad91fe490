/**
 * Go hook costs (issue #5), in one run:
 *
 * 1. The host call path alone: the real GoHookRunner (built program, go-plugin sidecar, gRPC over
 *    a unix socket, AutoMTLS on as by default, and off for comparison) called in this process
 *    with a validate EventContext: per-call p50/p99 one call at a time, and calls/s with
 *    BENCH_GO_INFLIGHT calls in flight (default 16). Overhead vs no hook is the whole call.
 * 2. Over HTTP: the same POST /todos against three bin/deployd servers, one at a time: no hooks,
 *    validate.js and validate.go with the same logic. Per-request p50/p99 with one connection
 *    (overhead = with hook − no hook, same run) and throughput with BENCH_CONNECTIONS.
 *
 *   node --no-node-snapshot bench/go-hooks.js     (after npx tsc -p .; Go on PATH)
 * run.js runs it too (BENCH_ONLY=go selects only it). Timing is reported, never asserted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { deployd } from './targets.js';

// Go from its standard place when it is not on PATH (the servers started here inherit PATH).
if (fs.existsSync('/usr/local/go/bin/go') && !(process.env.PATH ?? '').split(path.delimiter).includes('/usr/local/go/bin')) {
  process.env.PATH = `/usr/local/go/bin${path.delimiter}${process.env.PATH ?? ''}`;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const INFLIGHT = Number(process.env.BENCH_GO_INFLIGHT ?? 16);
// Host call goals (issue #5), and the HTTP goals of issue #15: a trivial validate.go adds at most
// 0.4 ms p50 over no hooks and keeps at least 0.75× the no-hook req/s, measured side by side.
const GOALS = { p50: 0.35, p99: 1.5, callsPerSecond: 5000, httpP50Added: 0.4, httpRpsRatio: 0.75 };

const TODOS = {
  type: 'Collection',
  timestamps: true,
  properties: { title: { type: 'string', required: true }, priority: { type: 'number', index: true }, status: { type: 'string', index: true } },
};
const VALIDATE_JS = "if (!this.title) error('title', 'is required');\n";
const VALIDATE_GO = `func Run(ctx *EventContext) error {
	if title, _ := ctx.Data["title"].(string); title == "" {
		ctx.Error("title", "is required")
	}
	return nil
}
`;
const BODY = JSON.stringify({ title: 'bench', priority: 3, status: 'open' });

const quiet = { debug() {}, info() {}, warn() {}, error() {}, trace() {}, fatal() {}, child() { return quiet; } };

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** The host call path: GoHookRunner.run on a built validate.go, in this process. */
async function hostCalls(autoMTLS) {
  const { GoHookRunner } = await import(pathToFileURL(path.join(ROOT, 'dist', 'src', 'hooks', 'go', 'go-runner.js')).href);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-gobench-'));
  const runner = new GoHookRunner({ buildDir: path.join(dir, 'build'), socketDir: dir, log: quiet, autoMTLS, buildWaitMs: 600_000 });
  try {
    const errors = await runner.load('todos', [{ event: 'validate', file: 'todos/validate.go', source: VALIDATE_GO }], { timeoutMs: 2000, memoryMb: 64 });
    if (Object.keys(errors).length) throw new Error(`validate.go did not load: ${JSON.stringify(errors)}`);
    await runner.settled();
    const ctx = {
      collection: 'todos', event: 'validate', method: 'POST', requestEvent: 'POST', data: JSON.parse(BODY), previous: null, query: {},
      caller: { isRoot: false, me: null }, internal: false, requestId: 'bench', success: false,
    };
    const call = async () => {
      const res = await runner.run(ctx);
      if (res.cancel || Object.keys(res.errors).length) throw new Error(`unexpected hook result ${JSON.stringify(res)}`);
    };
    // One at a time: the latency of one hook call.
    const until = (s) => Date.now() + s * 1000;
    for (let end = until(WARMUP); Date.now() < end;) await call();
    const times = [];
    for (let end = until(DURATION); Date.now() < end;) {
      const t0 = process.hrtime.bigint();
      await call();
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    // Many in flight: what one instance can push through.
    let calls = 0;
    const end = until(DURATION);
    const t0 = Date.now();
    await Promise.all(Array.from({ length: INFLIGHT }, async () => {
      while (Date.now() < end) {
        await call();
        calls++;
      }
    }));
    return { p50: percentile(times, 0.5), p99: percentile(times, 0.99), sequentialPerSecond: times.length / DURATION, callsPerSecond: calls / ((Date.now() - t0) / 1000) };
  } finally {
    await runner.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function cannon(url, connections, seconds) {
  const latencies = [];
  const instance = autocannon({ url: `${url}/todos`, method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY, connections, duration: seconds });
  instance.on('response', (_c, _s, _b, ms) => latencies.push(ms));
  const result = await instance;
  if (result.errors || result.timeouts || result.non2xx) throw new Error(`POST /todos: ${JSON.stringify({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx })}`);
  latencies.sort((a, b) => a - b);
  return { rps: result.requests.average, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

async function http(label, files) {
  const server = await deployd({ todos: TODOS }, { label, files }).start();
  try {
    // The first request waits for a Go build (the server builds in the background).
    for (let i = 0; ; i++) {
      const res = await fetch(`${server.url}/todos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
      const text = await res.text();
      if (res.ok) break;
      if (res.status !== 503 || i > 600) throw new Error(`${label}: POST /todos answered ${res.status}: ${text}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    await cannon(server.url, 1, WARMUP);
    const sequential = await cannon(server.url, 1, DURATION);
    server.check();
    const loaded = await cannon(server.url, CONNECTIONS, DURATION);
    server.check();
    return { sequential, loaded };
  } finally {
    await server.stop();
  }
}

const ms = (v) => `${v.toFixed(3)} ms`;
const n = (v) => Math.round(v).toLocaleString('en-US');
const met = (ok) => (ok ? 'met' : 'missed');

/** Runs everything; resolves Markdown lines. */
export async function goHookBench() {
  const lines = ['', '## Go hooks (bench/go-hooks.js)', ''];
  const mtls = await hostCalls(true);
  const plain = await hostCalls(false);
  lines.push(
    `Host call path: GoHookRunner.run → go-plugin sidecar (gRPC, unix socket), validate.go, in the harness process; latency one call at a time, throughput with ${INFLIGHT} in flight.`,
    '',
    '| channel | p50 / p99 per call | calls/s, one at a time | calls/s, in flight | goal | goal met |',
    '|---|---:|---:|---:|---|---|',
    `| AutoMTLS (default) | ${ms(mtls.p50)} / ${ms(mtls.p99)} | ${n(mtls.sequentialPerSecond)} | ${n(mtls.callsPerSecond)} | p50 ≤ ${GOALS.p50} ms, p99 ≤ ${GOALS.p99} ms, ≥ ${n(GOALS.callsPerSecond)}/s | ${met(mtls.p50 <= GOALS.p50)} / ${met(mtls.p99 <= GOALS.p99)} / ${met(mtls.callsPerSecond >= GOALS.callsPerSecond)} |`,
    `| plain text (DEPLOYD_GO_AUTOMTLS=off) | ${ms(plain.p50)} / ${ms(plain.p99)} | ${n(plain.sequentialPerSecond)} | ${n(plain.callsPerSecond)} | same | ${met(plain.p50 <= GOALS.p50)} / ${met(plain.p99 <= GOALS.p99)} / ${met(plain.callsPerSecond >= GOALS.callsPerSecond)} |`,
  );
  const none = await http('no hooks', {});
  const js = await http('validate.js', { 'resources/todos/validate.js': VALIDATE_JS });
  const go = await http('validate.go', { 'resources/todos/validate.go': VALIDATE_GO });
  const row = (label, r) => `| ${label} | ${ms(r.sequential.p50)} / ${ms(r.sequential.p99)} | ${r === none ? '–' : `${ms(r.sequential.p50 - none.sequential.p50)} / ${ms(r.sequential.p99 - none.sequential.p99)}`} | ${n(r.loaded.rps)} | ${(r.loaded.rps / none.loaded.rps).toFixed(2)}× | ${ms(r.loaded.p50)} / ${ms(r.loaded.p99)} |`;
  lines.push(
    '',
    `Over HTTP: POST /todos on bin/deployd, same logic in validate.js and validate.go; one connection for per-request latency, ${CONNECTIONS} for throughput.`,
    '',
    '| hooks | p50 / p99, 1 connection | overhead vs no hooks (p50 / p99) | req/s | vs no hooks | p50 / p99 loaded |',
    '|---|---:|---:|---:|---:|---:|',
    row('none', none),
    row('validate.js (isolated-vm)', js),
    row('validate.go (sidecar, AutoMTLS)', go),
    '',
    `Go hook overhead goals (HTTP): p50 added ≤ ${GOALS.httpP50Added} ms: ${met(go.sequential.p50 - none.sequential.p50 <= GOALS.httpP50Added)} (${ms(go.sequential.p50 - none.sequential.p50)}); ` +
      `req/s ≥ ${GOALS.httpRpsRatio}× no hooks: ${met(go.loaded.rps / none.loaded.rps >= GOALS.httpRpsRatio)} (${(go.loaded.rps / none.loaded.rps).toFixed(2)}×).`,
  );
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  goHookBench().then(
    (lines) => process.stdout.write(lines.join('\n') + '\n'),
    (err) => {
      process.stderr.write(`bench/go-hooks: ${err.stack ?? err}\n`);
      process.exitCode = 1;
    },
  );
}
