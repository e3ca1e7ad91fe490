/**
 * Benchmark harness: each scenario runs against deployd-ts and against a raw baseline in the same
 * run, one server at a time (child processes; autocannon runs here), and prints a Markdown table
 * with throughput ratios and p50/p99 latency. The table also goes to bench/results/latest.md.
 *
 *   npm run bench            (build first: npx tsc -p .)
 * Env: BENCH_DURATION seconds measured per side (default 5), BENCH_WARMUP seconds (default 2),
 *      BENCH_CONNECTIONS (default 10), BENCH_SEED documents seeded for read scenarios (default 2000),
 *      BENCH_ROUNDS (default 1; each round measures ours then the baseline again, and the table
 *      shows medians: on a shared 2-core machine one round can be off by ±20%),
 *      BENCH_ONLY substring to pick scenarios by name.
 * Exits non-zero when a server fails to start or dies, or when any request errors, times out or
 * answers non-2xx. Timing is reported, never asserted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
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

/** Starts a target, prepares it, warms it up, measures; always stops it. */
async function measure(target, scenario) {
  const server = await target.start();
  try {
    await scenario.setup?.(server.url);
    if (scenario.request) await probe(server.url, scenario);
    const drive = scenario.load ?? ((url, seconds) => load(url, scenario.request, seconds));
    await drive(server.url, WARMUP); // JIT, page cache, statement caches
    const result = await drive(server.url, DURATION);
    server.check();
    return result;
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
async function load(url, request, seconds) {
  const latencies = [];
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
  return { rps: result.requests.average, p50: at(0.5), p99: at(0.99) };
}

/** Per-metric median over rounds. */
function medians(runs) {
  const median = (key) => {
    const sorted = runs.map((r) => r[key]).sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  return { rps: median('rps'), p50: median('p50'), p99: median('p99') };
}

const latency = (r) => `${r.p50.toFixed(2)} / ${r.p99.toFixed(2)} ms`;
const rps = (r) => Math.round(r.rps).toLocaleString('en-US');

async function main() {
  // Other work on the machine skews both sides unevenly; the load average makes that visible.
  const loadBefore = os.loadavg()[0].toFixed(2);
  const only = process.env.BENCH_ONLY;
  const selected = scenarios.filter((s) => !only || s.name.includes(only));
  if (selected.length === 0) throw new Error(`no scenario matches BENCH_ONLY="${only}"`);

  const rows = [];
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
      const ratio = ours.rps / base.rps;
      ratios.set(scenario.name, ratio);
      rows.push([scenario.name, rps(ours), rps(base), `${ratio.toFixed(2)}×`, latency(ours), latency(base)]);
    } catch (err) {
      failed++;
      process.stderr.write(`bench: ${scenario.name} FAILED: ${err.message}\n`);
      rows.push([scenario.name, 'FAILED', '', '', '', '']);
    }
  }

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const met = [...ratios].filter(([, r]) => r >= GOAL).map(([name]) => name);
  const missed = [...ratios].filter(([, r]) => r < GOAL).map(([name]) => name);
  const lines = [
    `# deployd-ts benchmark`,
    '',
    `${new Date().toISOString()} · ${os.availableParallelism()} cores · ${cpu} · Node ${process.version} · ${os.platform()} ${os.release()} · load average before the run ${loadBefore}`,
    `autocannon: ${CONNECTIONS} connections, ${WARMUP} s warm-up + ${DURATION} s measured per side${ROUNDS > 1 ? `, median of ${ROUNDS} rounds` : ''}; servers run one at a time as child processes`,
    '',
    '| scenario | deployd-ts req/s | baseline req/s | ratio | p50/p99 (ours) | p50/p99 (baseline) |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map((cells) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`),
    '',
    `Goal: ≥ ${GOAL}× the baseline's throughput. Met: ${met.join(', ') || 'none'}. Missed: ${missed.join(', ') || 'none'}.`,
  ];
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
