/**
 * The Go hook SDK (hooks-go/) with the real Go toolchain: its unit tests (conversion, hook
 * semantics, a built example plugin called over go-plugin/gRPC, deployd-gofix), the examples' own
 * unit tests (hookstest), every example builds, and the
 * committed generated code matches proto/ (scripts/gen-proto.sh --check, which needs protoc).
 * The first run downloads Go modules and the pinned protoc plugins; later runs use the caches.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './helpers/server.js';

const HOOKS_GO = path.join(ROOT, 'hooks-go');
/** Generous: a cold module cache downloads gRPC and go-plugin. */
const TIMEOUT_MS = 600_000;

/** Runs a command; fails the test with its full output when it exits non-zero or cannot start. */
function run(cmd: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: TIMEOUT_MS - 10_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const output = `$ ${cmd} ${args.join(' ')}  (in ${path.relative(ROOT, cwd) || '.'})\n${stdout}${stderr}`;
      if (error) reject(new assert.AssertionError({ message: `${output}\n${error.message}` }));
      else resolve(output);
    });
  });
}

describe('Go hook SDK (hooks-go)', () => {
  it('go vet and go test pass', { timeout: TIMEOUT_MS }, async () => {
    await run('go', ['vet', './...'], HOOKS_GO);
    const out = await run('go', ['test', './...'], HOOKS_GO);
    assert.match(out, /^ok\s+github\.com\/deployd-ts\/deployd-ts\/hooks-go\/hooks\b/m, out);
    // The examples' unit tests (hookstest: a hook function run without a server) ran and passed.
    for (const example of ['validate', 'post', 'aftercommit', 'dpd']) {
      assert.match(out, new RegExp(`^ok\\s+github\\.com/deployd-ts/deployd-ts/hooks-go/examples/${example}\\b`, 'm'), out);
    }
    assert.match(out, /^ok\s+github\.com\/deployd-ts\/deployd-ts\/hooks-go\/internal\/gofix\b/m, out);
  });

  it('every example plugin builds', { timeout: TIMEOUT_MS }, async () => {
    await run('go', ['build', './examples/...'], HOOKS_GO);
  });

  it('the generated protocol code is up to date (scripts/gen-proto.sh --check)', { timeout: TIMEOUT_MS }, async () => {
    const out = await run('bash', [path.join(ROOT, 'scripts', 'gen-proto.sh'), '--check'], ROOT);
    assert.match(out, /is up to date/, out);
  });
});
