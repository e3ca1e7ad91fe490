/**
 * The host side of HashiCorp go-plugin (v1.8, gRPC protocol only) for Go hook programs built with
 * hooks-go: start the program, read its handshake, connect, health-check, forward its output to a
 * log, call `deployd.hooks.v1.HookService/Run`, stop it. See
 * ../shared/reference/go-plugin-host-protocol.md §A for the protocol this follows.
 *
 * Security: the socket lives in a fresh 0700 directory of the host; with `autoMTLS` the channel is
 * also mutual TLS (go-plugin AutoMTLS, client certificate from the openssl CLI).
 * Not done here: the gRPC broker (plugin → host callbacks), restarts (the caller owns the restart
 * policy: see `exited`).
 *
 * Host death: every live plugin is SIGKILLed from `process.on('exit')`, which covers a normal exit,
 * `process.exit()` and an uncaught exception. A host killed by SIGKILL (or a signal without a
 * handler) runs no code, and go-plugin itself does not notice its parent's death: hooks-go's
 * `Serve` watches `os.Getppid()` and exits (removing its socket) when the host is gone. A prebuilt
 * program not built on hooks-go may not, and would then outlive a SIGKILLed host.
 *
 * HookService/Run, the hot path, goes over its own lean HTTP/2 channel (./unary-channel.ts);
 * grpc-js serves the health check, the stdio stream and the shutdown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { generateClientCertificate, serverCertificatePem, type ClientCertificate } from './mtls.js';
import { LOADER_OPTIONS, pluginServices } from './plugin-protos.js';
import { UnaryChannel } from './unary-channel.js';

/** hooks-go's handshake (hooks-go/hooks/serve.go). */
export const MAGIC_COOKIE_KEY = 'DPD_HOOK_PLUGIN';
export const MAGIC_COOKIE_VALUE = 'deployd-ts-go-hooks-0f3c9a7e2b6d4815';
export const PROTOCOL_VERSION = 1;
const CORE_PROTOCOL_VERSION = 1;

export type PluginLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
/** Receives the plugin's log lines (hclog JSON on stderr, GRPCStdio output, stray stdout). */
export type PluginLog = (level: PluginLogLevel, message: string, fields: Record<string, unknown>) => void;

export type GoPluginErrorCode =
  | 'SPAWN' // the binary could not be started (ENOENT, EACCES…)
  | 'START_TIMEOUT' // no handshake / not healthy within startTimeoutMs
  | 'EXITED' // the plugin exited (before the handshake, or during a call)
  | 'HANDSHAKE' // the handshake line is not what we speak
  | 'UNHEALTHY' // the health check failed
  | 'DEADLINE' // a Run did not finish within its deadline
  | 'RPC' // any other gRPC error of a Run
  | 'STOPPED'; // the plugin was stopped

export class GoPluginError extends Error {
  constructor(
    readonly code: GoPluginErrorCode,
    message: string,
    readonly grpcCode?: grpc.status,
  ) {
    super(message);
    this.name = 'GoPluginError';
  }
}

export interface GoPluginStartOptions {
  /** The plugin program. */
  binary: string;
  args?: string[];
  /** A name for messages; default the binary's base name. */
  name?: string;
  /**
   * Where the per-plugin socket directory is created (a fresh `mkdtemp` directory, mode 0700,
   * removed by stop()); default os.tmpdir(). Keep it short: unix socket paths are limited to
   * ~107 bytes.
   */
  socketDir?: string;
  log: PluginLog;
  /** Extra environment for the plugin. */
  env?: Record<string, string>;
  /** Whether the plugin inherits the host's environment (go-plugin's default); default true. */
  inheritEnv?: boolean;
  /** Handshake + health check must finish within this; default 10 000 ms. */
  startTimeoutMs?: number;
  /**
   * go-plugin AutoMTLS: mutual TLS on the plugin connection with throw-away certificates (needs
   * the openssl CLI; adds ~30 ms to the start). Default false.
   */
  autoMTLS?: boolean;
  /** With autoMTLS: the host's certificate to present (default: a new one for this start). */
  clientCertificate?: ClientCertificate;
  /** hooks.proto; default proto/deployd/hooks/v1/hooks.proto of this package. */
  protoFile?: string;
}

/** How the plugin process ended. */
export interface PluginExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * HookService messages as @grpc/proto-loader objects (keepCase: snake_case fields; enums as
 * strings, e.g. `event: 'EVENT_POST'`; bytes as Buffers; with defaults, so a missing message field
 * is null, repeated fields [] and maps {}).
 */
export interface ProtoEventContext {
  collection?: string;
  event: string | number;
  method?: string;
  request_event?: string;
  data_json?: Buffer | Uint8Array;
  previous_json?: Buffer | Uint8Array;
  query_json?: Buffer | Uint8Array;
  caller?: { is_root?: boolean; me_json?: Buffer | Uint8Array } | null;
  internal?: boolean;
  request_id?: string;
  success?: boolean;
  url?: string;
  body_json?: Buffer | Uint8Array;
}

export interface ProtoHookResult {
  data_json: Buffer;
  cancel: { message: string; status: number; is_error: boolean } | null;
  errors: Record<string, string>;
  hidden: string[];
  protected: string[];
  emits: { event: string; data_json: Buffer; room: string; users_collection: string; users_query_json: Buffer }[];
  response: { replace_data: boolean; data_json: Buffer; add_fields_json: Buffer; messages: string[]; status: number } | null;
  logs: { level: string; message: string; fields_json: Buffer }[];
  query_json: Buffer;
  session_rooms: { join: string[]; leave: string[]; leave_all: boolean } | null;
}

const DEFAULT_PROTO_FILE = fileURLToPath(new URL('../../../../proto/deployd/hooks/v1/hooks.proto', import.meta.url));
const STOP_GRACE_MS = 2000;
/** Big enough for any document; grpc-js defaults to 4 MiB receive. */
const MAX_MESSAGE_BYTES = 0x7fffffff;

const hookDefinitions = new Map<string, protoLoader.PackageDefinition>();
function hookService(file: string): protoLoader.MethodDefinition<object, object> {
  let def = hookDefinitions.get(file);
  if (!def) {
    def = protoLoader.loadSync(file, LOADER_OPTIONS);
    hookDefinitions.set(file, def);
  }
  return (def['deployd.hooks.v1.HookService'] as protoLoader.ServiceDefinition).Run;
}

function method(service: string, name: string): protoLoader.MethodDefinition<object, object> {
  return (pluginServices()[service] as protoLoader.ServiceDefinition)[name];
}

/** Plugins still running, killed synchronously when the host process exits. */
const live = new Set<GoPluginProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) p.killNow();
  });
}

/** Tracks hclog's "panic: … / fatal error: …" state: untagged lines after one are errors. */
class StderrParser {
  private panicking = false;

  constructor(private readonly log: PluginLog) {}

  line(raw: string): void {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    if (line.startsWith('{')) {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry && typeof entry === 'object' && !Array.isArray(entry)) {
          const fields: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(entry)) {
            if (k === '@level' || k === '@message' || k === '@timestamp') continue;
            fields[k.startsWith('@') ? k.slice(1) : k] = v;
          }
          if (typeof entry['@timestamp'] === 'string') fields.time = entry['@timestamp'];
          const level = levelOf(entry['@level']);
          if (level === undefined || typeof entry['@message'] !== 'string') this.log('debug', line, {});
          else this.log(level, entry['@message'], fields);
          return;
        }
      } catch {
        // not JSON: fall through
      }
    }
    const tagged = /^\[(TRACE|DEBUG|INFO|WARN|ERROR)\]\s*/.exec(line);
    if (tagged) {
      this.log(tagged[1].toLowerCase() as PluginLogLevel, line.slice(tagged[0].length), {});
      return;
    }
    if (line.startsWith('panic: ') || line.startsWith('fatal error: ')) this.panicking = true;
    this.log(this.panicking ? 'error' : 'debug', line, {});
  }
}

function levelOf(v: unknown): PluginLogLevel | undefined {
  switch (v) {
    case 'trace':
    case 'debug':
    case 'info':
    case 'warn':
    case 'error':
      return v;
    case 'warning':
      return 'warn';
    default:
      return undefined;
  }
}

interface Handshake {
  network: 'unix' | 'tcp';
  address: string;
  /** Field 6: the plugin's certificate (AutoMTLS), base64 DER without padding; '' without. */
  serverCert: string;
}

/** Validates go-plugin's handshake line (§A.3); throws a GoPluginError('HANDSHAKE'). */
export function parseHandshake(line: string, name: string): Handshake {
  const parts = line.trim().split('|');
  if (parts.length < 4) {
    throw new GoPluginError(
      'HANDSHAKE',
      `Go plugin ${name}: unrecognized handshake ${JSON.stringify(line.slice(0, 200))} on stdout: ` +
        'is it a Go hook program built with hooks-go (hooks.Serve), for this OS and architecture?',
    );
  }
  const [core, app, network, address, protocol = 'netrpc', cert = ''] = parts;
  if (Number(core) !== CORE_PROTOCOL_VERSION) {
    throw new GoPluginError(
      'HANDSHAKE',
      `Go plugin ${name}: incompatible go-plugin core protocol version ${core} (want ${CORE_PROTOCOL_VERSION})`,
    );
  }
  if (Number(app) !== PROTOCOL_VERSION) {
    throw new GoPluginError(
      'HANDSHAKE',
      `Go plugin ${name}: incompatible hook protocol version ${app} (host speaks ${PROTOCOL_VERSION}); rebuild it against this deployd-ts's hooks-go`,
    );
  }
  if (network !== 'unix' && network !== 'tcp') {
    throw new GoPluginError('HANDSHAKE', `Go plugin ${name}: unsupported network ${JSON.stringify(network)} (want unix)`);
  }
  if (protocol !== 'grpc') {
    throw new GoPluginError('HANDSHAKE', `Go plugin ${name}: speaks protocol ${JSON.stringify(protocol)}; only grpc is supported`);
  }
  if (!address) throw new GoPluginError('HANDSHAKE', `Go plugin ${name}: empty address in handshake`);
  // go-plugin treats field 6 as a certificate only when it is longer than 50 characters.
  return { network, address, serverCert: cert.length > 50 ? cert : '' };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** One running Go hook program. */
export class GoPluginProcess {
  /** Settles (never rejects) when the process has exited, for whatever reason. */
  readonly exited: Promise<PluginExit>;
  private exitInfo: PluginExit | undefined;
  private closed = false;
  private stopping: Promise<void> | undefined;
  private client: grpc.Client | undefined;
  /** HookService/Run's own lean channel (see unary-channel.ts); grpc-js serves the rest. */
  private runChannel: UnaryChannel | undefined;
  private stdio: grpc.ClientReadableStream<unknown> | undefined;
  private readonly runMethod: protoLoader.MethodDefinition<object, object>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    /** The private directory holding the socket (removed by stop()). */
    readonly socketDir: string,
    private readonly log: PluginLog,
    protoFile: string,
  ) {
    this.runMethod = hookService(protoFile);
    this.exited = new Promise((resolve) => {
      const ended = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (this.exitInfo) return;
        this.exitInfo = { code, signal };
        live.delete(this);
        resolve(this.exitInfo);
      };
      child.once('exit', ended);
      child.once('close', () => (this.closed = true));
      // A process that could not be spawned (ENOENT, EACCES) emits 'error' and maybe no 'exit'.
      // (Kept for the object's life, so a later 'error', e.g. a failed kill, is never unhandled.)
      child.on('error', () => {
        if (child.pid === undefined) ended(null, null);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True until the process exits. */
  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** The socket address from the handshake (`unix:///…` target), once connected. */
  address: string | undefined;
  /** Whether the connection is mutual TLS (AutoMTLS). */
  tls = false;

  /**
   * Starts the plugin and resolves once it is connected and healthy. Rejects with a GoPluginError
   * (the process is then killed and its socket directory removed).
   */
  static async start(options: GoPluginStartOptions): Promise<GoPluginProcess> {
    const name = options.name ?? path.basename(options.binary);
    const timeoutMs = options.startTimeoutMs ?? 10_000;
    const clientCert = options.autoMTLS ? (options.clientCertificate ?? (await generateClientCertificate())) : undefined;
    const dir = fs.mkdtempSync(path.join(options.socketDir ?? os.tmpdir(), 'dpd-go-'));
    const env: NodeJS.ProcessEnv = {
      ...(options.inheritEnv === false ? {} : process.env),
      ...options.env,
      [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE,
      PLUGIN_PROTOCOL_VERSIONS: String(PROTOCOL_VERSION),
      PLUGIN_MIN_PORT: '10000',
      PLUGIN_MAX_PORT: '25000',
      PLUGIN_UNIX_SOCKET_DIR: dir,
    };
    delete env.PLUGIN_CLIENT_CERT;
    delete env.PLUGIN_MULTIPLEX_GRPC;
    if (clientCert) env.PLUGIN_CLIENT_CERT = clientCert.certPem;
    let child: ChildProcess;
    try {
      child = spawn(options.binary, options.args ?? [], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new GoPluginError('SPAWN', `Go plugin ${name}: cannot start ${options.binary}: ${(err as Error).message}`);
    }
    installExitHook();
    const p = new GoPluginProcess(name, child, dir, options.log, options.protoFile ?? DEFAULT_PROTO_FILE);
    if (child.pid !== undefined) live.add(p);
    try {
      await p.connect(timeoutMs, clientCert);
      return p;
    } catch (err) {
      p.killNow();
      await p.exited;
      p.releaseStdio();
      p.runChannel?.close();
      p.client?.close();
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private async connect(timeoutMs: number, clientCert: ClientCertificate | undefined): Promise<void> {
    const child = this.child;
    const started = Date.now();
    const stderrTail: string[] = [];
    let handshakeDone = false;
    const stderrParser = new StderrParser(this.log);
    const errLines = readline.createInterface({ input: child.stderr!, crlfDelay: Infinity });
    errLines.on('line', (line) => {
      if (!handshakeDone) {
        stderrTail.push(line);
        if (stderrTail.length > 20) stderrTail.shift();
      }
      stderrParser.line(line);
    });
    const outLines = readline.createInterface({ input: child.stdout!, crlfDelay: Infinity });
    const withStderr = (msg: string): string =>
      stderrTail.length ? `${msg}; stderr:\n${stderrTail.join('\n').slice(-4000)}` : msg;

    const handshake = await new Promise<Handshake>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new GoPluginError('START_TIMEOUT', withStderr(`Go plugin ${this.name}: no handshake within ${timeoutMs} ms`)));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        child.off('error', onError);
        child.off('close', onClose);
      };
      const onError = (err: Error): void => {
        done();
        reject(new GoPluginError('SPAWN', `Go plugin ${this.name}: cannot start: ${err.message}`));
      };
      // 'close' (not 'exit'): the stdio streams are drained, so stderrTail is complete.
      const onClose = (code: number | null, signal: NodeJS.Signals | null): void => {
        done();
        const how = signal ? `signal ${signal}` : `code ${code}`;
        reject(new GoPluginError('EXITED', withStderr(`Go plugin ${this.name}: exited (${how}) before the go-plugin handshake`)));
      };
      child.once('error', onError);
      child.once('close', onClose);
      outLines.once('line', (line) => {
        done();
        try {
          resolve(parseHandshake(line, this.name));
        } catch (err) {
          reject(err);
        }
      });
    });
    handshakeDone = true;
    // Keep draining stdout: go-plugin only writes the handshake there, anything else is stray.
    outLines.on('line', (line) => this.log('info', line, { stream: 'stdout' }));

    const target = handshake.network === 'unix' ? `unix://${handshake.address}` : handshake.address;
    this.address = target;
    let credentials = grpc.credentials.createInsecure();
    if (clientCert) {
      if (!handshake.serverCert) {
        throw new GoPluginError('HANDSHAKE', `Go plugin ${this.name}: AutoMTLS requested but the plugin sent no certificate (go-plugin too old?)`);
      }
      credentials = grpc.credentials.createSsl(
        Buffer.from(serverCertificatePem(handshake.serverCert)),
        Buffer.from(clientCert.keyPem),
        Buffer.from(clientCert.certPem),
      );
    } else if (handshake.serverCert) {
      throw new GoPluginError('HANDSHAKE', `Go plugin ${this.name}: the plugin serves TLS, but no AutoMTLS was requested`);
    }
    this.tls = clientCert !== undefined;
    const [host, port] = [handshake.address.slice(0, handshake.address.lastIndexOf(':')), Number(handshake.address.slice(handshake.address.lastIndexOf(':') + 1))];
    this.runChannel = new UnaryChannel(
      handshake.network === 'unix' ? { path: handshake.address } : { host, port },
      clientCert ? { ca: serverCertificatePem(handshake.serverCert), key: clientCert.keyPem, cert: clientCert.certPem } : undefined,
    );
    this.client = new grpc.Client(target, credentials, {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      'grpc.default_authority': 'localhost',
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.enable_retries': 0,
    });

    // Health check until SERVING (the socket is listening before the handshake is printed, so
    // this normally passes the first time).
    let lastError = '';
    for (;;) {
      if (!this.alive) throw new GoPluginError('EXITED', withStderr(`Go plugin ${this.name}: exited during start`));
      const remaining = timeoutMs - (Date.now() - started);
      if (remaining <= 0) {
        throw new GoPluginError('START_TIMEOUT', withStderr(`Go plugin ${this.name}: not healthy within ${timeoutMs} ms (${lastError})`));
      }
      try {
        const res = (await this.unary(method('grpc.health.v1.Health', 'Check'), { service: 'plugin' }, Math.min(remaining, 2000))) as {
          status: string;
        };
        if (res.status === 'SERVING') break;
        lastError = `health status ${res.status}`;
        if (res.status === 'SERVICE_UNKNOWN') throw new GoPluginError('UNHEALTHY', `Go plugin ${this.name}: health check: ${lastError}`);
      } catch (err) {
        if (err instanceof GoPluginError) throw err;
        const e = err as grpc.ServiceError;
        if (e.code === grpc.status.UNIMPLEMENTED) {
          throw new GoPluginError('UNHEALTHY', `Go plugin ${this.name}: no gRPC health service: ${e.details}`, e.code);
        }
        lastError = e.message;
      }
      await delay(50);
    }
    // Keep the Run channel warm: connected (and TLS-handshaken) before the first hook call.
    await this.runChannel.warm(Math.max(1000, timeoutMs - (Date.now() - started)));
    this.openStdio();
  }

  /** GRPCStdio/StreamStdio, once: the plugin's os.Stdout/os.Stderr → log. */
  private openStdio(): void {
    const m = method('plugin.GRPCStdio', 'StreamStdio');
    const call = this.client!.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, {});
    this.stdio = call;
    const pending: Record<number, string> = { 1: '', 2: '' };
    const flush = (channel: 1 | 2, final: boolean): void => {
      const lines = pending[channel].split('\n');
      pending[channel] = final ? '' : lines.pop()!;
      for (const line of lines) {
        if (line !== '') this.log(channel === 1 ? 'info' : 'warn', line, { stream: channel === 1 ? 'stdout' : 'stderr' });
      }
    };
    call.on('data', (msg: { channel: string; data: Buffer }) => {
      const channel = msg.channel === 'STDERR' ? 2 : 1;
      pending[channel] += msg.data.toString('utf8');
      flush(channel, false);
    });
    const end = (): void => {
      flush(1, true);
      flush(2, true);
    };
    call.on('end', end);
    call.on('error', (err: grpc.ServiceError) => {
      end();
      if (err.code === grpc.status.UNIMPLEMENTED || err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.CANCELLED) return;
      this.log('debug', `GRPCStdio stream ended: ${err.message}`, {});
    });
  }

  private unary(m: protoLoader.MethodDefinition<object, object>, request: object, timeoutMs: number): Promise<object> {
    return new Promise((resolve, reject) => {
      if (!this.client) return reject(new GoPluginError('STOPPED', `Go plugin ${this.name}: not connected`));
      this.client.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + Math.max(0, timeoutMs) },
        (err, res) => (err ? reject(err) : resolve(res!)),
      );
    });
  }

  /**
   * Calls HookService/Run. Rejects with GoPluginError: 'DEADLINE' when it takes longer than
   * deadlineMs, 'EXITED' when the plugin died (the caller should restart it), 'STOPPED' after
   * stop(), 'RPC' for any other gRPC failure. Hook failures (cancel, error, panic) are not
   * rejections: they are in the result's `cancel`.
   */
  async run(eventContext: ProtoEventContext, deadlineMs: number): Promise<ProtoHookResult> {
    if (this.stopping) throw new GoPluginError('STOPPED', `Go plugin ${this.name}: stopped`);
    if (!this.alive) throw new GoPluginError('EXITED', `Go plugin ${this.name}: ${this.exitText()}`);
    const deadline = Date.now() + Math.max(0, deadlineMs);
    try {
      if (!this.runChannel) throw new GoPluginError('STOPPED', `Go plugin ${this.name}: not connected`);
      const m = this.runMethod;
      return m.responseDeserialize(await this.runChannel.call(m.path, m.requestSerialize(eventContext), deadlineMs)) as ProtoHookResult;
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (e instanceof GoPluginError) throw e;
      // grpc-go resets the stream (RST_STREAM CANCEL → CANCELLED) when its copy of the deadline
      // fires; under load that can reach us before our own deadline timer does.
      if (e.code === grpc.status.DEADLINE_EXCEEDED || (e.code === grpc.status.CANCELLED && !this.stopping && Date.now() >= deadline - 5)) {
        throw new GoPluginError('DEADLINE', `Go plugin ${this.name}: hook did not finish within ${deadlineMs} ms`, e.code);
      }
      if (this.stopping) throw new GoPluginError('STOPPED', `Go plugin ${this.name}: stopped during the call`, e.code);
      if (e.code === grpc.status.UNAVAILABLE || !this.alive) {
        // Give the exit event a moment, to say "exited" rather than a transport error.
        const exit = await Promise.race([this.exited, delay(100).then(() => undefined)]);
        if (exit) throw new GoPluginError('EXITED', `Go plugin ${this.name}: ${this.exitText()} during the call`, e.code);
      }
      throw new GoPluginError('RPC', `Go plugin ${this.name}: Run failed: ${e.message}`, e.code);
    }
  }

  private exitText(): string {
    const x = this.exitInfo;
    if (!x) return 'running';
    return `exited (${x.signal ? `signal ${x.signal}` : `code ${x.code}`})`;
  }

  /** Health check (`grpc.health.v1.Health/Check` "plugin"); true when SERVING. */
  async ping(timeoutMs = 1000): Promise<boolean> {
    try {
      const res = (await this.unary(method('grpc.health.v1.Health', 'Check'), { service: 'plugin' }, timeoutMs)) as { status: string };
      return res.status === 'SERVING';
    } catch {
      return false;
    }
  }

  /**
   * Stops the plugin: GRPCController/Shutdown (its reply is usually lost: ignored), SIGKILL if it
   * has not exited after 2 s, then closes the channel and removes the socket directory. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.alive && this.client) {
        const m = method('plugin.GRPCController', 'Shutdown');
        this.unary(m, {}, STOP_GRACE_MS).catch(() => undefined);
        const exited = await Promise.race([this.exited, delay(STOP_GRACE_MS).then(() => undefined)]);
        if (!exited) this.log('warn', `Go plugin ${this.name} did not exit ${STOP_GRACE_MS} ms after Shutdown: killing it`, {});
      }
      if (this.alive) {
        this.killNow();
        await this.exited;
      }
      // Let the last output arrive, then drop the pipes (a grandchild may still hold them).
      if (!this.closed) await Promise.race([once(this.child, 'close'), delay(200)]);
      this.releaseStdio();
      this.stdio?.cancel();
      this.runChannel?.close();
      this.client?.close();
      fs.rmSync(this.socketDir, { recursive: true, force: true });
    })();
    return this.stopping;
  }

  private releaseStdio(): void {
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
  }

  /** SIGKILL now and remove the socket directory, synchronously (for process 'exit'). */
  killNow(): void {
    if (this.alive) {
      try {
        this.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    try {
      fs.rmSync(this.socketDir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}
