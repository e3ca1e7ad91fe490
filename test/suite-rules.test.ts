/**
 * Rules that keep the suite reliable on a fresh, busy 2-core machine, checked on the test sources:
 * - every `before`/`after`/`beforeEach`/`afterEach` has a `{ timeout }`: a hook without one waits
 *   forever when a start hangs, and the whole file hangs with it (and cancels its tests);
 * - no loop whose only work is sleeping (`while (!done) await sleep(50)`): such a poll has no
 *   deadline of its own or repeats one by hand; `eventually()` (helpers/server.ts) fails with what it
 *   waited for instead.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from './helpers/server.js';

const TEST_DIR = path.join(ROOT, 'test');
const HOOKS = new Set(['before', 'after', 'beforeEach', 'afterEach']);

interface Source { file: string; tree: ts.SourceFile }

function testSources(): Source[] {
  const files = fs.readdirSync(TEST_DIR).filter((f) => f.endsWith('.ts')).map((f) => path.join(TEST_DIR, f));
  const helpers = path.join(TEST_DIR, 'helpers');
  files.push(...fs.readdirSync(helpers).filter((f) => f.endsWith('.ts')).map((f) => path.join(helpers, f)));
  return files.map((file) => ({ file, tree: ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true) }));
}

function where(source: Source, node: ts.Node): string {
  const { line } = source.tree.getLineAndCharacterOfPosition(node.getStart(source.tree));
  return `${path.relative(ROOT, source.file)}:${line + 1}`;
}

function visit(node: ts.Node, fn: (n: ts.Node) => void): void {
  fn(node);
  node.forEachChild((child) => visit(child, fn));
}

/** `after` for `after(…)` and for a test context's `t.after(…)`; undefined for any other call. */
function hookName(callee: ts.Expression): string | undefined {
  if (ts.isIdentifier(callee)) return HOOKS.has(callee.text) ? callee.text : undefined;
  if (ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) && callee.expression.text === 't' && HOOKS.has(callee.name.text)) {
    return `t.${callee.name.text}`;
  }
  return undefined;
}

/** `before(fn, { timeout: … })` and the like: the hooks whose options lack a timeout. */
export function hooksWithoutTimeout(source: Source): string[] {
  const found: string[] = [];
  visit(source.tree, (node) => {
    if (!ts.isCallExpression(node)) return;
    const name = hookName(node.expression);
    if (name === undefined) return;
    const options = node.arguments.find(ts.isObjectLiteralExpression);
    const hasTimeout = options?.properties.some((p) => p.name !== undefined && ts.isIdentifier(p.name) && p.name.text === 'timeout');
    if (!hasTimeout) found.push(`${where(source, node)} ${name}() has no { timeout }`);
  });
  return found;
}

/** `setTimeout` wrapped in a promise, or a call to a function named `sleep`. */
function isSleep(expr: ts.Expression): boolean {
  if (ts.isAwaitExpression(expr)) return isSleep(expr.expression);
  if (!ts.isCallExpression(expr) && !ts.isNewExpression(expr)) return false;
  if (ts.isIdentifier(expr.expression) && expr.expression.text === 'sleep') return true;
  return ts.isNewExpression(expr) && ts.isIdentifier(expr.expression) && expr.expression.text === 'Promise' && /\bsetTimeout\b/.test(expr.getText());
}

/** `while (…) await sleep(…)` and `for (;;) { await new Promise((r) => setTimeout(r, …)); }`. */
export function sleepOnlyLoops(source: Source): string[] {
  const found: string[] = [];
  visit(source.tree, (node) => {
    if (!ts.isWhileStatement(node) && !ts.isForStatement(node) && !ts.isDoStatement(node)) return;
    const body = ts.isBlock(node.statement) ? node.statement.statements : [node.statement];
    if (body.length === 1 && ts.isExpressionStatement(body[0]) && isSleep(body[0].expression)) {
      found.push(`${where(source, node)} a loop that only sleeps: use eventually()`);
    }
  });
  return found;
}

const parse = (text: string): Source => ({ file: path.join(TEST_DIR, 'example.test.ts'), tree: ts.createSourceFile('example.test.ts', text, ts.ScriptTarget.Latest, true) });

describe('suite rules (what keeps the suite reliable on a busy machine)', () => {
  const sources = testSources();

  it('finds the test sources', () => {
    assert.ok(sources.length > 20, `${sources.length} files under test/`);
  });

  it('every before/after/beforeEach/afterEach has a { timeout }', () => {
    assert.deepEqual(sources.flatMap(hooksWithoutTimeout), []);
  });

  it('no loop only sleeps until something happens (eventually() has a deadline and says what it waited for)', () => {
    assert.deepEqual(sources.flatMap(sleepOnlyLoops), []);
  });

  it('the rules catch what they are about, and let the right forms pass', () => {
    const hooks = parse([
      'before(async () => { await start(); });',
      'after(() => stop(), { timeout: 30_000 });',
      'afterEach(async () => {}, { skip: false });',
      'describe("x", { timeout: 1 }, () => { beforeEach(() => {}, { timeout: 5 }); });',
      'it("y", async (t) => { t.after(() => browser.close()); t.after(() => x(), { timeout: 9 }); queue.after(1); });',
    ].join('\n'));
    assert.deepEqual(hooksWithoutTimeout(hooks).map((f) => f.replace(/^.*:(\d+) /, '$1 ')), ['1 before() has no { timeout }', '3 afterEach() has no { timeout }', '5 t.after() has no { timeout }']);
    const loops = parse([
      'while (!done) await new Promise((r) => setTimeout(r, 50));',
      'for (;;) { await sleep(20); }',
      'while (!done) { if (Date.now() > end) throw new Error("late"); await sleep(20); }',
      'for (let i = 0; i < 3; i++) { await request(); await sleep(10); }',
    ].join('\n'));
    assert.deepEqual(sleepOnlyLoops(loops).map((f) => f.replace(/^.*:(\d+) .*$/, '$1')), ['1', '2']);
  });
});
