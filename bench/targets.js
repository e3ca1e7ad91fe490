/**
 * Servers under test. A target is `{ label, start() }`; `start()` launches a child process on a
 * fresh temp folder and a free loopback port and resolves `{ url, pid, check(), stop() }` (`pid`:
 * the server's own node process, e.g. for /proc/<pid>/status).
 * Child processes keep the load generator (this process) and the server on separate cores.
 * BENCH_CPU_PROF=DIR: every server writes a V8 CPU profile (--cpu-prof) into DIR when it stops.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
// Node 20 refuses --cpu-prof in NODE_OPTIONS, so servers run `node <flags> <script>` directly.
const PROFILE_FLAGS = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(process.env.BENCH_CPU_PROF)] : [];

/** Children still running, killed if the harness itself exits early (Ctrl-C, crash). */
const running = new Set();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => process.exit(130));
}

/**
 * deployd-ts (`bin/deployd`) on an app folder holding `resources/<name>/config.json` per entry,
 * plus `files` (relative path → text), e.g. hook files. `database`: an async function giving the
 * `--db` URL (MongoDB scenarios); the app folder's SQLite file otherwise. `args`: more CLI flags.
 */
export function deployd(resources, { label = 'deployd-ts', env = {}, files = {}, database, args = [] } = {}) {
  return {
    label,
    async start() {
      // What bin/deployd execs (node's snapshot: only the hook workers load isolated-vm), run directly for PROFILE_FLAGS.
      // BENCH_BUILD: another build's dist/ (a copy of an earlier commit's, inside this checkout so
      // node_modules resolve), for before/after runs alternated in one session.
      const entry = path.join(process.env.BENCH_BUILD ? path.resolve(process.env.BENCH_BUILD) : path.join(ROOT, 'dist'), 'src', 'cli', 'main.js');
      if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: build first (npx tsc -p .)`);
      const dir = tempDir();
      for (const [name, config] of Object.entries(resources)) {
        fs.mkdirSync(path.join(dir, 'resources', name), { recursive: true });
        fs.writeFileSync(path.join(dir, 'resources', name, 'config.json'), JSON.stringify(config, null, 2));
      }
      for (const [relative, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, relative)), { recursive: true });
        fs.writeFileSync(path.join(dir, relative), text);
      }
      // MALLOC_ARENA_MAX as bin/deployd sets it.
      const childEnv = { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2', LOG_LEVEL: 'warn', MASTER_KEY: randomBytes(24).toString('hex'), ...env };
      delete childEnv.DATABASE_URL; // the store must be the fresh file in the temp app folder
      delete childEnv.PORT;
      const db = database ? ['--db', await database()] : [];
      return launch(label, process.execPath, [...PROFILE_FLAGS, entry, '--app', dir, '--port', '0', '--host', '127.0.0.1', ...db, ...args], childEnv, dir);
    },
  };
}

/** The bare fastify + better-sqlite3 baseline (bench/baseline-server.js) on a fresh db file. */
export function baseline({ label = 'baseline', script = 'baseline-server.js' } = {}) {
  return {
    label,
    async start() {
      const dir = tempDir();
      const args = [...PROFILE_FLAGS, path.join(HERE, script), '--db', path.join(dir, 'bench.sqlite'), '--port', '0', '--host', '127.0.0.1'];
      return launch(label, process.execPath, args, process.env, dir);
    },
  };
}

/**
 * The floor for a hook in a child process (bench/baseline-hook-server.js): bare fastify +
 * better-sqlite3 and one forked isolated-vm child; MALLOC_ARENA_MAX as bin/deployd sets it, so the
 * memory each holds compares with deployd-ts's.
 */
export function baselineHook({ label = 'baseline (fastify + sqlite + isolated-vm child)' } = {}) {
  return {
    label,
    async start() {
      const dir = tempDir();
      const args = [...PROFILE_FLAGS, path.join(HERE, 'baseline-hook-server.js'), '--db', path.join(dir, 'bench.sqlite'), '--port', '0', '--host', '127.0.0.1'];
      return launch(label, process.execPath, args, { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' }, dir);
    },
  };
}

/** The bare fastify + mongodb driver baseline (bench/baseline-mongo-server.js) on a fresh database. */
export function baselineMongo(database, { label = 'baseline (fastify + mongodb)' } = {}) {
  return {
    label,
    async start() {
      const dir = tempDir();
      const args = [...PROFILE_FLAGS, path.join(HERE, 'baseline-mongo-server.js'), '--db', await database(), '--port', '0', '--host', '127.0.0.1'];
      return launch(label, process.execPath, args, process.env, dir);
    },
  };
}

/** The bare fastify + ws baseline (bench/baseline-ws-server.js): the same insert, then a broadcast. */
export function baselineWs({ label = 'baseline (fastify + ws)' } = {}) {
  return baseline({ label, script: 'baseline-ws-server.js' });
}

export function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'deployd-bench-'));
}

/** Spawns the server, waits for its "listening on http://…" line, and returns its handle. */
export async function launch(label, command, args, env, dir) {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = ''; // kept (bounded) for error messages; reading also keeps the pipes drained
  const collect = (chunk) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    running.delete(child);
    resolve(signal ?? code);
  }));

  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  let url;
  try {
    url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label} did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      const onData = () => {
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      child.stdout.on('data', onData);
      child.once('error', (err) => { clearTimeout(timer); reject(err); });
      exited.then((code) => { clearTimeout(timer); reject(new Error(`${label} exited (${code}) before listening`)); });
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    cleanup();
    throw new Error(`${err.message}\n--- ${label} output ---\n${output}`);
  }

  return {
    url,
    pid: child.pid,
    /** Throws if the server died during the run (a crash must not pass for a slow result). */
    check() {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${label} exited during the run\n--- ${label} output ---\n${output}`);
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      cleanup();
    },
  };
}
