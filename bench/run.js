/**
 * Benchmark harness: each scenario runs against deployd-ts and against a raw baseline in the same
 * run, one server at a time (child processes; autocannon runs here), and prints a Markdown table
 * with throughput ratios, p50/p99 latency and the server's CPU time per request (utime + stime from
 * /proc over the measured seconds ÷ answers: it holds on a busy machine where req/s does not). Scenarios that declare `metrics` (the real-time ones)
 * get a second table, one row per metric. The tables also go to bench/results/latest.md.
 *
 *   npm run bench            (build first: npx tsc -p .)
 * Env: BENCH_DURATION seconds measured per side (default 5), BENCH_WARMUP seconds (default 2),
 *      BENCH_CONNECTIONS (default 10), BENCH_SEED documents seeded for read scenarios (default 2000),
 *      BENCH_ROUNDS (default 1; each round measures ours then the baseline again, and the table
 *      shows medians: on a shared 2-core machine one round can be off by ±20%),
 *      BENCH_ONLY substring(s) to pick scenarios by name (comma-separated: any of them; `=name`
 *      picks exactly that one; `go` picks the Go hook bench, bench/go-hooks.js, and `jshook` the
 *      JavaScript hook bench, bench/js-hooks.js; both also run when BENCH_ONLY is unset),
 *      BENCH_CPU_PROF=DIR: servers write V8 CPU profiles there (see targets.js);
 *      BENCH_BUILD=DIR: run deployd-ts from that copy of dist/ (before/after runs, targets.js);
 *      real-time sizes (scenarios.js): BENCH_WS_EVENTS, BENCH_WS_SUBSCRIBERS, BENCH_WS_FANOUT,
 *      BENCH_WS_IDLE.
 * Exits non-zero when a server fails to start or dies, or when any request errors, times out or
 * answers non-2xx, or an event is not delivered. Timing is reported, never asserted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { goHookBench } from './go-hooks.js';
import { jsHookBench } from './js-hooks.js';
import { scenarios } from './scenarios.js';

const DURATION = positive('BENCH_DURATION', 5);
const WARMUP = positive('BENCH_WARMUP', 2);
const CONNECTIONS = positive('BENCH_CONNECTIONS', 10, true);
const ROUNDS = positive('BENCH_ROUNDS', 1, true);
const GOAL = 0.6; // the issue's target: at least 0.6x the baseline's throughput
const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'latest.md');

function positive(name, fallback, integer = false) {
  const value = Number(process.env[name] ?? fallback);
  if (!(value > 0) || (integer && !Number.isInteger(value))) throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}`);
  return value;
}

/**
 * Starts a target, prepares it, warms it up (unless `warmup: false`: e.g. memory, where a warm-up
 * would leave freed memory to reuse), measures; always stops it.
 */
async function measure(target, scenario) {
  const server = await target.start();
  try {
    await scenario.setup?.(server.url);
    if (scenario.request) await probe(server.url, scenario);
    const drive = scenario.load ?? ((url, seconds, server) => load(url, scenario.request, seconds, server));
    if (scenario.warmup !== false) await drive(server.url, WARMUP, server); // JIT, page cache, statement caches
    server.check();
    const result = await drive(server.url, DURATION, server);
    server.check();
    return result;
  } catch (err) {
    // A driver error caused by the server dying (reset connections) should say so; the child's
    // exit can be reported a moment after the connections drop.
    await new Promise((resolve) => setTimeout(resolve, 300));
    try {
      server.check();
    } catch (died) {
      throw new Error(`${err.message}\n${died.message}`);
    }
    throw err;
  } finally {
    await server.stop();
  }
}

/** One request up front: a clear error message beats a table full of non-2xx counts. */
async function probe(url, { request, verify }) {
  const res = await fetch(url + request.path, { method: request.method, headers: request.headers, body: request.body });
  const text = await res.text();
  if (!res.ok) throw new Error(`${request.method} ${request.path} answered ${res.status}: ${text.slice(0, 300)}`);
  if (verify && !verify(JSON.parse(text))) throw new Error(`${request.method} ${request.path}: unexpected answer ${text.slice(0, 300)}`);
}

/**
 * Runs autocannon and fails on any error, timeout or non-2xx answer. Latency percentiles come from
 * the per-response times (float ms): autocannon's own histogram has 1 ms buckets, too coarse here.
 */
async function load(url, request, seconds, server) {
  const latencies = [];
  const cpuBefore = server ? cpuTicks(server.pid) : undefined;
  const instance = autocannon({
    url: url + request.path,
    method: request.method,
    headers: request.headers,
    body: request.body,
    connections: CONNECTIONS,
    duration: seconds,
  });
  instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  const result = await instance;
  const bad = { errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx };
  if (Object.values(bad).some((n) => n > 0)) {
    const codes = Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => `${code}×${count}`).join(' ');
    throw new Error(`${request.method} ${request.path}: ${JSON.stringify(bad)}, status codes ${codes}`);
  }
  if (latencies.length === 0) throw new Error(`${request.method} ${request.path}: no responses in ${seconds} s`);
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  const cpuAfter = server ? cpuTicks(server.pid) : undefined;
  // The server's CPU per answer holds on a busy machine where req/s swings with the load.
  const cpuUs = cpuBefore !== undefined && cpuAfter !== undefined ? ((cpuAfter - cpuBefore) * TICK_US) / latencies.length : NaN;
  return { rps: result.requests.average, p50: at(0.5), p99: at(0.99), cpuUs };
}

/** Linux clock ticks per second (USER_HZ): 100 on every mainstream kernel. */
const TICK_US = 1e6 / 100;

/** utime + stime of a process, in clock ticks (/proc/<pid>/stat); undefined off Linux. */
function cpuTicks(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** Per-metric median over rounds (every numeric key); `info` notes come from the last round. */
function medians(runs) {
  const median = (key) => {
    const sorted = runs.map((r) => r[key]).sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  const result = {};
  for (const [key, value] of Object.entries(runs[0])) result[key] = typeof value === 'number' ? median(key) : runs.at(-1)[key];
  return result;
}

const latency = (r) => `${r.p50.toFixed(2)} / ${r.p99.toFixed(2)} ms`;
const rps = (r) => Math.round(r.rps).toLocaleString('en-US');
const cpuPerRequest = (ours, base) => (Number.isFinite(ours.cpuUs) && Number.isFinite(base.cpuUs) ? `${Math.round(ours.cpuUs)} / ${Math.round(base.cpuUs)}` : 'n/a');

/**
 * Rows of the metrics table for one scenario. A metric is
 *   { label, unit, keys: [key, ...], goals?: [{ max } | { min } | null, ...] }
 * (several keys share a row, e.g. p50 / p99); goals apply to deployd-ts's value, printed as met or
 * missed and never asserted.
 */
function metricRows(scenario, ours, base) {
  return scenario.metrics.map((metric, i) => {
    const show = (r) => `${metric.keys.map((k) => formatValue(r[k], metric.unit)).join(' / ')} ${metric.unit}`;
    const ratio = metric.keys.map((k) => `${(ours[k] / base[k]).toFixed(2)}×`).join(' / ');
    const goals = metric.goals ?? [];
    const goal = goals.some(Boolean)
      ? `${goals.map((g) => (g ? (g.max !== undefined ? `≤ ${formatValue(g.max, metric.unit)}` : `≥ ${formatValue(g.min, metric.unit)}`) : '–')).join(' / ')} ${metric.unit}`
      : '';
    const met = goals.some(Boolean)
      ? goals.map((g, j) => (!g ? '–' : (g.max !== undefined ? ours[metric.keys[j]] <= g.max : ours[metric.keys[j]] >= g.min) ? 'met' : 'missed')).join(' / ')
      : '';
    return [i === 0 ? scenario.name : '', metric.label, show(ours), show(base), ratio, goal, met];
  });
}

function formatValue(value, unit) {
  if (unit === 'ms' || unit === 'µs') return value.toFixed(2);
  if (unit === 'KiB' || unit === 'MiB') return value.toFixed(1);
  if (unit === '%') return value.toFixed(0);
  return Math.round(value).toLocaleString('en-US');
}

const markdown = (cells) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;

async function main() {
  // Other work on the machine skews both sides unevenly; the load average makes that visible.
  const loadBefore = os.loadavg()[0].toFixed(2);
  const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);
  // `=name` picks exactly that scenario (`POST /todos` alone would also pick its MongoDB twin).
  const selected = scenarios.filter((s) => !only?.length || only.some((o) => (o.startsWith('=') ? s.name === o.slice(1) : s.name.includes(o))));
  const goHooks = !only?.length || only.includes('go'); // bench/go-hooks.js
  const jsHooks = !only?.length || only.includes('jshook'); // bench/js-hooks.js
  if (selected.length === 0 && !goHooks && !jsHooks) throw new Error(`no scenario matches BENCH_ONLY="${process.env.BENCH_ONLY}"`);

  const rows = []; // throughput table
  const metricTable = []; // scenarios with `metrics`
  const notes = [];
  const ratios = new Map(); // scenario name -> ours/baseline throughput
  let failed = 0;
  for (const scenario of selected) {
    process.stderr.write(`bench: ${scenario.name} ...\n`);
    try {
      const oursRuns = [];
      const baseRuns = [];
      for (let round = 0; round < ROUNDS; round++) {
        oursRuns.push(await measure(scenario.ours, scenario));
        baseRuns.push(await measure(scenario.baseline, scenario));
      }
      const ours = medians(oursRuns);
      const base = medians(baseRuns);
      if (scenario.metrics) {
        metricTable.push(...metricRows(scenario, ours, base));
        if (ours.info || base.info) notes.push(`- ${scenario.name}: ${scenario.ours.label}: ${ours.info ?? '–'}; ${scenario.baseline.label}: ${base.info ?? '–'}`);
        continue;
      }
      const ratio = ours.rps / base.rps;
      if (scenario.goal !== false) ratios.set(scenario.name, ratio);
      rows.push([scenario.name, rps(ours), rps(base), `${ratio.toFixed(2)}×`, latency(ours), latency(base), cpuPerRequest(ours, base)]);
    } catch (err) {
      failed++;
      process.stderr.write(`bench: ${scenario.name} FAILED: ${err.message}\n`);
      if (scenario.metrics) metricTable.push([scenario.name, 'FAILED', '', '', '', '', '']);
      else rows.push([scenario.name, 'FAILED', '', '', '', '', '']);
    }
  }

  let goLines = [];
  if (goHooks) {
    process.stderr.write('bench: Go hooks (bench/go-hooks.js) ...\n');
    try {
      goLines = await goHookBench();
    } catch (err) {
      failed++;
      process.stderr.write(`bench: Go hooks FAILED: ${err.message}\n`);
      goLines = ['', '## Go hooks', '', 'FAILED'];
    }
  }

  if (jsHooks) {
    process.stderr.write('bench: JavaScript hooks (bench/js-hooks.js) ...\n');
    try {
      goLines.push('', ...(await jsHookBench()).split('\n'));
    } catch (err) {
      failed++;
      process.stderr.write(`bench: JavaScript hooks FAILED: ${err.message}\n`);
      goLines.push('', '## JavaScript hooks', '', 'FAILED');
    }
  }

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const met = [...ratios].filter(([, r]) => r >= GOAL).map(([name]) => name);
  const missed = [...ratios].filter(([, r]) => r < GOAL).map(([name]) => name);
  const lines = [
    `# deployd-ts benchmark`,
    '',
    `${new Date().toISOString()} · ${os.availableParallelism()} cores · ${cpu} · Node ${process.version} · ${os.platform()} ${os.release()} · load average before the run ${loadBefore}`,
    `${WARMUP} s warm-up + ${DURATION} s measured per side${ROUNDS > 1 ? `, median of ${ROUNDS} rounds` : ''}; servers run one at a time as child processes`,
  ];
  if (rows.length > 0) {
    lines.push(
      '',
      `autocannon: ${CONNECTIONS} connections`,
      '',
      '| scenario | deployd-ts req/s | baseline req/s | ratio | p50/p99 (ours) | p50/p99 (baseline) | server CPU µs/req (ours / baseline) |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...rows.map(markdown),
      '',
      `Goal: ≥ ${GOAL}× the baseline's throughput. Met: ${met.join(', ') || 'none'}. Missed: ${missed.join(', ') || 'none'}.`,
    );
  }
  if (metricTable.length > 0) {
    lines.push(
      '',
      '## Real-time (WebSocket)',
      '',
      'Clients: the `ws` package in the harness process, 127.0.0.1. Latency: the sender runs in the same process (one keep-alive connection, sequential POSTs). Fan-out: the sender is a helper child process (bench/ws-sender.js), so it does not wait behind the subscribers\' frames.',
      'Latency is from just before the POST is issued to the frame reaching the first / the last subscriber; goals apply to deployd-ts.',
      '',
      '| scenario | metric | deployd-ts | baseline | ours ÷ baseline | goal | goal met |',
      '|---|---|---:|---:|---:|---:|---|',
      ...metricTable.map(markdown),
    );
    if (notes.length > 0) lines.push('', ...notes);
  }
  lines.push(...goLines);
  if (failed > 0) lines.push('', `${failed} scenario(s) FAILED; see stderr.`);
  const table = lines.join('\n') + '\n';

  process.stdout.write(`\n${table}`);
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, table);
  process.stderr.write(`bench: wrote ${path.relative(process.cwd(), RESULTS)}\n`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`bench: ${err.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
