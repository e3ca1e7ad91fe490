/**
 * Command-line flags and environment, Deployd's names:
 *   deployd [--port 2403] [--host 0.0.0.0] [--app DIR] [--db URL] [--dev] [--max-body 1mb]
 *   deployd keygen | showkey | go-env [--app DIR]
 *   deployd create <dir> | types [--app DIR] [--out FILE]
 */
import { parseArgs } from 'node:util';

export interface CliOptions {
  command: 'start' | 'keygen' | 'showkey' | 'go-env' | 'create' | 'types' | 'help' | 'version';
  /** `create <dir>`: the folder to create. */
  target?: string;
  /** `types`: where to write (default <app>/deployd-types.ts); `-` for stdout. */
  out?: string;
  /** `types`: the module the generated file imports the client from. */
  clientModule: string;
  /** `create`: leave the Go hook out (also when no Go toolchain is found). */
  noGo: boolean;
  /** Serve /metrics (`--no-metrics` or METRICS=off turns it off). */
  metrics: boolean;
  metricsToken?: string;
  appDir: string;
  port: number;
  host: string;
  databaseUrl?: string;
  dev: boolean;
  maxBody: number;
  maxLimit?: number;
  corsOrigins: string[];
  /** Behind a TLS-terminating proxy: trust X-Forwarded-Proto/-For (Secure cookies, client addresses). */
  trustProxy: boolean;
  logLevel: string;
  logFormat?: 'json' | 'pretty';
  hookTimeoutMs?: number;
  hookMemoryMb?: number;
  hookWorkers?: number;
}

export const USAGE = `Usage:
  deployd [options]            start the server for the app in --app (default: current folder)
  deployd create <dir>         create a new app in <dir>: a collection, a JS and a Go hook, a live page
  deployd types [--app DIR]    write TypeScript types of the app's collections for the typed client
  deployd keygen [--app DIR]   create a new master key in DIR/.deployd/security.json and print it
  deployd showkey [--app DIR]  print the master key
  deployd go-env [--app DIR]   editor support for Go hooks: write go.mod and resources/*/deployd_env.go
                               (then \`go vet ./resources/...\` and gopls resolve EventContext)

Options:
  -p, --port <n>          port to listen on (env PORT; default 2403; 0 picks a free port)
      --host <addr>       address to bind (default 0.0.0.0)
  -a, --app <dir>         app folder with resources/, public/ and .deployd/ (default: cwd)
      --db <url>          database (env DATABASE_URL; default: sqlite file in .deployd/)
  -d, --dev               development mode: any dpd-ssh-key is root, stacks in 500s, request logs
      --max-body <size>   largest request body, e.g. 512kb, 1mb (default 1mb)
      --max-limit <n>     largest $limit and default page size (default 1000)
      --cors-origins <l>  comma-separated CORS allow-list (env CORS_ORIGINS; default: echo any origin)
      --trust-proxy       behind a proxy: trust X-Forwarded-For/-Proto (env TRUST_PROXY=1)
      --log-level <lvl>   fatal, error, warn, info, debug (env LOG_LEVEL; default info)
      --log-format <f>    json or pretty (env LOG_FORMAT; default pretty on a terminal or with --dev, else json)
      --hook-timeout <ms> wall time of one hook event, callbacks included (default 1000)
      --hook-memory <mb>  heap of each collection's hook sandbox (default 64)
      --hook-workers <n>  processes that run JavaScript hooks (default: one per core)
      --metrics-token <t> a Bearer token that may read /metrics besides the master key (env METRICS_TOKEN)
      --no-metrics        do not serve /metrics (env METRICS=off)
  -h, --help              this text
  -v, --version           the version

Options of "types":
  -o, --out <file>        where to write (default: <app>/deployd-types.ts; "-" for stdout)
      --client <module>   the module to import the client from (default deployd-ts/client)
Options of "create":
      --no-go             leave out the Go hook (left out anyway when no Go toolchain is on PATH)

Environment: MASTER_KEY (the master key instead of the key file), PORT, HOST, DATABASE_URL,
CORS_ORIGINS, TRUST_PROXY=1, LOG_LEVEL, REDIS_URL (share real-time events between instances),
METRICS_TOKEN, METRICS=off, DEPLOYD_GO_BUILD_WAIT_MS, DEPLOYD_GO_AUTOMTLS=off.
Served besides the collections: /dpd.js (browser client), /ws (real-time), /health,
/openapi.json and /_docs (API description and docs page), /metrics (Prometheus).`;

/** Every flag `deployd` takes (the help text lists each; test/cli.test.ts checks that it does). */
export const FLAGS = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  app: { type: 'string', short: 'a' },
  db: { type: 'string' },
  dev: { type: 'boolean', short: 'd' },
  'max-body': { type: 'string' },
  'max-limit': { type: 'string' },
  'cors-origins': { type: 'string' },
  'trust-proxy': { type: 'boolean' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'hook-timeout': { type: 'string' },
  'hook-memory': { type: 'string' },
  'hook-workers': { type: 'string' },
  'metrics-token': { type: 'string' },
  'no-metrics': { type: 'boolean' },
  out: { type: 'string', short: 'o' },
  client: { type: 'string' },
  'no-go': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export class UsageError extends Error {}

export function parseCli(argv: string[], env: NodeJS.ProcessEnv, cwd: string): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: FLAGS,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [first, ...extra] = positionals;
  const commands = ['keygen', 'showkey', 'go-env', 'create', 'types'];
  if (first !== undefined && !commands.includes(first)) throw new UsageError(`unknown command "${positionals.join(' ')}"`);
  if (first === 'create' && extra.length !== 1 && !values.help) throw new UsageError('create needs the folder to create: deployd create <dir>');
  if (first !== 'create' && extra.length > 0) throw new UsageError(`unknown command "${positionals.join(' ')}"`);
  const command = values.help ? 'help' : values.version ? 'version' : (first as CliOptions['command'] | undefined) ?? 'start';
  const port = Number(values.port ?? env.PORT ?? 2403);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`invalid port "${values.port ?? env.PORT}"`);
  const maxLimit = values['max-limit'] === undefined ? undefined : Number(values['max-limit']);
  if (maxLimit !== undefined && (!Number.isInteger(maxLimit) || maxLimit < 1)) throw new UsageError('--max-limit must be a positive integer');
  const logFormat = values['log-format'] ?? (env.LOG_FORMAT || undefined);
  if (logFormat !== undefined && logFormat !== 'json' && logFormat !== 'pretty') throw new UsageError('--log-format must be json or pretty');
  return {
    command,
    logFormat,
    appDir: values.app ?? cwd,
    port,
    host: values.host ?? env.HOST ?? '0.0.0.0',
    databaseUrl: values.db ?? (env.DATABASE_URL || undefined),
    dev: values.dev ?? false,
    maxBody: parseSize(values['max-body'] ?? '1mb'),
    maxLimit,
    corsOrigins: (values['cors-origins'] ?? env.CORS_ORIGINS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    trustProxy: values['trust-proxy'] ?? (env.TRUST_PROXY === '1' || env.TRUST_PROXY === 'true'),
    logLevel: values['log-level'] ?? env.LOG_LEVEL ?? 'info',
    hookTimeoutMs: positiveInt('--hook-timeout', values['hook-timeout'], 60_000),
    hookMemoryMb: positiveInt('--hook-memory', values['hook-memory'], 4096),
    hookWorkers: positiveInt('--hook-workers', values['hook-workers'], 32),
    ...(first === 'create' ? { target: extra[0] } : {}),
    ...(values.out !== undefined ? { out: values.out } : {}),
    clientModule: values.client ?? 'deployd-ts/client',
    noGo: values['no-go'] ?? false,
    metrics: !(values['no-metrics'] ?? /^(0|off|false|no)$/i.test(env.METRICS ?? '')),
    ...((values['metrics-token'] ?? env.METRICS_TOKEN) ? { metricsToken: values['metrics-token'] ?? env.METRICS_TOKEN } : {}),
  };
}

function positiveInt(flag: string, value: string | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${flag} must be a whole number from 1 to ${max}`);
  return n;
}

export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`invalid size "${text}" (use e.g. 512kb or 1mb)`);
  const unit = (match[2] ?? 'b').toLowerCase()[0];
  const factor = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Math.floor(Number(match[1]) * factor);
}
