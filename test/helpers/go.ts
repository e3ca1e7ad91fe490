/**
 * Helpers for the Go hook tests: the Go toolchain on PATH, the sidecar processes of an app, a
 * `go` wrapper that makes builds slow on purpose, and hook files written in go-deployd's form.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './server.js';

export const SDK = path.join(ROOT, 'hooks-go');
export const GO_DIR = fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin' : path.dirname(execFileSync('sh', ['-c', 'command -v go'], { encoding: 'utf8' }).trim());
export const GO = path.join(GO_DIR, 'go');

/** Puts Go on this process's PATH (servers started by the tests inherit it). */
export function useGo(): void {
  if (!(process.env.PATH ?? '').split(path.delimiter).includes(GO_DIR)) process.env.PATH = `${GO_DIR}${path.delimiter}${process.env.PATH ?? ''}`;
}

/** pid → command line of every process started from the app's build folder (its Go sidecars). */
export function sidecarPids(appDir: string, binary?: string): Map<number, string> {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  const pids = new Map<number, string>();
  const marker = binary ?? path.join(appDir, '.deployd', 'build');
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m && m[2]!.startsWith(marker)) pids.set(Number(m[1]), m[2]!);
  }
  return pids;
}

/**
 * A directory holding a `go` whose `go build` sleeps `delayMs` before running the real one: put it
 * first on a server's PATH to have a build still running while the test makes requests.
 */
export function slowGo(delayMs: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-slowgo-'));
  // Only `go build` is slow: `go env` (asked by goimports while fixing imports) answers at once.
  fs.writeFileSync(path.join(dir, 'go'), `#!/bin/sh\nif [ "$1" = build ]; then sleep ${delayMs / 1000}; fi\nexec ${JSON.stringify(GO)} "$@"\n`, { mode: 0o755 });
  return dir;
}

/** A go-deployd form hook: optional imports, then Run with `body`. */
export function goRun(body: string, imports: string[] = []): string {
  const head = imports.length ? `import (\n${imports.map((i) => `\t${JSON.stringify(i)}\n`).join('')})\n\n${imports.map((i) => `var _ = ${i.split('/').pop()}.${probe(i)}`).join('\n')}\n\n` : '';
  return `${head}func Run(ctx *EventContext) error {\n${body}\n\treturn nil\n}\n`;
}

/** Something every package below exports, to keep an import used whatever the body does. */
function probe(pkg: string): string {
  const names: Record<string, string> = { errors: 'New', time: 'Now', strings: 'TrimSpace', fmt: 'Sprint', os: 'Getpid' };
  const name = names[pkg];
  if (!name) throw new Error(`goRun: add a probe for ${pkg}`);
  return name;
}

/**
 * Repeats `request` (one that runs a Go hook) until it stops answering 503 "still being built": a
 * collection's first Go build runs in the background and may take minutes on a machine whose Go
 * build cache is cold. Returns the first other answer.
 */
export async function goBuilt<T extends { status: number; text: string }>(request: () => Promise<T>, timeoutMs = 600_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let res: T | undefined;
    try {
      res = await request();
    } catch (err) {
      // A cold Go build cache (CI) makes the first build take minutes: the server holds each request
      // up to its build wait (20 s), past the test client's own 15 s deadline. Ask again.
      if ((err as Error).name !== 'TimeoutError' && (err as Error).name !== 'AbortError') throw err;
    }
    if (res && (res.status !== 503 || !/still being built/.test(res.text))) return res;
    if (Date.now() > deadline) throw new Error(`still being built after ${timeoutMs} ms`);
  }
}
