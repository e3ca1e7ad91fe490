/**
 * A real MongoDB-wire server for tests. With MONGODB_URL set, that server (each test gets a database
 * of its own); otherwise FerretDB v1.24.2 over SQLite, built once by scripts/ferretdb.sh and run on
 * a free loopback port with its data in a temp dir. Fault tests need a server they can stop and
 * start, so `startFerretDb` always runs FerretDB (see test/MONGODB.md).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, ROOT } from './server.js';

export interface MongoTarget {
  /** A URL naming a fresh database on the server (options appended as given). */
  url(options?: string): string;
  /** True for FerretDB, false for MONGODB_URL's server. */
  readonly ferret: boolean;
  close(): Promise<void>;
}

/** MONGODB_URL's server if set, else a FerretDB of this test file's own. */
export async function mongoTarget(): Promise<MongoTarget> {
  const external = process.env.MONGODB_URL;
  if (external) {
    return {
      ferret: false,
      url: (options) => withDatabase(external, freshName(), options),
      close: async () => {},
    };
  }
  return startFerretDb();
}

export class FerretDb implements MongoTarget {
  readonly ferret = true;
  private proc: ChildProcess | undefined;
  output = '';

  constructor(readonly binary: string, readonly port: number, readonly dataDir: string) {}

  url(options?: string): string {
    return withDatabase(`mongodb://127.0.0.1:${this.port}/`, freshName(), options);
  }

  /** Starts the process (again) on the same port and data, and waits until it accepts connections. */
  async start(): Promise<void> {
    if (this.proc) throw new Error('FerretDB is already running');
    const proc = spawn(this.binary, [
      '--handler=sqlite', `--sqlite-url=file:${this.dataDir}/`, `--state-dir=${this.dataDir}`,
      `--listen-addr=127.0.0.1:${this.port}`, '--debug-addr=-', '--telemetry=disable', '--log-level=error',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout!.on('data', (c: Buffer) => { this.output += c.toString(); });
    proc.stderr!.on('data', (c: Buffer) => { this.output += c.toString(); });
    proc.once('exit', () => { if (this.proc === proc) this.proc = undefined; });
    const deadline = Date.now() + 15_000;
    while (!(await accepts(this.port))) {
      if (this.proc !== proc) throw new Error(`FerretDB exited at start:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`FerretDB did not listen in 15 s:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the process (the data stays) and waits for it to exit. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    await exited;
  }

  async close(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A FerretDB on a free loopback port, started (`start: false` leaves it stopped). */
export async function startFerretDb(options: { start?: boolean } = {}): Promise<FerretDb> {
  const binary = ferretDbBinary();
  const server = new FerretDb(binary, await freePort(), fs.mkdtempSync(path.join(os.tmpdir(), 'ferretdb-')));
  if (options.start !== false) await server.start();
  return server;
}

let binaryPath: string | undefined;

/** Builds FerretDB on first use (`make test` builds it before the tests, so this is a lookup). */
export function ferretDbBinary(): string {
  binaryPath ??= execFileSync('bash', [path.join(ROOT, 'scripts', 'ferretdb.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  return binaryPath;
}

function freshName(): string {
  return `dpd_test_${randomBytes(6).toString('hex')}`;
}

function withDatabase(url: string, database: string, options?: string): string {
  const parsed = /^(mongodb(?:\+srv)?:\/\/[^/?]+)\/?([^?]*)(?:\?(.*))?$/.exec(url);
  if (!parsed) throw new Error(`MONGODB_URL is not a mongodb:// URL: ${url}`);
  const query = [parsed[3], options].filter(Boolean).join('&');
  return `${parsed[1]}/${database}${query ? `?${query}` : ''}`;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}
