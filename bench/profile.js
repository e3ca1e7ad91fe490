/**
 * CPU profile of the server under one load, summarised as text (bench/PROFILE.md quotes it):
 *
 *   node --no-node-snapshot bench/profile.js post|hook|get [seconds]     (build first)
 *
 * Starts deployd-ts with --cpu-prof (bench/targets.js), drives it with autocannon (10 connections)
 * for `seconds` (default 10) after a 2 s warm-up, stops it, and prints where the server's CPU went:
 * self time by area (which source file a sample's innermost frame is in), the top functions by self
 * time, and our own functions by inclusive time. The raw .cpuprofile stays in bench/results/profiles/
 * (open it in Chrome DevTools or speedscope for a flame graph; not committed: megabytes).
 * `node bench/profile.js summarise FILE.cpuprofile` only summarises an existing profile.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.join(HERE, 'results', 'profiles');

const HOOK = { 'resources/todos/validate.js': "if (!this.title) error('title', 'is required');\n" };
const json = { 'content-type': 'application/json' };
const body = JSON.stringify({ title: 'bench', priority: 3, status: 'open' });

// Area of a frame, by its script URL (first match wins); '' URLs are V8 builtins / native code.
const AREAS = [
  ['logging (pino)', /node_modules\/(pino|sonic-boom|thread-stream|fast-redact)|src\/logging/],
  ['metrics', /node_modules\/prom-client|src\/metrics/],
  ['serialization (fast-json-stringify)', /node_modules\/fast-json-stringify|node_modules\/@fastify\/fast-json-stringify/],
  ['body parse', /node_modules\/(secure-json-parse|fast-content-type-parse)|src\/api\/body-parsers/],
  ['routing + fastify lifecycle', /node_modules\/(fastify|find-my-way|avvio|@fastify|light-my-request|fast-querystring|toad-cache|process-warning|rfdc)/],
  ['our routes (src/api)', /src\/api\//],
  ['pipeline (src/collections, policy, auth)', /src\/(collections|policy|auth)\//],
  ['schema / coercion / ids (src/core)', /src\/core\//],
  ['query (src/query)', /src\/query\//],
  ['SQLite store (src/store) + better-sqlite3 JS', /src\/store\/|node_modules\/better-sqlite3/],
  ['JS hooks dispatch (src/hooks)', /src\/hooks\//],
  ['events: bus, history, realtime', /src\/(bus|realtime)\//],
  ['other src/', /src\//],
  ['other node_modules', /node_modules\//],
  ['node core (http, net, streams)', /^node:/],
];

export function summarise(profile, { top = 25 } = {}) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map(); // node id -> µs
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) self.set(samples[i], (self.get(samples[i]) ?? 0) + (timeDeltas[i + 1] ?? timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0) || 1;

  const areaOf = (node) => {
    const { url, functionName } = node.callFrame;
    if (!url) {
      if (functionName === '(idle)') return 'idle';
      if (functionName === '(garbage collector)') return 'garbage collector';
      if (functionName === '(program)') return 'V8/native, unattributed (program)';
      // a builtin (JSON.stringify, Map.get, a native binding): count it for its JS caller's area
      const up = parent.get(node.id);
      return up === undefined ? 'V8 builtins' : `${areaOf(nodes.get(up))}`;
    }
    return AREAS.find(([, re]) => re.test(url))?.[0] ?? 'other';
  };
  const name = (n) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url ? `${n.callFrame.url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${n.callFrame.lineNumber + 1}` : '(builtin)'}`;

  const byArea = new Map();
  const byFunction = new Map();
  for (const [id, us] of self) {
    const node = nodes.get(id);
    const area = areaOf(node);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
    const fn = name(node);
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  }
  // Inclusive time of our own functions (each counted once per sample even when recursive).
  const inclusive = new Map();
  for (const [id, us] of self) {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const n = nodes.get(at);
      if (!/\/(dist\/)?src\//.test(n.callFrame.url)) continue;
      const fn = name(n);
      if (seen.has(fn)) continue;
      seen.add(fn);
      inclusive.set(fn, (inclusive.get(fn) ?? 0) + us);
    }
  }
  const busy = total - (byArea.get('idle') ?? 0);
  const pct = (us, of = busy) => `${((100 * us) / of).toFixed(1)}%`;
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  const lines = [
    `profiled ${(total / 1e6).toFixed(1)} s, busy (not idle) ${(busy / 1e6).toFixed(1)} s; shares below are of busy time`,
    '',
    'self time by area:',
    ...sorted(byArea).filter(([a]) => a !== 'idle').map(([a, us]) => `  ${pct(us).padStart(6)}  ${a}`),
    '',
    `top ${top} functions by self time:`,
    ...sorted(byFunction).filter(([f]) => !f.startsWith('(idle)')).slice(0, top).map(([f, us]) => `  ${pct(us).padStart(6)}  ${f}`),
    '',
    `our functions (src/) by inclusive time, top ${top}:`,
    ...sorted(inclusive).slice(0, top).map(([f, us]) => `  ${pct(us).padStart(6)}  ${f}`),
  ];
  return lines.join('\n');
}

async function profileRun(kind, seconds) {
  fs.mkdirSync(OUT, { recursive: true });
  process.env.BENCH_CPU_PROF = path.join(OUT, kind);
  fs.rmSync(process.env.BENCH_CPU_PROF, { recursive: true, force: true });
  const { deployd } = await import('./targets.js'); // reads BENCH_CPU_PROF when loaded
  const { TODOS } = await import('./scenarios.js');
  const target = deployd({ todos: TODOS }, kind === 'hook' ? { files: HOOK } : {});
  const server = await target.start();
  try {
    if (kind === 'get') {
      for (let i = 0; i < 2000; i++) {
        const res = await fetch(`${server.url}/todos`, { method: 'POST', headers: json, body: JSON.stringify({ title: `todo ${i}`, priority: 1 + (i % 5), status: 'open' }) });
        await res.arrayBuffer();
      }
    }
    const request = kind === 'get' ? { url: `${server.url}/todos?priority[$gte]=3&$limit=50` } : { url: `${server.url}/todos`, method: 'POST', headers: json, body };
    await autocannon({ ...request, connections: 10, duration: 2 });
    const result = await autocannon({ ...request, connections: 10, duration: seconds });
    if (result.errors || result.timeouts || result.non2xx) throw new Error(`load failed: ${JSON.stringify({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx })}`);
    process.stderr.write(`profile ${kind}: ${Math.round(result.requests.average)} req/s under the profiler\n`);
  } finally {
    await server.stop();
  }
  const files = fs.readdirSync(process.env.BENCH_CPU_PROF).filter((f) => f.endsWith('.cpuprofile'));
  // the server's main thread profile is the largest (hook workers write their own)
  const biggest = files.map((f) => path.join(process.env.BENCH_CPU_PROF, f)).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0];
  if (!biggest) throw new Error('no profile was written');
  return biggest;
}

async function main() {
  const [kind, arg] = process.argv.slice(2);
  if (kind === 'summarise') {
    process.stdout.write(summarise(JSON.parse(fs.readFileSync(arg, 'utf8'))) + '\n');
    return;
  }
  if (!['post', 'hook', 'get'].includes(kind)) throw new Error('usage: bench/profile.js post|hook|get [seconds] | summarise FILE');
  const file = await profileRun(kind, Number(arg ?? 10));
  process.stderr.write(`profile ${kind}: ${path.relative(process.cwd(), file)}\n`);
  process.stdout.write(summarise(JSON.parse(fs.readFileSync(file, 'utf8'))) + '\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exitCode = 1;
  });
}
