/**
 * `make bench peers`: deployd-ts side by side with PocketBase (bench/peers/pocketbase: PocketBase as
 * a Go framework from the Go module proxy, built once by scripts/pocketbase.sh and cached), on the
 * rows of issue #19's table. Every row runs BENCH_ROUNDS rounds (default 3), A/B alternating (odd
 * rounds start with us, even rounds with PocketBase), each side on a fresh server and data folder;
 * the table shows medians with the spread, us ÷ PB, and which side is ahead. The 1-minute load
 * average is printed at each start (the machine is shared: read ratios, not absolute numbers).
 *
 *   make bench peers            (builds first; the table also goes to bench/results/peers.md)
 * Env: BENCH_ROUNDS, BENCH_DURATION (s measured per side, 5), BENCH_WARMUP (s, 2),
 *      BENCH_CONNECTIONS (10), BENCH_SEED (documents for the GET row, 2000),
 *      BENCH_WS_FANOUT (subscribers, 1000), BENCH_FANOUT_EVENTS (creates, 500),
 *      BENCH_ONLY (substring(s) of row names, comma-separated), POCKETBASE_BIN (a prebuilt binary).
 * Timing is reported, never asserted. Exits non-zero when a server fails or a request/event fails.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { deliveryLatency, fanOut } from './realtime.js';
import { pocketbaseSse } from './peers/sse.js';
import { markdownTable, tableLine } from './peers/report.js';
import { TODOS } from './scenarios.js';
import { deployd, launch, tempDir } from './targets.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const RESULTS = path.join(HERE, 'results', 'peers.md');

const ROUNDS = positive('BENCH_ROUNDS', 3);
const DURATION = positive('BENCH_DURATION', 5);
const WARMUP = positive('BENCH_WARMUP', 2);
const CONNECTIONS = positive('BENCH_CONNECTIONS', 10);
const SEED = positive('BENCH_SEED', 2000);
const FANOUT = positive('BENCH_WS_FANOUT', 1000);
const FANOUT_EVENTS = positive('BENCH_FANOUT_EVENTS', 500);

function positive(name, fallback) {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

// ---- the two servers ----------------------------------------------------------------------------

const realtimeFiles = { '.deployd/realtime.json': JSON.stringify({ limits: { maxConnections: 5000 } }) };
// The same trivial validation on both sides, each written the way its users write one.
const OUR_HOOK = { 'resources/todos/validate.js': "if (!this.title) error('title', 'is required');\n" };
const PB_HOOK = `onRecordCreateRequest((e) => {
  if (!e.record.get("title")) throw new BadRequestError("title is required");
  e.next();
}, "todos");
`;

function pocketbaseBinary() {
  if (process.env.POCKETBASE_BIN) return process.env.POCKETBASE_BIN;
  return execFileSync('bash', [path.join(ROOT, 'scripts', 'pocketbase.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

function pocketbase(binary, { hooks = false, label = 'PocketBase' } = {}) {
  return {
    label,
    async start() {
      const dir = tempDir();
      fs.mkdirSync(path.join(dir, 'pb_hooks'));
      if (hooks) fs.writeFileSync(path.join(dir, 'pb_hooks', 'validate.pb.js'), PB_HOOK);
      const args = ['serve', '--dir', path.join(dir, 'pb_data'), '--hooksDir', path.join(dir, 'pb_hooks')];
      return launch(label, binary, args, { ...process.env, BENCH_LISTEN: '127.0.0.1:0' }, dir);
    },
  };
}

// ---- what each side is asked ----------------------------------------------------------------------

const json = { 'content-type': 'application/json' };
const newTodo = JSON.stringify({ title: 'bench', priority: 3, status: 'open' });
const API = {
  us: {
    create: '/todos',
    filter: '/todos?priority[$gte]=3&$limit=50',
    items: (answer) => answer,
  },
  pb: {
    create: '/api/collections/todos/records',
    // skipTotal: the same work as ours (PocketBase counts all matches by default; we do not).
    filter: '/api/collections/todos/records?filter=(priority>=3)&perPage=50&skipTotal=1',
    items: (answer) => answer?.items,
  },
};

const posting = (side) => ({
  probe: { method: 'POST', path: API[side].create, verify: (doc) => typeof doc?.id === 'string' && doc.title === 'bench' },
  run: (url, seconds) => load(url, { method: 'POST', path: API[side].create, headers: json, body: newTodo }, seconds),
});

const filtering = (side) => ({
  setup: (url) => seed(url, API[side].create, SEED),
  probe: {
    method: 'GET',
    path: API[side].filter,
    verify: (answer) => {
      const items = API[side].items(answer);
      return Array.isArray(items) && items.length === 50 && items.every((d) => d.priority >= 3);
    },
  },
  run: (url, seconds) => load(url, { method: 'GET', path: API[side].filter }, seconds),
});

const pushing = (side) => {
  const drive = deliveryLatency({ subscribers: 1, maxEvents: 1_000_000, ...(side === 'pb' ? { protocol: pocketbaseSse } : {}) });
  return { run: (url, seconds, server) => drive(url, seconds, server) };
};

const fanningOut = (side) => {
  const protocol = side === 'pb' ? { protocol: pocketbaseSse } : {};
  const warm = fanOut({ clients: FANOUT, maxEvents: Math.min(50, FANOUT_EVENTS), ...protocol });
  const drive = fanOut({ clients: FANOUT, maxEvents: FANOUT_EVENTS, ...protocol });
  return {
    warm: (url, _seconds, server) => warm(url, 60, server),
    run: (url, _seconds, server) => drive(url, 60, server),
  };
};

/** RSS right after start and one POST (lazy parts such as hook workers are then running). */
const resident = (side) => ({
  warmup: false,
  run: async (url, _seconds, server) => {
    const res = await fetch(url + API[side].create, { method: 'POST', headers: json, body: newTodo });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`POST ${API[side].create} answered ${res.status}`);
    await sleep(1000);
    return { rss: treeRssKiB(server.pid) / 1024 };
  },
});

// ---- the rows -----------------------------------------------------------------------------------

function rows(binary) {
  const us = (extra = {}) => deployd({ todos: TODOS }, { files: { ...realtimeFiles, ...extra } });
  const pb = (hooks = false) => pocketbase(binary, { hooks });
  return [
    {
      name: `POST (${CONNECTIONS} connections)`,
      metrics: [{ key: 'rps', label: `POST (${CONNECTIONS} connections)`, unit: 'req/s', better: 'higher' }],
      us: { target: us(), ...posting('us') },
      pb: { target: pb(), ...posting('pb') },
    },
    {
      name: 'POST + JS hook',
      metrics: [{ key: 'rps', label: 'POST + trivial JS validate hook', unit: 'req/s', better: 'higher' }],
      us: { target: us(OUR_HOOK), ...posting('us') },
      pb: { target: pb(true), ...posting('pb') },
    },
    {
      name: 'GET filter',
      metrics: [{ key: 'rps', label: `GET filter, 50 of ${SEED.toLocaleString('en-US')}`, unit: 'req/s', better: 'higher' }],
      us: { target: us(), ...filtering('us') },
      pb: { target: pb(), ...filtering('pb') },
    },
    {
      name: 'push latency',
      metrics: [
        { key: 'firstP50', label: 'create → push, 1 subscriber, p50 (our WS, its SSE)', unit: 'ms', better: 'lower' },
        { key: 'firstP99', label: 'create → push, 1 subscriber, p99', unit: 'ms', better: 'lower' },
      ],
      us: { target: us(), ...pushing('us') },
      pb: { target: pb(), ...pushing('pb') },
    },
    {
      name: 'fan-out',
      metrics: [
        { key: 'deliveries', label: `fan-out, ${FANOUT.toLocaleString('en-US')} subscribers × ${FANOUT_EVENTS} creates`, unit: 'deliveries/s', better: 'higher' },
        { key: 'serverCpuPerDelivery', label: 'fan-out, server CPU per delivery (POST included)', unit: 'µs', better: 'lower' },
      ],
      us: { target: us(), ...fanningOut('us') },
      pb: { target: pb(), ...fanningOut('pb') },
    },
    {
      name: 'RSS',
      metrics: [{ key: 'rss', label: 'RSS at start (+ 1 POST), no hooks, process tree', unit: 'MiB', better: 'lower' }],
      us: { target: us(), ...resident('us') },
      pb: { target: pb(), ...resident('pb') },
    },
    {
      name: 'RSS with hook',
      metrics: [{ key: 'rss', label: 'RSS at start (+ 1 POST), with the JS hook, process tree', unit: 'MiB', better: 'lower' }],
      us: { target: us(OUR_HOOK), ...resident('us') },
      pb: { target: pb(true), ...resident('pb') },
    },
  ];
}

// ---- measuring ----------------------------------------------------------------------------------

const loads = [];

/** One side of one row on a fresh server: setup, probe, warm-up, measure; always stops it. */
async function measure(row, side) {
  const { target, setup, probe, run, warm, warmup } = row[side];
  const load1 = os.loadavg()[0];
  loads.push(load1);
  process.stderr.write(`bench peers: ${row.name}: ${target.label} (load average ${load1.toFixed(2)})\n`);
  const server = await target.start();
  try {
    await setup?.(server.url);
    if (probe) await check(server.url, probe);
    if (warmup !== false) await (warm ?? run)(server.url, WARMUP, server);
    server.check();
    const result = typeof run === 'function' ? await run(server.url, DURATION, server) : null;
    server.check();
    return result;
  } finally {
    await server.stop();
  }
}

async function check(url, { method, path: route, verify }) {
  const res = await fetch(url + route, { method, headers: method === 'POST' ? json : {}, body: method === 'POST' ? newTodo : undefined });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${text.slice(0, 300)}`);
  if (!verify(JSON.parse(text))) throw new Error(`${method} ${route}: unexpected answer ${text.slice(0, 300)}`);
}

/** autocannon; any error, timeout or non-2xx answer fails the run. */
async function load(url, request, seconds) {
  const result = await autocannon({ url: url + request.path, method: request.method, headers: request.headers, body: request.body, connections: CONNECTIONS, duration: seconds });
  const bad = { errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx };
  if (Object.values(bad).some((n) => n > 0)) throw new Error(`${request.method} ${request.path}: ${JSON.stringify(bad)}`);
  return { rps: result.requests.average };
}

/** `count` documents, priorities 1..5, through the server's own create route, 8 at a time. */
async function seed(url, route, count) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const res = await fetch(url + route, { method: 'POST', headers: json, body: JSON.stringify({ title: `todo ${i}`, priority: 1 + (i % 5), status: ['open', 'doing', 'done'][i % 3], completed: i % 7 === 0 }) });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`seeding: POST ${route} answered ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/** VmRSS of `pid` and all its descendants (our hook workers are child processes). */
function treeRssKiB(pid) {
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch { /* gone meanwhile */ }
  }
  let total = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    try {
      total += Number(/^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch { /* gone meanwhile */ }
    stack.push(...(children.get(p) ?? []));
  }
  if (total === 0) throw new Error(`no RSS for process ${pid}: the server is gone`);
  return total;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main() {
  const started = Date.now();
  const binary = pocketbaseBinary();
  const version = /pocketbase\/pocketbase (v[\d.]+)/.exec(fs.readFileSync(path.join(HERE, 'peers', 'pocketbase', 'go.mod'), 'utf8'))?.[1] ?? '?';
  const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);
  const selected = rows(binary).filter((row) => !only?.length || only.some((o) => row.name.includes(o)));
  if (selected.length === 0) throw new Error(`no row matches BENCH_ONLY="${process.env.BENCH_ONLY}"`);

  const lines = [];
  let failed = 0;
  for (const row of selected) {
    const values = { us: row.metrics.map(() => []), pb: row.metrics.map(() => []) };
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of round % 2 === 0 ? ['us', 'pb'] : ['pb', 'us']) {
        try {
          const result = await measure(row, side);
          row.metrics.forEach((m, i) => values[side][i].push(result[m.key]));
        } catch (err) {
          failed++;
          process.stderr.write(`bench peers: ${row.name}: ${row[side].target.label} FAILED: ${err.message}\n`);
        }
      }
    }
    row.metrics.forEach((m, i) => lines.push(tableLine(m, values.us[i], values.pb[i])));
  }

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const out = [
    '# deployd-ts vs PocketBase',
    '',
    `${new Date().toISOString()} · ${os.availableParallelism()} cores · ${cpu} · Node ${process.version} · PocketBase ${version} (Go framework build, request log on as shipped)`,
    `${ROUNDS} round(s), A/B alternating, fresh server per side and round; ${WARMUP} s warm-up + ${DURATION} s measured (throughput, latency); autocannon ${CONNECTIONS} connections; load generator on the same machine`,
    `1-minute load average at the starts: ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} (median ${loads.slice().sort((a, b) => a - b)[loads.length >> 1].toFixed(2)}); run took ${Math.round((Date.now() - started) / 1000)} s`,
    '',
    markdownTable(['scenario', 'deployd-ts median (range)', 'PocketBase median (range)', 'us ÷ PB', 'ahead'], lines),
  ];
  if (failed > 0) out.push('', `${failed} run(s) FAILED; see stderr.`);
  const table = out.join('\n') + '\n';
  process.stdout.write(`\n${table}`);
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, table);
  process.stderr.write(`bench peers: wrote ${path.relative(process.cwd(), RESULTS)}\n`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`bench peers: ${err.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
