/**
 * The benchmark scenarios. Each is
 *   { name, ours, baseline, request, setup?, verify?, load? }
 * - ours, baseline: targets (see targets.js); each is started fresh for the scenario, one at a time.
 * - request: what autocannon sends ({ method, path, headers?, body? }).
 * - load(url, seconds): optional replacement for autocannon (e.g. WebSocket delivery); resolves
 *   { rps, p50, p99 } and throws on any failed delivery.
 * - setup(url): optional, runs against each fresh server before warm-up (e.g. seeding).
 * - verify(json): optional, checks one answer before measuring, so both sides provably do the same
 *   work (a baseline that answers [] would look fast for the wrong reason).
 * To compare two deployd-ts configurations (e.g. a POST with a JS hook vs without), make `baseline`
 * another `deployd(...)` target.
 */
import { baseline, deployd } from './targets.js';

const SEED = Number(process.env.BENCH_SEED ?? 2000);
if (!Number.isInteger(SEED) || SEED < 100) throw new Error('BENCH_SEED must be an integer ≥ 100 (the read scenario needs 50 matches)');

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
  {
    // The cost of one JavaScript hook: the same POST, with and without a trivial validate.js.
    name: 'POST /todos with validate.js (vs no hooks)',
    ours: deployd({ todos: TODOS }, { label: 'with hook', files: { 'resources/todos/validate.js': "if (!this.title) error('title', 'is required');\n" } }),
    baseline: deployd({ todos: TODOS }, { label: 'no hooks' }),
    request: { method: 'POST', path: '/todos', headers: json, body: JSON.stringify({ title: 'bench', priority: 3, status: 'open' }) },
    verify: (doc) => typeof doc?.id === 'string' && doc.title === 'bench',
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
