/**
 * Error codes are data defined in one place: src/errors.ts. Anywhere else an error is made with
 * `Errors.<name>(…)`, so a code cannot be misspelt, given two statuses, or go undocumented.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DeploydError, Errors, uniqueViolation, validationError } from '../src/errors.js';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');


function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The code of a file without its comments (a comment may name a code to explain it). */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** `file:line: text` of each error-code literal in `files`. */
function codeLiterals(files: string[]): string[] {
  return files.flatMap((file) => withoutComments(fs.readFileSync(file, 'utf8')).split('\n').flatMap((line, i) => (
    /DPD_ERR_[A-Z]/.test(line) ? [`${path.relative(SRC, file)}:${i + 1}: ${line.trim()}`] : []
  )));
}

describe('error codes', () => {
  const files = sourceFiles(SRC);

  it('the scan finds the codes where they are defined (it works)', () => {
    assert.ok(codeLiterals([path.join(SRC, 'errors.ts')]).length >= 20);
  });

  it('no DPD_ERR_ code is written outside src/errors.ts', () => {
    const outside = files.filter((f) => f !== path.join(SRC, 'errors.ts'));
    assert.deepEqual(codeLiterals(outside), []);
  });

  it('each code has one status and every factory makes the error it names', () => {
    const statusOf = new Map<string, number>();
    const made: DeploydError[] = [
      ...Object.values(Errors).map((factory) => {
        const f = factory as (...args: unknown[]) => DeploydError;
        return 'statusCode' in factory ? f('x', 'y') : f(400, 'x');
      }),
      validationError({ a: 'is required' }),
      uniqueViolation('a'),
    ];
    for (const error of made) {
      assert.ok(error instanceof DeploydError);
      assert.match(error.code, /^DPD_ERR_[A-Z_]+$/);
      assert.ok(error.statusCode >= 400 && error.statusCode <= 599, `${error.code}: ${error.statusCode}`);
      const body = error.toJSON();
      assert.equal(body.code, error.code);
      assert.equal(body.status, error.statusCode);
      if (!['DPD_ERR_HOOK_CANCELLED', 'DPD_ERR_HOOK_FAILED', 'DPD_ERR_BAD_REQUEST'].includes(error.code)) {
        const seen = statusOf.get(error.code);
        assert.ok(seen === undefined || seen === error.statusCode, `${error.code} has two statuses`);
        statusOf.set(error.code, error.statusCode);
      }
    }
  });
});
