/** The `deployd` command: start the server, or manage the master key. */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { generateKey, readKeyFile, securityFile, writeKeyFile } from '../auth/master-key.js';
import { createServer, type DeploydServer } from '../server.js';
import { parseCli, USAGE, UsageError, type CliOptions } from './options.js';

const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<number> {
  let options: CliOptions;
  try {
    options = parseCli(process.argv.slice(2), process.env, process.cwd());
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`deployd: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  switch (options.command) {
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    case 'version': {
      const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };
      process.stdout.write(`${pkg.version}\n`);
      return 0;
    }
    case 'keygen': {
      const key = generateKey();
      const file = writeKeyFile(path.resolve(options.appDir), key);
      process.stdout.write(`created a new master key in ${file}\n${key}\n`);
      return 0;
    }
    case 'showkey': {
      const key = readKeyFile(path.resolve(options.appDir));
      if (!key) {
        process.stderr.write(`deployd: no master key in ${securityFile(path.resolve(options.appDir))}; run "deployd keygen"\n`);
        return 1;
      }
      process.stdout.write(`${key}\n`);
      return 0;
    }
    case 'start':
      return start(options);
  }
}

async function start(options: CliOptions): Promise<number> {
  const appDir = path.resolve(options.appDir);
  if (!fs.existsSync(appDir) || !fs.statSync(appDir).isDirectory()) {
    process.stderr.write(`deployd: app folder ${appDir} does not exist\n`);
    return 1;
  }
  // Signal handlers go in before anything else, so a signal that races the start-up line is
  // still a graceful stop rather than Node's default kill.
  let server: DeploydServer | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    if (!server) process.exit(0);
    const running = server;
    running.app.log.info({ signal }, 'shutting down: finishing requests in flight');
    const force = setTimeout(() => {
      running.app.log.warn('requests still running after 10 s; exiting anyway');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    running.close().then(
      () => process.exit(0),
      (err: Error) => {
        running.app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  server = await createServer({
    appDir,
    port: options.port,
    host: options.host,
    dev: options.dev,
    maxBody: options.maxBody,
    databaseUrl: options.databaseUrl,
    masterKey: process.env.MASTER_KEY || undefined,
    corsOrigins: options.corsOrigins,
    trustProxy: options.trustProxy,
    maxLimit: options.maxLimit,
    logLevel: options.logLevel,
    logFormat: options.logFormat,
    hookWorkers: options.hookWorkers,
    hookLimits: {
      ...(options.hookTimeoutMs ? { timeoutMs: options.hookTimeoutMs } : {}),
      ...(options.hookMemoryMb ? { memoryMb: options.hookMemoryMb } : {}),
    },
  });
  const address = await server.listen();
  // Bound to every interface: show the address a person on this machine would type.
  const port = new URL(address).port;
  const url = options.host === '0.0.0.0' || options.host === '::' ? `http://localhost:${port}` : address;
  const key = server.masterKey;
  process.stdout.write(
    `deployd-ts listening on ${url} — app ${appDir}, store ${server.store.description}, master key ${key.source}${options.dev ? ', dev mode' : ''}\n`
    + (key.generated ? `new master key (shown only this once; "deployd showkey" prints it again): ${key.reveal()}\n` : ''),
  );
  return -1; // keep running
}

main().then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: Error) => {
    // A failed start may leave hook workers or the config watcher behind: exit regardless.
    process.stderr.write(`deployd: ${err.message}\n`);
    process.exit(1);
  },
);
