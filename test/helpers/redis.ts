/**
 * A real redis-server on a free loopback port, for the cluster tests. It can be stopped (SIGTERM:
 * Redis saves its data first), killed (SIGKILL: whatever was not saved is gone) and started again
 * on the same port. Missing redis-server is an error, never a skip: `.ci/run` installs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './server.js';

export interface RedisOptions {
  /** Append-only file with fsync on every write: a SIGTERM or SIGKILL restart keeps every entry. Off: nothing survives a restart. */
  persistent?: boolean;
}

export class RedisServer {
  private proc: ChildProcess | undefined;
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deployd-redis-'));

  private constructor(readonly port: number, private readonly options: RedisOptions) {}

  /** A server on a free port; `launch: false` only reserves the port (Redis is "down" until `launch()`). */
  static async start(options: RedisOptions = {}, launch = true): Promise<RedisServer> {
    RedisServer.assertInstalled();
    const server = new RedisServer(await freePort(), options);
    if (launch) await server.launch();
    return server;
  }

  /** Throws, saying how to install it, when redis-server is missing. */
  static assertInstalled(): void {
    const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
    if (found.error || found.status !== 0) {
      throw new Error('redis-server is not installed (the cluster tests need a real one): run `bash .ci/run`, or `apt-get install redis-server`');
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts redis-server (again) on the same port and waits until it answers PING. */
  async launch(): Promise<void> {
    const persistence = this.options.persistent
      ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
      : ['--appendonly', 'no', '--save', ''];
    let output = '';
    const proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--daemonize', 'no', ...persistence], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    proc.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    this.proc = proc;
    const deadline = Date.now() + 10_000;
    while (!(await this.ping())) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer in 10 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGTERM (Redis writes its data and exits) or SIGKILL; waits for the exit. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  }

  async close(): Promise<void> {
    await this.stop('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** One inline PING over a raw socket (no client library: this checks the server, not ioredis). */
  private ping(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = net.connect(this.port, '127.0.0.1');
      const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
      socket.setTimeout(500, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    });
  }
}
