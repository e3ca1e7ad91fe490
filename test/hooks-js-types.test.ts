/**
 * hooks-js/: the editor types for JavaScript hooks and the example apps that use them.
 *  - Every example app's jsconfig.json type-checks (checkJs) with zero errors, and every hook file
 *    in it starts with the line that enables the types.
 *  - Misspelled hook API names are type errors (`setResponseDta`, `context.dat`), so the check can
 *    fail; every identifier a hook can see is declared.
 *  - The types declare what the sandbox provides, no more and no less: the globals of classic.d.ts
 *    are the identifiers of src/hooks/hook-params.ts, HookContext's members are the keys of the
 *    `context` object built in src/hooks/js/sandbox-runtime.ts, and hooks-js/README.md's table of
 *    identifiers by event matches hook-params.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { HOOK_PARAMS, type HookVariant } from '../src/hooks/hook-params.js';
import { ROOT } from './helpers/server.js';

const HOOKS_JS = path.join(ROOT, 'hooks-js');
const TYPES = path.join(HOOKS_JS, 'types');
const EXAMPLES = path.join(HOOKS_JS, 'examples');
const CLASSIC_DTS = path.join(TYPES, 'classic.d.ts');
const CONTEXT_DTS = path.join(TYPES, 'context.d.ts');
const HOOK_FILE = /^(beforerequest|validate|post|put|get|delete|aftercommit|login)\.js$/;

const posix = (p: string) => p.split(path.sep).join('/');

function format(diagnostics: readonly ts.Diagnostic[]): string {
  return ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => ROOT,
    getNewLine: () => '\n',
  });
}

/** Type-checks the project of a jsconfig.json, as `tsc -p <config>` does. */
function checkProject(configPath: string): { program: ts.Program; options: ts.CompilerOptions; diagnostics: readonly ts.Diagnostic[] } {
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(format([d])),
  });
  assert.ok(parsed, `cannot read ${configPath}`);
  assert.equal(parsed.errors.length, 0, format(parsed.errors));
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
  return { program, options: parsed.options, diagnostics: ts.getPreEmitDiagnostics(program) };
}

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

function exampleApps(): string[] {
  return fs.readdirSync(EXAMPLES).filter((name) => fs.existsSync(path.join(EXAMPLES, name, 'jsconfig.json'))).sort();
}

describe('hooks-js examples type-check', () => {
  it('has one example app per style', () => {
    assert.deepEqual(exampleApps(), ['classic', 'go-deployd-style', 'response-functions']);
  });

  for (const name of exampleApps()) {
    it(`${name}: zero errors with checkJs`, () => {
      const appDir = path.join(EXAMPLES, name);
      const { program, options, diagnostics } = checkProject(path.join(appDir, 'jsconfig.json'));
      assert.equal(options.checkJs, true, 'the jsconfig enables checkJs');
      assert.equal(diagnostics.length, 0, `\n${format(diagnostics)}`);

      // The check covered the hooks and the types, and each hook file enables the types itself.
      const checked = new Set(program.getSourceFiles().map((f) => path.resolve(f.fileName)));
      assert.ok(checked.has(CLASSIC_DTS), 'classic.d.ts is part of the program');
      const hooks = walk(path.join(appDir, 'resources')).filter((f) => HOOK_FILE.test(path.basename(f)));
      assert.ok(hooks.length > 0, 'the example has hook files');
      for (const file of hooks) {
        assert.ok(checked.has(file), `${file} was checked`);
        const first = fs.readFileSync(file, 'utf8').split('\n')[0];
        assert.match(first, /^\/\/\/ <reference types="[./]*types\/classic" \/>$|^\/\*\* @param \{import\('[./]*types\/context'\)\.HookContext\b/, `${file} starts with a reference or a JSDoc line`);
      }
    });
  }
});

describe('hooks-js types catch mistakes', () => {
  it('reports a misspelled response function and context member, and knows every identifier', (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deployd-hooks-types-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }), { timeout: 30_000 });
    const todos = path.join(dir, 'resources', 'todos');
    fs.mkdirSync(todos, { recursive: true });
    const example = JSON.parse(fs.readFileSync(path.join(EXAMPLES, 'classic', 'jsconfig.json'), 'utf8')) as { compilerOptions: object };
    fs.writeFileSync(path.join(dir, 'jsconfig.json'), JSON.stringify({
      compilerOptions: example.compilerOptions,
      include: ['resources/**/*.js', posix(CLASSIC_DTS)],
    }));
    const allNames = [...new Set(Object.values(HOOK_PARAMS).flat())];
    fs.writeFileSync(path.join(todos, 'aftercommit.js'), "if (this.priority >= 8) setResponseDta({ urgent: true });\n");
    fs.writeFileSync(path.join(todos, 'validate.js'), [
      `/** @param {import('${posix(CONTEXT_DTS).replace(/\.d\.ts$/, '')}').HookContext} context */`,
      'function Run(context) {',
      "  if (!context.dat.title) context.error('title', 'is required');",
      '}',
      '',
    ].join('\n'));
    // Every identifier of every event, used once: none may be unknown to the checker.
    fs.writeFileSync(path.join(todos, 'post.js'), allNames.map((n) => `void ${n};`).join('\n') + '\n');

    const { diagnostics } = checkProject(path.join(dir, 'jsconfig.json'));
    const byFile = (base: string) => diagnostics.filter((d) => d.file && path.basename(d.file.fileName) === base);
    const text = (d: ts.Diagnostic) => ts.flattenDiagnosticMessageText(d.messageText, '\n');

    const misspelled = byFile('aftercommit.js');
    assert.equal(misspelled.length, 1, format(diagnostics));
    assert.equal(misspelled[0].code, 2552); // Cannot find name '…'. Did you mean '…'?
    assert.match(text(misspelled[0]), /'setResponseDta'.*'setResponseData'/);

    const member = byFile('validate.js');
    assert.equal(member.length, 1, format(diagnostics));
    assert.equal(member[0].code, 2551); // Property '…' does not exist on type '…'. Did you mean '…'?
    assert.match(text(member[0]), /'dat'.*HookContext.*'data'/);

    assert.deepEqual(byFile('post.js').map(text), [], 'every hook identifier is declared');
    assert.equal(diagnostics.length, 2, format(diagnostics));
  });
});

describe('hooks-js types match the sandbox', () => {
  const parse = (file: string) => ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);

  it('classic.d.ts declares exactly the identifiers of hook-params.ts as globals', () => {
    const declared: string[] = [];
    for (const statement of parse(CLASSIC_DTS).statements) {
      if (ts.isVariableStatement(statement)) for (const d of statement.declarationList.declarations) declared.push(d.name.getText());
      else if (ts.isFunctionDeclaration(statement) && statement.name) declared.push(statement.name.text);
    }
    const expected = [...new Set(Object.values(HOOK_PARAMS).flat())].sort();
    assert.deepEqual([...new Set(declared)].sort(), expected);
  });

  it("HookContext has exactly the members of the sandbox's context object", () => {
    let runtimeKeys: string[] | undefined;
    const visit = (node: ts.Node): void => {
      if (ts.isVariableDeclaration(node) && node.name.getText() === 'context' && node.initializer && ts.isObjectLiteralExpression(node.initializer)) {
        runtimeKeys = node.initializer.properties.map((p) => p.name?.getText() ?? '').filter(Boolean);
      }
      ts.forEachChild(node, visit);
    };
    visit(parse(path.join(ROOT, 'src', 'hooks', 'js', 'sandbox-runtime.ts')));
    assert.ok(runtimeKeys, 'found `const context = { … }` in sandbox-runtime.ts');

    const hookContext = parse(CONTEXT_DTS).statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'HookContext');
    assert.ok(hookContext, 'context.d.ts declares HookContext');
    const typed = hookContext.members.map((m) => m.name?.getText() ?? '').filter(Boolean);
    assert.deepEqual([...new Set(typed)].sort(), [...new Set(runtimeKeys)].sort());
  });

  it("README's table of identifiers by event matches hook-params.ts", () => {
    const readme = fs.readFileSync(path.join(HOOKS_JS, 'README.md'), 'utf8').split('\n');
    const start = readme.findIndex((line) => line.startsWith('<!-- identifier table'));
    assert.ok(start >= 0, 'README has the identifier table marker');
    const rows: string[] = [];
    for (const line of readme.slice(start + 1)) {
      if (!line.startsWith('|')) break;
      rows.push(line);
    }
    const cells = (line: string) => line.split('|').slice(1, -1).map((c) => c.trim());
    const events = cells(rows[0]).slice(1);
    assert.deepEqual(events, ['beforerequest', 'validate', 'post', 'put', 'get', 'delete', 'aftercommit', 'login']);

    const documented = new Set<string>();
    for (const row of rows.slice(2)) {
      const [names, ...marks] = cells(row);
      const identifiers = [...names.replace(/\(.*\)/, '').matchAll(/`([$\w]+)`/g)].map((m) => m[1]);
      assert.ok(identifiers.length > 0, row);
      marks.forEach((mark, i) => {
        const variants: HookVariant[] = events[i] === 'beforerequest'
          ? mark === '✓' ? ['beforerequest', 'beforerequest-nodata'] : mark === 'POST, PUT' ? ['beforerequest'] : []
          : mark === '✓' ? [events[i] as HookVariant] : [];
        assert.ok(variants.length > 0 || mark === '–', `unknown mark ${mark} in ${row}`);
        for (const variant of variants) for (const name of identifiers) documented.add(`${variant} ${name}`);
      });
    }
    const actual = Object.entries(HOOK_PARAMS).flatMap(([variant, names]) => names.map((name) => `${variant} ${name}`));
    assert.deepEqual([...documented].sort(), [...new Set(actual)].sort());
  });
});
