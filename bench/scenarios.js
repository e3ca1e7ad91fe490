/**
 * The benchmark scenarios. Each is
 *   { name, ours, baseline, request, setup?, verify?, load?, metrics?, warmup? }
 * - ours, baseline: targets (see targets.js); each is started fresh for the scenario, one at a time.
 * - request: what autocannon sends ({ method, path, headers?, body? }).
 * - load(url, seconds, server): optional replacement for autocannon (e.g. WebSocket delivery;
 *   `server.pid` is the server process); resolves { rps, p50, p99 } and throws on any failed
 *   delivery — or, with `metrics`, the keys those name (plus an optional `info` note).
 * - metrics: optional; the scenario goes to the second table, one row per metric
 *   ({ label, unit, keys, goals? }, see run.js).
 * - goal: false leaves the scenario out of the throughput goal line (ours and baseline are both deployd-ts).
 * - warmup: false skips the warm-up run (e.g. memory: a warm-up leaves freed memory to reuse).
 * - setup(url): optional, runs against each fresh server before warm-up (e.g. seeding).
 * - verify(json): optional, checks one answer before measuring, so both sides provably do the same
 *   work (a baseline that answers [] would look fast for the wrong reason).
 * To compare two deployd-ts configurations (e.g. a POST with a JS hook vs without), make `baseline`
 * another `deployd(...)` target.
 */
import { deliveryLatency, fanOut, idleMemory } from './realtime.js';
import { mongoUrl } from './mongo.js';
import { baseline, baselineMongo, baselineWs, deployd } from './targets.js';
import { deploydCluster, redisRelay } from './cluster.js';

const SEED = Number(process.env.BENCH_SEED ?? 2000);
if (!Number.isInteger(SEED) || SEED < 100) throw new Error('BENCH_SEED must be an integer ≥ 100 (the read scenario needs 50 matches)');
const WS_EVENTS = count('BENCH_WS_EVENTS', 2000, 1_000_000); // at most this many POSTs per latency run (and BENCH_DURATION)
// Connections: at most 4000 (the real-time targets allow 5000; one fd each, here and in the server).
const WS_SUBSCRIBERS = count('BENCH_WS_SUBSCRIBERS', 100, 4000); // the latency scenario with many subscribers
const WS_FANOUT = count('BENCH_WS_FANOUT', 1000, 4000); // subscribers in the fan-out scenario
const WS_IDLE = count('BENCH_WS_IDLE', 1000, 4000); // idle connections in the memory scenario

function count(name, fallback, max) {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`${name} must be an integer from 1 to ${max}`);
  return value;
}

export const TODOS = {
  type: 'Collection',
  timestamps: true,
  properties: {
    title: { type: 'string', required: true },
    completed: { type: 'boolean' },
    priority: { type: 'number', index: true },
    status: { type: 'string', index: true },
    assignedTo: { type: 'string' },
  },
};

const json = { 'content-type': 'application/json' };

// Real-time targets: the default limit (10,000) already fits; set explicitly so a changed default
// cannot turn the bench's connections into 503s.
const realtimeFiles = { '.deployd/realtime.json': JSON.stringify({ limits: { maxConnections: 5000 } }) };
const latencyMetrics = (subscribers) => [
  ...(subscribers === 1
    ? [{ label: 'delivery p50 / p99', unit: 'ms', keys: ['firstP50', 'firstP99'], goals: [{ max: 1 }, { max: 5 }] }]
    : [
      { label: 'first subscriber p50 / p99', unit: 'ms', keys: ['firstP50', 'firstP99'], goals: [{ max: 1 }, { max: 5 }] },
      { label: 'last subscriber p50 / p99', unit: 'ms', keys: ['lastP50', 'lastP99'], goals: [{ max: 1 }, { max: 5 }] },
    ]),
  { label: 'HTTP answer p50 / p99', unit: 'ms', keys: ['httpP50', 'httpP99'] },
];

export const scenarios = [
  {
    name: 'POST /todos',
    ours: deployd({ todos: TODOS }),
    baseline: baseline(),
    request: { method: 'POST', path: '/todos', headers: json, body: JSON.stringify({ title: 'bench', priority: 3, status: 'open' }) },
    verify: (doc) => typeof doc?.id === 'string' && doc.title === 'bench',
  },
  {
    name: 'GET /todos?priority[$gte]=3&$limit=50',
    ours: deployd({ todos: TODOS }),
    baseline: baseline(),
    setup: (url) => seedTodos(url, SEED),
    request: { method: 'GET', path: '/todos?priority[$gte]=3&$limit=50' },
    verify: (docs) => Array.isArray(docs) && docs.length === 50 && docs.every((d) => d.priority >= 3),
  },
  // ---- the same REST scenarios on MongoDB (MONGODB_URL, else FerretDB): BENCH_ONLY=MongoDB selects these ----
  {
    name: 'POST /todos on MongoDB',
    ours: deployd({ todos: TODOS }, { label: 'deployd-ts (MongoDB)', database: mongoUrl }),
    baseline: baselineMongo(mongoUrl),
    request: { method: 'POST', path: '/todos', headers: json, body: JSON.stringify({ title: 'bench', priority: 3, status: 'open' }) },
    verify: (doc) => typeof doc?.id === 'string' && doc.title === 'bench',
  },
  {
    name: 'GET /todos?priority[$gte]=3&$limit=50 on MongoDB',
    ours: deployd({ todos: TODOS }, { label: 'deployd-ts (MongoDB)', database: mongoUrl }),
    baseline: baselineMongo(mongoUrl),
    setup: (url) => seedTodos(url, SEED),
    request: { method: 'GET', path: '/todos?priority[$gte]=3&$limit=50' },
    verify: (docs) => Array.isArray(docs) && docs.length === 50 && docs.every((d) => d.priority >= 3),
  },
  {
    // The cost of one JavaScript hook: the same POST, with and without a trivial validate.js.
    name: 'POST /todos with validate.js (vs no hooks)',
    ours: deployd({ todos: TODOS }, { label: 'with hook', files: { 'resources/todos/validate.js': "if (!this.title) error('title', 'is required');\n" } }),
    baseline: deployd({ todos: TODOS }, { label: 'no hooks' }),
    request: { method: 'POST', path: '/todos', headers: json, body: JSON.stringify({ title: 'bench', priority: 3, status: 'open' }) },
    verify: (doc) => typeof doc?.id === 'string' && doc.title === 'bench',
  },
  {
    // The cost of /metrics' instrumentation (an onResponse hook and a histogram per request).
    name: 'POST /todos with metrics (vs --no-metrics)',
    ours: deployd({ todos: TODOS }, { label: 'metrics on' }),
    baseline: deployd({ todos: TODOS }, { label: 'metrics off', args: ['--no-metrics'] }),
    request: { method: 'POST', path: '/todos', headers: json, body: JSON.stringify({ title: 'bench', priority: 3, status: 'open' }) },
    verify: (doc) => typeof doc?.id === 'string' && doc.title === 'bench',
    goal: false,
  },
  // ---- real-time: BENCH_ONLY=ws selects these (names without commas: BENCH_ONLY splits on them) ----
  ...[1, WS_SUBSCRIBERS].map((subscribers) => ({
    name: `ws create→delivery latency (${subscribers} subscriber${subscribers === 1 ? '' : 's'})`,
    ours: deployd({ todos: TODOS }, { files: realtimeFiles }),
    baseline: baselineWs(),
    load: deliveryLatency({ subscribers, maxEvents: WS_EVENTS }),
    metrics: latencyMetrics(subscribers),
  })),
  {
    name: `ws fan-out to ${WS_FANOUT} subscribers`,
    ours: deployd({ todos: TODOS }, { files: realtimeFiles }),
    baseline: baselineWs(),
    load: fanOut({ clients: WS_FANOUT, maxEvents: 100_000 }),
    metrics: [
      { label: 'deliveries/s', unit: '/s', keys: ['deliveries'], goals: [{ min: 100_000 }] },
      { label: 'POSTs answered/s', unit: '/s', keys: ['events'] },
      { label: 'CPU: server / subscribers / sender', unit: '%', keys: ['serverCpu', 'harnessCpu', 'senderCpu'] },
      { label: 'server CPU per delivery', unit: 'µs', keys: ['serverCpuPerDelivery'] },
    ],
  },
  // ---- several instances through Redis (REDIS_URL): BENCH_ONLY=cluster selects these ----
  {
    // POST on instance A, the WebSocket on instance B: the event crosses Redis (a Stream here,
    // plain PUBLISH/SUBSCRIBE in the baseline, which keeps no history and repairs no gap).
    name: 'cluster: cross-instance create→delivery latency',
    ours: deploydCluster({ todos: TODOS }, { instances: 2, direct: true, files: realtimeFiles }),
    baseline: redisRelay(),
    load: deliveryLatency({ subscribers: 1, maxEvents: WS_EVENTS }),
    metrics: latencyMetrics(1),
  },
  ...[
    { verb: 'POST /todos', request: { method: 'POST', path: '/todos', headers: json, body: JSON.stringify({ title: 'bench', priority: 3, status: 'open' }) } },
    { verb: 'GET /todos?priority[$gte]=3&$limit=50', request: { method: 'GET', path: '/todos?priority[$gte]=3&$limit=50' }, setup: (url) => seedTodos(url, SEED) },
  ].map(({ verb, request, setup }) => ({
    // The same HAProxy, Redis and app; three instances against one. Ratio: what the extra
    // instances buy on this machine (the load generator shares its cores).
    name: `cluster: ${verb} through HAProxy (3 instances vs 1)`,
    ours: deploydCluster({ todos: TODOS }, { instances: 3 }),
    baseline: deploydCluster({ todos: TODOS }, { instances: 1, label: 'deployd-ts × 1' }),
    request,
    setup,
    goal: false, // the 0.6× goal compares against a raw baseline; this ratio is 3 instances ÷ 1
  })),
  {
    name: `ws idle memory (${WS_IDLE} connections)`,
    ours: deployd({ todos: TODOS }, { files: realtimeFiles }),
    baseline: baselineWs(),
    load: idleMemory({ connections: WS_IDLE }),
    warmup: false,
    metrics: [{ label: 'server RSS per connection', unit: 'KiB', keys: ['perConnection'], goals: [{ max: 30 }] }],
  },
];

/** Inserts `count` todos with priorities 1..5 through the server's own POST, a few at a time. */
async function seedTodos(url, count, concurrency = 8) {
  const statuses = ['open', 'doing', 'done'];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const doc = { title: `todo ${i}`, priority: 1 + (i % 5), status: statuses[i % 3], completed: i % 7 === 0 };
      const res = await fetch(`${url}/todos`, { method: 'POST', headers: json, body: JSON.stringify(doc) });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`seeding: POST /todos answered ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
