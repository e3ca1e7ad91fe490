/**
 * The MongoDB the bench's MongoDB scenarios run on: MONGODB_URL if set, else one FerretDB process
 * (scripts/ferretdb.sh; SQLite backend, data in a temp dir) started on first use and killed when the
 * bench exits. Every call returns a URL naming a fresh database, so each server starts empty.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let base;

export async function mongoUrl() {
  base ??= process.env.MONGODB_URL ? Promise.resolve(process.env.MONGODB_URL.replace(/\/[^/?]*(\?.*)?$/, '/')) : startFerretDb();
  return `${await base}bench_${randomBytes(6).toString('hex')}`;
}

async function startFerretDb() {
  const binary = execFileSync('bash', [path.join(ROOT, 'scripts', 'ferretdb.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-ferretdb-'));
  const port = await freePort();
  const child = spawn(binary, ['--handler=sqlite', `--sqlite-url=file:${dir}/`, `--state-dir=${dir}`, `--listen-addr=127.0.0.1:${port}`, '--debug-addr=-', '--telemetry=disable', '--log-level=error'], { stdio: 'ignore' });
  child.unref(); // the bench exits when it is done; FerretDB goes with it
  process.once('exit', () => {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('FerretDB did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return `mongodb://127.0.0.1:${port}/`;
}

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}
