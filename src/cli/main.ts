/** The `deployd` command: start the server, manage the master key, or set up Go editor support. */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { generateKey, readKeyFile, securityFile, writeKeyFile } from '../auth/master-key.js';
import { DEFAULT_SDK_DIR } from '../hooks/go/go-runner.js';
import { writeGoEnv } from '../hooks/go/go-env.js';
import { createServer, type DeploydServer } from '../server.js';
import { createApp, CreateError } from '../tooling/create-app.js';
import { generateClientTypes, TypesError } from '../tooling/client-types.js';
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
    case 'create':
      return create(options.target!, options.noGo);
    case 'types':
      return types(path.resolve(options.appDir), options.out, options.clientModule);
    case 'go-env': {
      const report = writeGoEnv(path.resolve(options.appDir), DEFAULT_SDK_DIR);
      for (const file of report.written) process.stdout.write(`wrote ${file}\n`);
      for (const note of report.notes) process.stdout.write(`note: ${note}\n`);
      if (report.written.length) process.stdout.write('check: go vet ./resources/...\n');
      return 0;
    }
    case 'start':
      return start(options);
  }
}

function create(target: string, noGo: boolean): number {
  try {
    const { dir, files, withoutGo } = createApp(target, { noGo });
    const relative = path.relative(process.cwd(), dir);
    const rel = relative === '' ? '.' : relative.startsWith('..') ? dir : relative;
    process.stdout.write(`created ${dir}:\n${files.map((f) => `  ${f}`).join('\n')}\n`
      + (withoutGo ? `left out the Go hook: ${withoutGo}\n` : '')
      + `\nstart it:  cd ${rel} && deployd      then open http://localhost:2403 in two tabs\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof CreateError)) throw err;
    process.stderr.write(`deployd: ${err.message}\n`);
    return 1;
  }
}

function types(appDir: string, out: string | undefined, clientModule: string): number {
  let text: string;
  try {
    text = generateClientTypes(appDir, clientModule);
  } catch (err) {
    if (!(err instanceof TypesError)) throw err;
    process.stderr.write(`deployd: ${err.message}\n`);
    return 1;
  }
  if (out === '-') {
    process.stdout.write(text);
    return 0;
  }
  const file = path.resolve(appDir, out ?? 'deployd-types.ts');
  fs.writeFileSync(file, text);
  process.stdout.write(`wrote ${file}: import { createAppClient } from it (deployd-ts/client typed for this app)\n`);
  return 0;
}

async function start(options: CliOptions): Promise<number> {
  const appDir = path.resolve(options.appDir);
  if (!fs.existsSync(appDir) || !fs.statSync(appDir).isDirectory()) {
    process.stderr.write(`deployd: app folder ${appDir} does not exist\n`);
    return 1;
  }
  // A folder that is not an app: say what to do rather than serve nothing.
  if (!fs.existsSync(path.join(appDir, 'resources'))) {
    process.stderr.write(`deployd: ${appDir} is not a deployd app (it has no resources/ folder).\n`
      + `  New app:           deployd create my-app && cd my-app && deployd\n`
      + `  Existing app:      deployd --app path/to/app   (the folder that holds resources/)\n`
      + `  Start empty here:  mkdir resources && deployd   (then add resources/<name>/config.json)\n`);
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
    metrics: options.metrics,
    metricsToken: options.metricsToken,
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
    + (key.generated ? `new master key (shown only this once; "deployd showkey" prints it again): ${key.reveal()}\n` : '')
    + (server.registry.list().length === 0 ? `no collections yet: add resources/<name>/config.json (e.g. {"properties":{"title":{"type":"string"}}}); it is picked up without a restart\n` : ''),
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
