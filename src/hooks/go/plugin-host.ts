/**
 * The host side of HashiCorp go-plugin (v1.8, gRPC protocol only) for Go hook programs built with
 * hooks-go: start the program, read its handshake, connect, health-check, forward its output to a
 * log, call `deployd.hooks.v1.HookService/Run`, stop it. See
 * ../shared/reference/go-plugin-host-protocol.md §A for the protocol this follows. Its parts:
 * the handshake (./handshake.ts), the plugin's log lines (./plugin-log.ts), the messages
 * (./proto-convert.ts) and the error kinds (./plugin-error.ts).
 *
 * Security: the socket lives in a fresh 0700 directory of the host; with `autoMTLS` the channel is
 * also mutual TLS (go-plugin AutoMTLS, client certificate from the openssl CLI).
 * Host callbacks: with `host`, the host serves HostService (`dpd` calls) on a socket of its own in
 * the same private directory, with the same mutual TLS, and announces it to the plugin over
 * go-plugin's GRPCBroker stream (ConnInfo, service id BROKER_ID_HOST_SERVICE); the plugin dials it.
 * Not done here: restarts (the caller owns the restart policy, ./sidecars.ts: see `exited`).
 *
 * Host death: every live plugin is SIGKILLed from `process.on('exit')`, which covers a normal exit,
 * `process.exit()` and an uncaught exception. A host killed by SIGKILL (or a signal without a
 * handler) runs no code, and go-plugin itself does not notice its parent's death: hooks-go's
 * `Serve` watches `os.Getppid()` and exits (removing its socket) when the host is gone. A prebuilt
 * program not built on hooks-go may not, and would then outlive a SIGKILLed host.
 *
 * HookService calls, the hot path, go over their own lean HTTP/2 channel (./unary-channel.ts): all
 * of them over one RunStream stream when the program has it (hooks-go does), else one Run call
 * each; grpc-js serves the health check, the stdio stream, the broker and the shutdown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { HostService, type HostServiceHandler } from './host-service.js';
import { handshakeEnv, parseHandshake, targetOf, type Handshake } from './handshake.js';
import { generateClientCertificate, serverCertificatePem, type ClientCertificate } from './mtls.js';
import { GoPluginError } from './plugin-error.js';
import { PluginStderr, PluginStdio, type PluginLog } from './plugin-log.js';
import { DEFAULT_HOOKS_PROTO, hookMethod, pluginMethod } from './plugin-protos.js';
import type { ProtoEventContext, ProtoHookResult } from './proto-convert.js';
import { CallStream, UnaryChannel } from './unary-channel.js';

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
  /** Serve HostService to the plugin (its hooks' `dpd` calls); absent: no callbacks. */
  host?: HostServiceHandler;
}

/** How the plugin process ended. */
export interface PluginExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const STOP_GRACE_MS = 2000;
/** Big enough for any document; grpc-js defaults to 4 MiB receive. */
const MAX_MESSAGE_BYTES = 0x7fffffff;

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
  /** HookService/RunStream: every Run over one stream, when the program has it (hooks-go does). */
  private readonly streamMethod: protoLoader.MethodDefinition<object, object>;
  private callStream: CallStream | undefined;
  private nextCall = 0;
  /** HostService for the plugin's callbacks (./host-service.ts). */
  private readonly hostService = new HostService();

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    /** The private directory holding the socket (removed by stop()). */
    readonly socketDir: string,
    private readonly log: PluginLog,
    private readonly protoFile: string,
  ) {
    this.runMethod = hookMethod(protoFile, 'Run');
    this.streamMethod = hookMethod(protoFile, 'RunStream');
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

  /** Whether hook calls go over one RunStream stream (else one Run call each). */
  get streaming(): boolean {
    return this.callStream?.usable ?? false;
  }

  /**
   * Starts the plugin and resolves once it is connected and healthy. Rejects with a GoPluginError
   * (the process is then killed and its socket directory removed).
   */
  static async start(options: GoPluginStartOptions): Promise<GoPluginProcess> {
    const name = options.name ?? path.basename(options.binary);
    const timeoutMs = options.startTimeoutMs ?? 10_000;
    const clientCert = options.autoMTLS ? (options.clientCertificate ?? (await generateClientCertificate())) : undefined;
    const dir = fs.mkdtempSync(path.join(options.socketDir ?? os.tmpdir(), 'dpd-go-'));
    const env = handshakeEnv(options.inheritEnv === false ? {} : process.env, options.env, dir, clientCert?.certPem);
    let child: ChildProcess;
    try {
      child = spawn(options.binary, options.args ?? [], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new GoPluginError('SPAWN', `Go plugin ${name}: cannot start ${options.binary}: ${(err as Error).message}`);
    }
    installExitHook();
    const p = new GoPluginProcess(name, child, dir, options.log, options.protoFile ?? DEFAULT_HOOKS_PROTO);
    if (child.pid !== undefined) live.add(p);
    try {
      await p.connect(timeoutMs, clientCert, options.host);
      return p;
    } catch (err) {
      p.killNow();
      await p.exited;
      p.hostService.close();
      p.releaseStdio();
      p.callStream?.close();
      p.runChannel?.close();
      p.client?.close();
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private async connect(timeoutMs: number, clientCert: ClientCertificate | undefined, callbacks: HostServiceHandler | undefined): Promise<void> {
    const child = this.child;
    const started = Date.now();
    const stderrTail: string[] = [];
    let handshakeDone = false;
    const stderr = new PluginStderr(this.log);
    const errLines = readline.createInterface({ input: child.stderr!, crlfDelay: Infinity });
    errLines.on('line', (line) => {
      if (!handshakeDone) {
        stderrTail.push(line);
        if (stderrTail.length > 20) stderrTail.shift();
      }
      stderr.line(line);
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

    const target = targetOf(handshake);
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
        const res = (await this.unary(pluginMethod('grpc.health.v1.Health', 'Check'), { service: 'plugin' }, Math.min(remaining, 2000))) as {
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
    const sm = this.streamMethod;
    this.callStream = await this.runChannel.openStream(
      sm.path,
      (message) => {
        const a = sm.responseDeserialize(message) as { call_id: string; result: ProtoHookResult | null };
        return { callId: String(a.call_id), answer: a.result };
      },
      Math.max(1000, Math.min(5000, timeoutMs - (Date.now() - started))),
    );
    this.openStdio();
    if (callbacks) {
      await this.hostService.open({
        client: this.client,
        socketDir: this.socketDir,
        protoFile: this.protoFile,
        handler: callbacks,
        clientCert,
        serverCert: handshake.serverCert,
        maxMessageBytes: MAX_MESSAGE_BYTES,
        log: this.log,
        running: () => !this.stopping && this.alive,
      });
    }
  }

  /** GRPCStdio/StreamStdio, once: the plugin's os.Stdout/os.Stderr → log. */
  private openStdio(): void {
    const m = pluginMethod('plugin.GRPCStdio', 'StreamStdio');
    const call = this.client!.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, {});
    this.stdio = call;
    const lines = new PluginStdio(this.log);
    call.on('data', (msg: { channel: string; data: Buffer }) => lines.data(msg.channel, msg.data));
    const end = (): void => lines.end();
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
      const stream = this.callStream;
      if (stream?.usable) {
        const id = String(++this.nextCall);
        const message = this.streamMethod.requestSerialize({ call_id: id, context: eventContext, deadline_ms: Math.max(1, Math.ceil(deadlineMs)) });
        const answer = (await stream.call(id, message, deadlineMs)) as ProtoHookResult | null;
        if (!answer) throw new GoPluginError('RPC', `Go plugin ${this.name}: an answer without a result`);
        return answer;
      }
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
      const res = (await this.unary(pluginMethod('grpc.health.v1.Health', 'Check'), { service: 'plugin' }, timeoutMs)) as { status: string };
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
        const m = pluginMethod('plugin.GRPCController', 'Shutdown');
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
      this.hostService.close();
      this.callStream?.close();
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
