/**
 * Where the server's CPU goes, by Linux perf (cpu-clock samples with call graphs) rather than V8's
 * sampling profiler: V8 attributes wall time, so a syscall during which the process was switched out
 * on a busy machine looks expensive (bench/PROFILE.md, 2026-12-02 second section).
 *
 *   node --no-node-snapshot bench/perf-record.js post|get [ours|baseline] [seconds]   (build first; needs `perf`)
 *
 * Starts the server with --perf-basic-prof (JS function names in perf's report), warms it up,
 * records its main thread under autocannon (10 connections), and prints the CPU per request and the
 * functions by inclusive share of the main thread's samples. BENCH_BUILD=DIR runs another dist/.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { launch, tempDir } from './targets.js';
import { TODOS } from './scenarios.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const [kind = 'post', side = 'ours', secondsArg = '5'] = process.argv.slice(2);
if (!['post', 'get'].includes(kind) || !['ours', 'baseline'].includes(side)) throw new Error('usage: bench/perf-record.js post|get [ours|baseline] [seconds]');
if (spawnSync('perf', ['--version']).status !== 0) throw new Error('perf (linux-tools) is not installed');

const FREQUENCY = 2000; // samples per CPU-second: one sample is 0.5 ms of CPU
const json = { 'content-type': 'application/json' };
const dir = tempDir();
const data = path.join(dir, 'perf.data');
// V8's own log (written with these flags) goes to the temp folder, not the working directory.
const flags = ['--no-node-snapshot', '--perf-basic-prof', '--interpreted-frames-native-stack', '--no-logfile-per-isolate', `--logfile=${path.join(dir, 'v8.log')}`];
let args;
if (side === 'baseline') {
  args = [...flags, path.join(HERE, 'baseline-server.js'), '--db', path.join(dir, 'bench.sqlite')];
} else {
  fs.mkdirSync(path.join(dir, 'resources', 'todos'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'resources', 'todos', 'config.json'), JSON.stringify(TODOS));
  const build = process.env.BENCH_BUILD ? path.resolve(process.env.BENCH_BUILD) : path.join(HERE, '..', 'dist');
  args = [...flags, path.join(build, 'src', 'cli', 'main.js'), '--app', dir];
}
const server = await launch(side, process.execPath, [...args, '--port', '0', '--host', '127.0.0.1'], { ...process.env, LOG_LEVEL: 'warn', MASTER_KEY: 'k'.repeat(32) }, fs.mkdtempSync(path.join(dir, 'app-')));
let requests;
try {
  if (kind === 'get') {
    for (let i = 0; i < 2000; i++) {
      const res = await fetch(`${server.url}/todos`, { method: 'POST', headers: json, body: JSON.stringify({ title: `todo ${i}`, priority: 1 + (i % 5), status: 'open' }) });
      await res.arrayBuffer();
    }
  }
  const request = kind === 'get'
    ? { url: `${server.url}/todos?priority[$gte]=3&$limit=50` }
    : { url: `${server.url}/todos`, method: 'POST', headers: json, body: JSON.stringify({ title: 'bench', priority: 3, status: 'open' }) };
  await autocannon({ ...request, connections: 10, duration: 3 }); // JIT, caches
  const perf = spawn('perf', ['record', '-g', '-e', 'cpu-clock', '-F', String(FREQUENCY), '-o', data, '-t', String(server.pid)], { stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const result = await autocannon({ ...request, connections: 10, duration: Number(secondsArg) });
  perf.kill('SIGINT');
  await new Promise((resolve) => perf.once('exit', resolve));
  if (result.errors || result.timeouts || result.non2xx) throw new Error(`load failed: ${JSON.stringify({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx })}`);
  requests = result.requests.total;
} finally {
  await server.stop();
}

// Stacks, innermost frame first: inclusive samples per frame (each counted once per sample).
const script = spawnSync('perf', ['script', '-i', data, '-F', 'ip,sym'], { maxBuffer: 1 << 30, encoding: 'utf8' }).stdout;
const inclusive = new Map();
let samples = 0;
for (const block of script.split('\n\n')) {
  const frames = block.split('\n').map((l) => l.trim().split(' ').slice(1).join(' ')).filter(Boolean);
  if (frames.length === 0) continue;
  samples++;
  for (const frame of new Set(frames)) inclusive.set(frame, (inclusive.get(frame) ?? 0) + 1);
}
fs.rmSync(dir, { recursive: true, force: true });
fs.rmSync(`/tmp/perf-${server.pid}.map`, { force: true }); // --perf-basic-prof's symbol map, read by perf script above
const cpuUs = (samples * 1e6) / FREQUENCY / requests;
process.stdout.write(`${side} ${kind}: ${requests} requests, ${samples} samples of the main thread: ${cpuUs.toFixed(0)} µs CPU per request under perf\n\n`);
const pct = (n) => `${((100 * n) / samples).toFixed(1).padStart(5)}%`;
const js = [...inclusive].filter(([f]) => f.startsWith('JS:')).sort((a, b) => b[1] - a[1]).slice(0, 40);
process.stdout.write('JavaScript functions by inclusive share:\n' + js.map(([f, n]) => `  ${pct(n)}  ${f.replace(/^JS:[*^~]?/, '').replace(/file:\/\/\/.*?\/(dist\/)?(src|node_modules)\//, '$2/')}`).join('\n') + '\n\n');
const native = [...inclusive].filter(([f]) => /sqlite3_step|Statement::JS_|StreamBase::Writev|llhttp__internal_execute|Scavenger|MarkCompact|json(Type|Extract)Func|sqlite3VdbeHalt|sqlite3Reprepare/.test(f)).sort((a, b) => b[1] - a[1]);
process.stdout.write('native work by inclusive share:\n' + native.map(([f, n]) => `  ${pct(n)}  ${f}`).join('\n') + '\n');
