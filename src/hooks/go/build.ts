/**
 * Builds a collection's Go hook files into one go-plugin program (see hooks-go/ and
 * plugin-host.ts, which starts the result).
 *
 * Two source forms are accepted as written:
 *
 * 1. go-deployd's: no package clause (one is renamed if present), optional imports, then
 *    `func Run(ctx *EventContext) error` and any helpers.
 * 2. The seed's: a `package main` file with an exported value `EventHandler` whose
 *    `Run(ctx interface{}) error` asserts `ctx.(*EventContext)`.
 *
 * Before compiling, hooks-go's deployd-gofix fixes what the seed's page writes and Go rejects:
 * imports a file uses without declaring (goimports) are added on the package clause's line, and a
 * type named like a variable (`type EventHandler struct{}` … `var EventHandler = &EventHandler{}`)
 * is renamed in its type positions to a same-length name. Neither moves a line; renames keep
 * columns too.
 *
 * Isolation: each event file becomes its own Go package `hook_<event>` in a generated module
 * (`deployd-hooks/<hash>`), so every file may define `Run`, `EventHandler` and helpers with the
 * same names. Each package also gets a generated file declaring `type EventContext =
 * hooks.EventContext` (an alias, so `func Run(*EventContext) error` is a hooks.Handler) and a no-op
 * `deployd.Log` (go-deployd's wrapper has one). A generated main.go registers every event and
 * calls hooks.Serve().
 *
 * Positions: the user's text is copied unchanged except for its package clause, which is renamed
 * in place, or, when there is none, a `package hook_<event>; ` prefix on line 1 (plus the added
 * imports, on that line). Line numbers are therefore 1:1 with the user's file; only columns on that
 * one line are corrected. Errors in generated code are blamed on the user's declaration.
 *
 * The build is content-addressed: `<buildDir>/<hash>/plugin`, where the hash covers the sources,
 * the collection name and the SDK (go.mod, go.sum, its Go sources). An existing binary is reused
 * without running Go at all. Building takes seconds: callers must never do it on a request path.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { PluginLog } from './plugin-host.js';

/** The event names hooks.Register accepts (hooks-go/hooks/serve.go `Events`). */
export const GO_HOOK_EVENTS = ['beforerequest', 'validate', 'post', 'put', 'get', 'delete', 'aftercommit', 'login'] as const;
export type GoHookEvent = (typeof GO_HOOK_EVENTS)[number];

export const SDK_MODULE = 'github.com/deployd-ts/deployd-ts/hooks-go';
/** Bump when the generated code changes, so old binaries are not reused. */
const GENERATOR_VERSION = '3';
const MAX_OUTPUT = 1 << 20;
/** How often a running build says in the log that it still runs (and how far it got). */
const PROGRESS_EVERY_MS = Number(process.env.DEPLOYD_GO_BUILD_PROGRESS_MS) > 0 ? Number(process.env.DEPLOYD_GO_BUILD_PROGRESS_MS) : 10_000;

export interface GoHookFile {
  event: string;
  /** The user's file name as it should appear in errors, e.g. "todos/post.go". */
  file: string;
  source: string;
}

export interface GoBuildOptions {
  collection: string;
  files: GoHookFile[];
  /** Where `<hash>/plugin` (and the generated sources in `<hash>/src`) are kept. */
  buildDir: string;
  /** The hooks-go module directory (replaced into the generated module). */
  sdkDir: string;
  log?: PluginLog;
  /** The go command: a path or a name looked up on PATH; default "go". */
  go?: string;
  /**
   * Kill `go build` after this long. Default: no limit (a first build on a cold Go cache may take
   * minutes on a busy machine; requests do not wait for it, see go-runner.ts).
   */
  timeoutMs?: number;
  /** Aborting kills `go build` (the server is closing): the build then fails with TIMEOUT. */
  signal?: AbortSignal;
}

export interface GoBuildCompileError {
  file: string;
  line: number;
  column: number;
  message: string;
}

export type GoBuildResult = { binary: string; hash: string; reused: boolean } | { errors: GoBuildCompileError[] };

export type GoBuildErrorCode = 'NO_GO' | 'TIMEOUT' | 'FAILED' | 'BAD_INPUT';

/** A failure that is not a compile error in the user's code (no toolchain, timeout, download). */
export class GoBuildError extends Error {
  constructor(
    readonly code: GoBuildErrorCode,
    message: string,
    readonly output = '',
  ) {
    super(message);
    this.name = 'GoBuildError';
  }
}

type Form = 'run' | 'eventHandler';

interface PreparedFile {
  event: GoHookEvent;
  file: string;
  pkg: string;
  form: Form;
  text: string;
  /** Line (1-based) whose columns moved, and by how much, from the package clause edit. */
  shiftLine: number;
  shiftAfterCol: number;
  shift: number;
  /** Where imports found missing are inserted (right after the package name, on its line). */
  importAt: number;
  /** The line of the user's `func Run` / `EventHandler` (what main.go calls), 0 if not found. */
  declLine: number;
}

/** Builds in progress in this process, by binary path (two callers share one build). */
const inFlight = new Map<string, Promise<GoBuildResult>>();

/** Where a hook set's program is (or will be) built, decided without running Go. */
export interface GoBuildPlan {
  hash: string;
  binary: string;
  /** The program is built already: buildGoHooks returns it without running Go. */
  built: boolean;
}

/**
 * Validates the files and computes the content hash and binary path of their build (reads the
 * SDK's files; cheap and synchronous). Throws GoBuildError('BAD_INPUT').
 */
export function planGoBuild(options: Pick<GoBuildOptions, 'collection' | 'files' | 'buildDir' | 'sdkDir'>): GoBuildPlan & { sdk: SdkInfo; sdkDir: string; dir: string; sorted: GoHookFile[] } {
  const { collection, files } = options;
  if (!files.length) throw new GoBuildError('BAD_INPUT', `Go hooks of ${collection}: no files to build`);
  const seen = new Set<string>();
  for (const f of files) {
    if (!(GO_HOOK_EVENTS as readonly string[]).includes(f.event)) {
      throw new GoBuildError('BAD_INPUT', `Go hooks of ${collection}: unknown event "${f.event}" (want one of ${GO_HOOK_EVENTS.join(', ')})`);
    }
    if (seen.has(f.event)) throw new GoBuildError('BAD_INPUT', `Go hooks of ${collection}: two files for event "${f.event}"`);
    seen.add(f.event);
  }
  const sdkDir = path.resolve(options.sdkDir);
  const sdk = readSdk(sdkDir);
  const sorted = [...files].sort((a, b) => (a.event < b.event ? -1 : a.event > b.event ? 1 : 0));
  const hash = createHash('sha256')
    .update(
      JSON.stringify({
        v: GENERATOR_VERSION,
        collection,
        files: sorted.map((f) => [f.event, f.file, f.source]),
        sdk: sdk.fingerprint,
      }),
    )
    .digest('hex')
    .slice(0, 32);
  const dir = path.join(path.resolve(options.buildDir), hash);
  const binary = path.join(dir, 'plugin');
  return { hash, binary, built: isExecutableFile(binary), sdk, sdkDir, dir, sorted };
}

export async function buildGoHooks(options: GoBuildOptions): Promise<GoBuildResult> {
  const { hash, binary, built, sdk, sdkDir, dir, sorted } = planGoBuild(options);
  if (built) return { binary, hash, reused: true };

  let p = inFlight.get(binary);
  if (!p) {
    p = build({ ...options, files: sorted }, sdkDir, sdk, hash, dir, binary).finally(() => inFlight.delete(binary));
    inFlight.set(binary, p);
  }
  return p;
}

export interface SdkInfo {
  goMod: string;
  goSum: string;
  goVersion: string;
  fingerprint: string;
}

function readSdk(sdkDir: string): SdkInfo {
  let goMod: string;
  try {
    goMod = fs.readFileSync(path.join(sdkDir, 'go.mod'), 'utf8');
  } catch {
    throw new GoBuildError('BAD_INPUT', `Go hooks: no Go SDK at ${sdkDir} (go.mod not found)`);
  }
  if (!new RegExp(`^module\\s+${SDK_MODULE.replace(/[.]/g, '\\.')}\\s*$`, 'm').test(goMod)) {
    throw new GoBuildError('BAD_INPUT', `Go hooks: ${sdkDir} is not the ${SDK_MODULE} module`);
  }
  let goSum = '';
  try {
    goSum = fs.readFileSync(path.join(sdkDir, 'go.sum'), 'utf8');
  } catch {
    /* no go.sum: the first build needs the network */
  }
  const goVersion = /^go\s+(\S+)\s*$/m.exec(goMod)?.[1] ?? '1.26.0';
  const h = createHash('sha256').update(goMod).update('\0').update(goSum);
  // The SDK's own code is replaced in from sdkDir, so it is part of what the binary is built from.
  for (const sub of ['hooks', 'proto', 'internal', 'cmd']) {
    for (const file of listGoFiles(path.join(sdkDir, sub))) {
      h.update('\0').update(path.relative(sdkDir, file)).update('\0').update(fs.readFileSync(file));
    }
  }
  return { goMod, goSum, goVersion, fingerprint: h.digest('hex') };
}

function listGoFiles(dir: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listGoFiles(full));
    else if (e.name.endsWith('.go') && !e.name.endsWith('_test.go')) out.push(full);
  }
  return out;
}

function isExecutableFile(file: string): boolean {
  try {
    const st = fs.statSync(file);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Skips whitespace and comments from the start; returns the offset of the first token. */
function firstTokenOffset(text: string): number {
  let i = 0;
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (text.startsWith('//', i)) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl + 1;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      return i;
    }
  }
}

function lineColAt(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, col: offset - start + 1 };
}

/** Code with comments and string literals blanked (same length), for rough declaration checks. */
function codeOnly(text: string): string {
  return text.replace(/\/\/[^\n]*|\/\*[\s\S]*?\*\/|"(?:[^"\\\n]|\\.)*"|`[^`]*`|'(?:[^'\\\n]|\\.)*'/g, (m) => m.replace(/[^\n]/g, ' '));
}

function prepare(f: GoHookFile): PreparedFile | GoBuildCompileError {
  const event = f.event as GoHookEvent;
  const pkg = `hook_${event}`;
  const source = f.source.replace(/^\uFEFF/, '');
  const start = firstTokenOffset(source);
  const clause = /^package[ \t]+([A-Za-z_][A-Za-z0-9_]*)/.exec(source.slice(start));
  const code = codeOnly(source);
  const hasRun = /^func[ \t]+Run[ \t]*\(/m.test(code);
  const hasEventHandler = /^var[ \t]+EventHandler\b|^[ \t]*EventHandler[ \t]*(?:\*?[A-Za-z_][\w.]*)?[ \t]*=/m.test(code);
  let form: Form;
  if (hasRun) form = 'run';
  else if (hasEventHandler) form = 'eventHandler';
  else {
    return {
      file: f.file,
      line: 1,
      column: 1,
      message: 'no Go hook found: define func Run(ctx *EventContext) error (or, in a package main file, a value EventHandler with Run(ctx interface{}) error)',
    };
  }
  const decl = (form === 'run' ? /^func[ \t]+Run[ \t]*\(/m : /^var[ \t]+EventHandler\b|^[ \t]*EventHandler[ \t]*(?:\*?[A-Za-z_][\w.]*)?[ \t]*=/m).exec(code);
  const declLine = decl ? lineColAt(source, decl.index).line : 0;
  if (clause) {
    const nameStart = start + clause[0].length - clause[1]!.length;
    const { line, col } = lineColAt(source, nameStart);
    return {
      event,
      file: f.file,
      pkg,
      form,
      text: source.slice(0, nameStart) + pkg + source.slice(nameStart + clause[1]!.length),
      shiftLine: line,
      shiftAfterCol: col,
      shift: pkg.length - clause[1]!.length,
      importAt: nameStart + pkg.length,
      declLine,
    };
  }
  const prefix = `package ${pkg}; `;
  return { event, file: f.file, pkg, form, text: prefix + source, shiftLine: 1, shiftAfterCol: 0, shift: prefix.length, importAt: prefix.length, declLine };
}

/** What deployd-gofix (hooks-go/cmd/deployd-gofix) found in one file. */
interface GofixResult {
  file: string;
  imports: { name?: string; path: string }[];
  renames: { offset: number; length: number; text: string; from: string }[];
  declares: string[];
  error?: string;
}

/** Applies gofix's edits; keeps every line where it was (see the header comment). */
function applyFix(p: PreparedFile, fix: GofixResult): void {
  let text = p.text;
  for (const r of fix.renames) {
    if (r.text.length !== r.length || text.slice(r.offset, r.offset + r.length) !== r.from) continue;
    text = text.slice(0, r.offset) + r.text + text.slice(r.offset + r.length);
  }
  if (fix.imports.length > 0) {
    const specs = fix.imports.map((i) => (i.name ? `${i.name} ` : '') + goString(i.path)).join('; ');
    const insert = p.importAt === p.shift && p.shiftAfterCol === 0 ? `import (${specs}); ` : `; import (${specs})`;
    text = text.slice(0, p.importAt) + insert + text.slice(p.importAt);
    p.shift += insert.length;
  }
  p.text = text;
}

/** The generated declarations every hook package gets, minus the names the user's file declares. */
function supportFile(pkg: string, declared: Set<string>): string {
  const lines = [
    '// Code generated by deployd-ts (src/hooks/go/build.ts). DO NOT EDIT.',
    `package ${pkg}`,
    '',
    `import "${SDK_MODULE}/hooks"`,
    '',
    'var _ hooks.Handler',
    '',
  ];
  if (!declared.has('EventContext')) {
    lines.push("// EventContext is the SDK's hook context (an alias: func Run(*EventContext) error is a hooks.Handler).", 'type EventContext = hooks.EventContext', '');
  }
  if (!declared.has('DpdError')) lines.push('// DpdError is a failed ctx.Dpd(…) call (its Status, Message, Errors).', 'type DpdError = hooks.DpdError', '');
  if (!declared.has('deployd')) {
    lines.push("// deployd.Log is go-deployd's no-op logger; use ctx.Log to log.", 'var deployd = struct{ Log func(args ...interface{}) }{Log: func(...interface{}) {}}', '', 'var _ = deployd', '');
  }
  return lines.join('\n');
}

function goString(s: string): string {
  return JSON.stringify(s);
}

async function build(options: GoBuildOptions, sdkDir: string, sdk: SdkInfo, hash: string, dir: string, binary: string): Promise<GoBuildResult> {
  const { collection, log } = options;
  const prepared: PreparedFile[] = [];
  const problems: GoBuildCompileError[] = [];
  for (const f of options.files) {
    const p = prepare(f);
    if ('pkg' in p) prepared.push(p);
    else problems.push(p);
  }
  if (problems.length) return { errors: problems };

  const go = findGo(options.go ?? 'go');
  await fsp.mkdir(dir, { recursive: true });
  await removeLeftovers(dir);
  const src = path.join(dir, `src-${process.pid}-${randomBytes(4).toString('hex')}`);
  await fsp.mkdir(src, { recursive: true });
  const mod = `deployd-hooks/${hash}`;
  try {
    await fsp.writeFile(
      path.join(src, 'go.mod'),
      `module ${mod}\n\ngo ${sdk.goVersion}\n\nrequire ${SDK_MODULE} v0.0.0\n\nreplace ${SDK_MODULE} => ${sdkDir}\n`,
    );
    await fsp.writeFile(path.join(src, 'go.sum'), sdk.goSum);
    // Generated file → the user's file, for errors reported against generated code.
    const byPath = new Map<string, PreparedFile>();
    const mainLines = [
      '// Code generated by deployd-ts (src/hooks/go/build.ts). DO NOT EDIT.',
      `// Go hooks of the collection ${goString(collection)}.`,
      'package main',
      '',
      'import (',
      `\t"${SDK_MODULE}/hooks"`,
      ...prepared.map((p) => `\t${p.pkg} "${mod}/${p.pkg}"`),
      ')',
      '',
      'func main() {',
    ];
    const mainLineOf = new Map<number, PreparedFile>();
    for (const p of prepared) {
      const pdir = path.join(src, p.pkg);
      await fsp.mkdir(pdir);
      await fsp.writeFile(path.join(pdir, `${p.event}.go`), p.text);
      byPath.set(`${p.pkg}/${p.event}.go`, p);
      await fsp.writeFile(path.join(pdir, 'zz_deployd.go'), supportFile(p.pkg, new Set()));
      mainLineOf.set(mainLines.length + 1, p);
      const call = p.form === 'run' ? `${p.pkg}.Run(ctx)` : `${p.pkg}.EventHandler.Run(ctx)`;
      mainLines.push(`\thooks.Register(${goString(p.event)}, func(ctx *hooks.EventContext) error { return ${call} })`);
    }
    mainLines.push('\thooks.Serve()', '}', '');
    await fsp.writeFile(path.join(src, 'main.go'), mainLines.join('\n'));

    // Missing imports and a type named like a variable (the seed's form): fixed in place, lines kept.
    const fixes = await gofix(go, sdkDir, sdk, options.buildDir, prepared.map((p) => path.join(src, p.pkg, `${p.event}.go`)), log, options.signal);
    for (const [i, p] of prepared.entries()) {
      const fix = fixes?.[i];
      if (!fix) continue;
      applyFix(p, fix);
      await fsp.writeFile(path.join(src, p.pkg, `${p.event}.go`), p.text);
      await fsp.writeFile(path.join(src, p.pkg, 'zz_deployd.go'), supportFile(p.pkg, new Set(fix.declares)));
    }

    const tmpBinary = path.join(dir, `plugin.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    const started = Date.now();
    log?.('info', `building the Go hooks of ${collection}`, { events: prepared.map((p) => p.event), dir });
    // -v names each package as it is compiled: the progress lines below count them.
    const progress = (ms: number, packages: number, last: string | undefined): void =>
      log?.('info', `still building the Go hooks of ${collection}`, { seconds: Math.round(ms / 1000), packagesCompiled: packages, ...(last ? { last } : {}) });
    const res = await runGo(go, ['build', '-v', '-o', tmpBinary, '.'], src, options.timeoutMs, options.signal, progress);
    if (res.timedOut) {
      await fsp.rm(tmpBinary, { force: true });
      const why = options.signal?.aborted ? 'was stopped' : `did not finish within ${options.timeoutMs} ms`;
      throw new GoBuildError('TIMEOUT', `Go hooks of ${collection}: go build ${why}`, res.output);
    }
    if (res.code !== 0) {
      await fsp.rm(tmpBinary, { force: true });
      const errors = parseGoErrors(res.output, byPath, mainLineOf);
      if (errors.length) {
        log?.('warn', `the Go hooks of ${collection} do not compile`, { errors });
        return { errors };
      }
      throw new GoBuildError('FAILED', `Go hooks of ${collection}: go build failed:\n${res.output.trim()}`, res.output);
    }
    await fsp.rename(tmpBinary, binary);
    log?.('info', `built the Go hooks of ${collection}`, { ms: Date.now() - started, binary });
    return { binary, hash, reused: false };
  } finally {
    await fsp.rm(src, { recursive: true, force: true });
  }
}

/**
 * Removes what an interrupted build left in `dir` (a server killed mid-build): generated sources
 * `src-<pid>-…` and half-written `plugin.tmp-<pid>-…` of processes that no longer run.
 */
async function removeLeftovers(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^(?:src|plugin\.tmp)-(\d+)-[0-9a-f]+$/.exec(name);
    if (!m || pidRuns(Number(m[1]))) continue;
    await fsp.rm(path.join(dir, name), { recursive: true, force: true });
  }
}

function pidRuns(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * `go build` output → errors in the user's files. Lines look like `hook_post/post.go:3:9: msg`
 * (maybe with ./ in front); indented lines continue the previous message. Errors in main.go are
 * blamed on the file of the event registered on that line.
 */
function parseGoErrors(output: string, byPath: Map<string, PreparedFile>, mainLineOf: Map<number, PreparedFile>): GoBuildCompileError[] {
  const errors: GoBuildCompileError[] = [];
  let last: GoBuildCompileError | undefined;
  for (const raw of output.split(/\r?\n/)) {
    const m = /^(?:\.\/)?([^\s:][^:]*\.go):(\d+)(?::(\d+))?: (.*)$/.exec(raw);
    if (!m) {
      if (last && /^\s+\S/.test(raw)) {
        // "\thook_post/post.go:3:6: other declaration of x" → the user's file name.
        last.message += '\n' + raw.trim().replace(/^(?:\.\/)?(hook_[a-z]+\/[a-z]+\.go)/, (g: string) => byPath.get(g.replace(/^\.\//, ''))?.file ?? g);
      } else last = undefined;
      continue;
    }
    const file = m[1]!.split(path.sep).join('/').replace(/^.*?(hook_[a-z]+\/[a-z]+\.go|main\.go|hook_[a-z]+\/zz_deployd\.go)$/, '$1');
    let line = Number(m[2]);
    let column = m[3] ? Number(m[3]) : 0;
    // The generated package names (hook_post.Run) mean nothing to the user.
    const message = m[4]!.replace(/\bhook_[a-z]+\./g, '');
    const p = byPath.get(file);
    if (p) {
      if (line === p.shiftLine && column > p.shiftAfterCol) column = Math.max(1, column - p.shift);
      last = { file: p.file, line, column, message };
    } else if (file === 'main.go' && mainLineOf.has(line)) {
      // main.go calls the user's Run / EventHandler: blame its declaration.
      const q = mainLineOf.get(line)!;
      last = { file: q.file, line: q.declLine, column: q.declLine > 0 ? 1 : 0, message: `${message} (${hookShape(q.form)})` };
    } else {
      const pkgMatch = /^(hook_[a-z]+)\//.exec(file);
      const q = pkgMatch ? [...byPath.values()].find((x) => x.pkg === pkgMatch[1]) : undefined;
      if (!q) {
        last = undefined;
        continue;
      }
      // Generated support code: the continuation ("other declaration of …") names the user's line.
      line = 0;
      column = 0;
      last = { file: q.file, line, column, message };
    }
    errors.push(last);
  }
  // An error placed in generated code whose continuation names a line of the user's file (for
  // instance "other declaration of x"): that line is the user's place.
  for (const e of errors) {
    if (e.line > 0) continue;
    const at = new RegExp(`^${e.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+):(\\d+)`, 'm').exec(e.message.split('\n').slice(1).join('\n'));
    if (at) {
      e.line = Number(at[1]);
      e.column = Number(at[2]);
    }
  }
  return errors;
}

function hookShape(form: Form): string {
  return form === 'run' ? 'a Go hook needs func Run(ctx *EventContext) error' : 'EventHandler needs a method Run(ctx interface{}) error';
}

/**
 * Where deployd-gofix is kept: one per machine and SDK version (`$XDG_CACHE_HOME/deployd-ts`, or
 * `~/.cache/deployd-ts`), else under the app's build directory when there is no usable home.
 */
function gofixCacheDir(buildDir: string): string {
  const home = process.env.HOME;
  const base = process.env.XDG_CACHE_HOME || (home ? path.join(home, '.cache') : '');
  if (base) {
    const dir = path.join(base, 'deployd-ts');
    try {
      fs.mkdirSync(dir, { recursive: true });
      fs.accessSync(dir, fs.constants.W_OK);
      return dir;
    } catch {
      // fall through
    }
  }
  return path.join(path.resolve(buildDir), 'tools');
}

/** deployd-gofix builds in progress, by binary path. */
const gofixBuilds = new Map<string, Promise<string | undefined>>();

/**
 * Runs hooks-go's deployd-gofix on the files (built once per SDK version, see gofixCacheDir);
 * undefined when it cannot run (then the files build as written, and the
 * compiler says what is wrong). Never throws.
 */
async function gofix(go: string, sdkDir: string, sdk: SdkInfo, buildDir: string, files: string[], log?: PluginLog, signal?: AbortSignal): Promise<GofixResult[] | undefined> {
  const tool = path.join(gofixCacheDir(buildDir), `deployd-gofix-${sdk.fingerprint.slice(0, 16)}`);
  let ready = isExecutableFile(tool) ? Promise.resolve<string | undefined>(tool) : gofixBuilds.get(tool);
  if (!ready) {
    ready = (async () => {
      await fsp.mkdir(path.dirname(tool), { recursive: true });
      const tmp = `${tool}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      const res = await runGo(go, ['build', '-o', tmp, './cmd/deployd-gofix'], sdkDir, undefined, signal, undefined, '-mod=readonly -buildvcs=false');
      if (res.code !== 0 || res.timedOut) {
        await fsp.rm(tmp, { force: true });
        log?.('warn', 'cannot build deployd-gofix: Go hook files are built without fixing their imports', { output: res.output.slice(0, 2000) });
        return undefined;
      }
      await fsp.rename(tmp, tool);
      return tool;
    })().finally(() => gofixBuilds.delete(tool));
    gofixBuilds.set(tool, ready);
  }
  const bin = await ready;
  if (!bin) return undefined;
  const res = await runTool(bin, files, path.dirname(files[0]!), go, signal);
  if (res.code !== 0) {
    log?.('warn', 'deployd-gofix failed: Go hook files are built without fixing their imports', { output: res.output.slice(0, 2000) });
    return undefined;
  }
  try {
    return JSON.parse(res.stdout) as GofixResult[];
  } catch {
    return undefined;
  }
}

function runTool(bin: string, args: string[], cwd: string, go: string, signal?: AbortSignal): Promise<{ code: number | null; stdout: string; output: string }> {
  return new Promise((resolve) => {
    // goimports asks `go` about modules: the same environment as the build, with that go first.
    const env = { ...process.env, GOFLAGS: '-mod=mod -buildvcs=false', GOWORK: 'off', GO111MODULE: 'on', PATH: `${path.dirname(go)}${path.delimiter}${process.env.PATH ?? ''}` };
    const child = spawn(bin, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let output = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const kill = (): void => void child.kill('SIGKILL');
    signal?.addEventListener('abort', kill, { once: true });
    child.on('error', (err) => resolve({ code: -1, stdout, output: err.message }));
    child.on('close', (code) => {
      signal?.removeEventListener('abort', kill);
      resolve({ code, stdout, output });
    });
  });
}

/** Resolves the go command (a path, or a name on PATH), or throws GoBuildError('NO_GO'). */
export function findGo(cmd: string): string {
  const candidates = cmd.includes('/') ? [cmd] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, cmd));
  for (const c of candidates) if (isExecutableFile(c)) return c;
  throw new GoBuildError(
    'NO_GO',
    `Go hooks need the Go toolchain to build, and "${cmd}" was not found${cmd.includes('/') ? '' : ' on PATH'}: install Go (https://go.dev/dl/) or use JavaScript hooks`,
  );
}

function runGo(
  go: string,
  args: string[],
  cwd: string,
  timeoutMs: number | undefined,
  signal?: AbortSignal,
  progress?: (ms: number, packages: number, last: string | undefined) => void,
  goflags = '-mod=mod -buildvcs=false',
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(go, args, {
      cwd,
      env: { ...process.env, GOFLAGS: goflags, GOWORK: 'off', GO111MODULE: 'on' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    let packages = 0;
    let last: string | undefined;
    const add = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      // `go build -v` lines are bare import paths; compile errors have spaces and colons.
      for (const line of text.split('\n')) {
        if (/^[\w.\-/~]+$/.test(line)) {
          packages++;
          last = line;
        }
      }
      if (output.length < MAX_OUTPUT) output += text;
    };
    const ticker = progress ? setInterval(() => progress(Date.now() - started, packages, last), PROGRESS_EVERY_MS) : undefined;
    ticker?.unref();
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    let timedOut = false;
    const kill = (): void => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL'); // go build and the compilers it started
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = timeoutMs === undefined ? undefined : setTimeout(kill, timeoutMs);
    if (signal?.aborted) kill();
    signal?.addEventListener('abort', kill, { once: true });
    child.on('error', (err) => {
      signal?.removeEventListener('abort', kill);
      clearTimeout(timer);
      clearInterval(ticker);
      reject(new GoBuildError('NO_GO', `Go hooks need the Go toolchain to build: cannot run ${go}: ${err.message}`));
    });
    child.on('close', (code) => {
      signal?.removeEventListener('abort', kill);
      clearTimeout(timer);
      clearInterval(ticker);
      // Without the -v package lines: what is left is what went wrong.
      resolve({ code, output: output.split('\n').filter((line) => !/^[\w.\-/~]+$/.test(line)).join('\n'), timedOut });
    });
  });
}
