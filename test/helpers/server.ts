/**
 * Test harness: real app folders in temp dirs, real `bin/deployd` processes on free loopback ports
 * (`--port 0`, the port is read from the start-up line), real HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = path.join(ROOT, 'bin', 'deployd');

export type Configs = Record<string, Record<string, unknown>>;

const REQUEST_TIMEOUT_MS = 15_000;

/** Creates an app folder with `resources/<name>/config.json` for each entry (and extra files). */
export function makeApp(configs: Configs, files: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deployd-test-'));
  fs.mkdirSync(path.join(dir, 'resources')); // an app folder, even with no collection yet
  for (const [name, config] of Object.entries(configs)) writeConfig(dir, name, config);
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

export function writeConfig(appDir: string, name: string, config: Record<string, unknown> | string): void {
  const folder = path.join(appDir, 'resources', name);
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config, null, 2));
}

export interface StartOptions {
  args?: string[];
  env?: Record<string, string>;
  /** Defaults to a fresh random key passed as MASTER_KEY; `null` lets the server generate one. */
  masterKey?: string | null;
}

export class TestServer {
  output = '';
  constructor(
    readonly proc: ChildProcess,
    readonly url: string,
    readonly appDir: string,
    readonly masterKey: string | undefined,
  ) {}

  /**
   * Fetches `path` and decodes the JSON answer (body is `undefined` when empty). Every request has
   * a deadline, so a hanging server fails the test instead of stalling it.
   */
  async request(method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
    const init: RequestInit = { method, headers: { ...headers }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(this.url + urlPath, init);
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, body: json as any, text };
  }

  get(p: string, headers?: Record<string, string>) { return this.request('GET', p, undefined, headers); }
  post(p: string, body: unknown, headers?: Record<string, string>) { return this.request('POST', p, body, headers); }
  put(p: string, body: unknown, headers?: Record<string, string>) { return this.request('PUT', p, body, headers); }
  del(p: string, headers?: Record<string, string>) { return this.request('DELETE', p, undefined, headers); }

  /** Headers that make a request root. */
  get root(): Record<string, string> {
    if (!this.masterKey) throw new Error('server has no known master key');
    return { 'x-master-key': this.masterKey };
  }

  /** SIGTERM and wait for exit; returns the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc.exitCode;
    const exited = new Promise<number | null>((resolve) => this.proc.once('exit', (code) => resolve(code)));
    this.proc.kill(signal);
    // A server that does not exit within 20 s of its signal is killed: a stuck child must never keep
    // the test file alive (the test that wanted a clean exit code sees null and fails instead).
    const force = setTimeout(() => this.proc.kill('SIGKILL'), 20_000);
    force.unref();
    try {
      return await exited;
    } finally {
      clearTimeout(force);
    }
  }
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/**
 * Every server a test file started that has not exited, and the starts still in flight. The file's
 * last `after` (registered here, so every file that starts servers has it) stops them all: a server
 * left running by a failed `before` or test would keep the file alive and hang the run.
 */
const running = new Set<TestServer>();
const starting = new Set<Promise<unknown>>();

/** Stops every server still running (waiting first for starts in flight); each stop is bounded by `stop()`'s own kill. */
export async function stopRunningServers(): Promise<void> {
  await Promise.allSettled([...starting]);
  await Promise.allSettled([...running].map((server) => server.stop()));
}

after(() => stopRunningServers(), { timeout: 60_000 });

export function startServer(appDir: string, options: StartOptions = {}): Promise<TestServer> {
  const start = launch(appDir, options);
  starting.add(start);
  const forget = () => { starting.delete(start); };
  start.then(forget, forget);
  return start;
}

async function launch(appDir: string, options: StartOptions): Promise<TestServer> {
  const masterKey = options.masterKey === null ? undefined : options.masterKey ?? randomBytes(24).toString('hex');
  const env: Record<string, string> = { ...(process.env as Record<string, string>), LOG_LEVEL: 'warn', ...options.env };
  delete env.MASTER_KEY;
  delete env.DATABASE_URL;
  delete env.PORT;
  if (masterKey) env.MASTER_KEY = masterKey;
  Object.assign(env, options.env ?? {});
  const proc = spawn(BIN, ['--port', '0', '--host', '127.0.0.1', '--app', appDir, ...(options.args ?? [])], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    // Generous: a fresh CI machine may be busy (it is a bound, not a wait: readiness ends it).
    // A server that never said it listens is killed: left running, it would keep the test file alive.
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not start in 60 s:\n${output}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1].replace('localhost', '127.0.0.1'));
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${output}`));
    });
  });
  const server = new TestServer(proc, url, appDir, masterKey);
  running.add(server);
  proc.once('exit', () => running.delete(server));
  server.output = output;
  proc.stdout!.on('data', (c: Buffer) => { server.output += c.toString(); });
  proc.stderr!.on('data', (c: Buffer) => { server.output += c.toString(); });
  return server;
}

/** Polls `fn` until it returns true (for effects that land asynchronously, like hot reload). */
export async function eventually(fn: () => Promise<boolean> | boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The todos schema most tests use (the example app's). */
export const TODOS = {
  type: 'Collection',
  timestamps: true,
  properties: {
    title: { type: 'string', required: true },
    completed: { type: 'boolean' },
    priority: { type: 'number', index: true },
    status: { type: 'string', index: true },
    assignedTo: { type: 'string' },
    tags: { type: 'array' },
    meta: { type: 'object' },
    due: { type: 'date' },
    n: { type: 'number' },
  },
};

/**
 * A server in this process, for tests that observe internals such as the event log (what hooks
 * `emit()` and which changes are published). Listens on a free loopback port.
 */
export async function startInProcess(appDir: string, options: { masterKey?: string; args?: Record<string, unknown> } = {}) {
  const { createServer } = await import('../../src/server.js');
  const masterKey = options.masterKey ?? randomBytes(24).toString('hex');
  const server = await createServer({ appDir, port: 0, host: '127.0.0.1', masterKey, logLevel: 'silent', ...options.args });
  const address = await server.listen();
  const messages: unknown[] = [];
  server.events.subscribe({ event: ({ message }) => messages.push(message), gap: () => {} });
  // HTTP helpers of TestServer; `stop()` closes this in-process server (there is no child process).
  const api = new (class extends TestServer {
    override async stop(): Promise<number | null> {
      await server.close();
      return 0;
    }
  })(undefined as unknown as ChildProcess, address.replace('localhost', '127.0.0.1'), appDir, masterKey);
  return { server, api, messages, close: () => server.close() };
}

/** A loopback port that is free now (listen on 0, read it, close), for servers that must restart on it. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
