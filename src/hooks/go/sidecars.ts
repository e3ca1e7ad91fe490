/**
 * Supervision of the Go hook sidecars: a set's program started with its host callbacks and mutual
 * TLS (one throw-away client certificate for all), its output sent to the server log, and a
 * sidecar that exits on its own restarted with exponential backoff (none after a stable run).
 */
import { setTimeout as wait } from 'node:timers/promises';
import os from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import type { HookSet } from './hook-set.js';
import { generateClientCertificate, type ClientCertificate } from './mtls.js';
import type { HostServiceHandler } from './host-service.js';
import type { GoPluginProcess } from './plugin-host.js';
import type { PluginLog } from './plugin-log.js';

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
/** A sidecar that ran this long before exiting restarts without backoff. */
const STABLE_AFTER_MS = 10_000;

export interface SidecarOptions {
  /** go-plugin AutoMTLS on the sidecar channel. */
  autoMTLS: boolean;
  /** Parent of the per-sidecar socket directories (read at each start); default os.tmpdir(). */
  socketDir(): string | undefined;
  /** HostService for the set's sidecar (its hooks' `dpd` calls). */
  host(set: HookSet): HostServiceHandler;
  log: FastifyBaseLogger;
}

export class Sidecars {
  private clientCertificate?: Promise<ClientCertificate>;

  constructor(private readonly options: SidecarOptions) {}

  /** The sidecar's own output (hclog, stdout/stderr) → the server log, tagged with its hook files. */
  pluginLog(set: HookSet): PluginLog {
    const log = this.options.log;
    return (level, message, fields) => {
      const lvl = level === 'trace' ? 'debug' : level;
      log[lvl]({ collection: set.collection, hookFiles: [...set.files.values()], goHooks: true, ...fields }, message);
    };
  }

  /** Starts the set's program as its sidecar (set.proc), supervised; rejects when it cannot start. */
  async start(set: HookSet): Promise<GoPluginProcess | undefined> {
    const proc = await this.spawn(set);
    if (set.closed) {
      void proc.stop();
      return undefined;
    }
    set.proc = proc;
    this.supervise(set, proc);
    return proc;
  }

  /** The running sidecar, starting a new one (once, with backoff) when it is gone. */
  restart(set: HookSet): Promise<GoPluginProcess | undefined> {
    if (set.proc?.alive) return Promise.resolve(set.proc);
    set.starting ??= (async () => {
      if (Date.now() - set.startedAt > STABLE_AFTER_MS) set.failures = 0;
      const backoff = set.failures === 0 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (set.failures - 1));
      set.failures++;
      for (;;) {
        if (backoff > 0) await wait(backoff, undefined, { ref: false });
        if (set.closed) return undefined;
        try {
          return await this.start(set);
        } catch (err) {
          this.options.log.error({ collection: set.collection, err: (err as Error).message }, 'go hook sidecar failed to restart');
          set.failures++;
          await wait(Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (set.failures - 1)), undefined, { ref: false });
        }
      }
    })().finally(() => {
      set.starting = undefined;
    });
    return set.starting;
  }

  /** Stops a sidecar that may be stuck and starts its replacement at once. */
  replace(set: HookSet, proc: GoPluginProcess): void {
    if (set.proc !== proc) return;
    // Forgotten at once, so the next call waits for the replacement (started now) instead of
    // racing the kill into a "crashed" answer.
    set.proc = undefined;
    void proc.stop();
    void this.restart(set);
  }

  private async spawn(set: HookSet): Promise<GoPluginProcess> {
    set.startedAt = Date.now();
    let clientCertificate: ClientCertificate | undefined;
    if (this.options.autoMTLS) {
      this.clientCertificate ??= generateClientCertificate();
      try {
        clientCertificate = await this.clientCertificate;
      } catch (err) {
        this.clientCertificate = undefined;
        throw new Error(`${(err as Error).message} (AutoMTLS needs the openssl command; DEPLOYD_GO_AUTOMTLS=off turns it off)`);
      }
    }
    // The gRPC stack (@grpc/grpc-js, proto-loader) is loaded with the first sidecar, not by every server.
    const { GoPluginProcess } = await import('./plugin-host.js');
    const proc = await GoPluginProcess.start({
      binary: set.binary!,
      name: `${set.collection} go hooks`,
      socketDir: this.options.socketDir() ?? os.tmpdir(),
      log: this.pluginLog(set),
      autoMTLS: this.options.autoMTLS,
      clientCertificate,
      host: this.options.host(set),
    });
    this.options.log.info({ collection: set.collection, pid: proc.pid, address: proc.address, tls: proc.tls, ms: Date.now() - set.startedAt }, 'go hook sidecar started');
    return proc;
  }

  /** Restarts the set's sidecar when it exits on its own. */
  private supervise(set: HookSet, proc: GoPluginProcess): void {
    void proc.exited.then((exit) => {
      if (set.closed || set.proc !== proc) return;
      this.options.log.error({ collection: set.collection, pid: proc.pid, code: exit.code, signal: exit.signal }, 'go hook sidecar exited; restarting it');
      void proc.stop(); // close the channel and remove the socket directory
      void this.restart(set);
    });
  }
}
