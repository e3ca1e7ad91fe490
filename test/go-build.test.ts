/**
 * buildGoHooks (src/hooks/go/build.ts) with the real Go toolchain: go-deployd's file form (two
 * events with same-named helpers), the seed's EventHandler form, reuse of an unchanged build,
 * compile errors mapped back to the user's files, no toolchain, and the built program run through
 * GoPluginProcess. The first run may download Go modules.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildGoHooks, GoBuildError, planGoBuild, type GoBuildResult } from '../src/hooks/go/build.js';
import { GoPluginProcess } from '../src/hooks/go/plugin-host.js';
import type { ProtoEventContext } from '../src/hooks/go/proto-convert.js';
import { SDK } from './helpers/go.js';

const GO = fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
const BUILD_TIMEOUT_MS = 600_000;

// go-deployd's form: no package clause, imports, Run plus a helper.
const POST_GO = `import (
	"strings"
)

func clean(s string) string {
	return strings.TrimSpace(s)
}

func Run(ctx *EventContext) error {
	if title, ok := ctx.Data["title"].(string); ok {
		ctx.Data["title"] = clean(title)
	}
	ctx.Emit("todo:created", map[string]interface{}{"title": ctx.Data["title"]}, "todos")
	return nil
}
`;

// The same form with a package clause (renamed) and a helper of the same name.
const VALIDATE_GO = `// validate.go
package main

import "strings"

func clean(s string) string { return strings.ToLower(s) }

func Run(ctx *EventContext) error {
	if t, _ := ctx.Data["title"].(string); clean(t) == "" {
		ctx.Error("title", "is required")
	}
	return nil
}
`;

// seed-websocket-realtime.md "Go Events", with the two fixes Go demands: the type is renamed
// eventHandler (it cannot share the variable's name) and time is imported.
/** The seed's aftercommit.go exactly as the page writes it (no `import "time"`; a type and a variable both named EventHandler). */
const SEED_AFTERCOMMIT_GO = fs.readFileSync(path.join(SDK, 'examples', 'seed', 'testdata', 'aftercommit.go.txt'), 'utf8');

function built(r: GoBuildResult): { binary: string; hash: string; reused: boolean } {
  assert.ok(!('errors' in r), `build failed: ${JSON.stringify(r)}`);
  return r;
}

function ctx(event: string, data: Record<string, unknown>, me: Record<string, unknown> | null): ProtoEventContext {
  return {
    collection: 'todos',
    event,
    method: 'POST',
    data_json: Buffer.from(JSON.stringify(data)),
    query_json: Buffer.from('{}'),
    caller: { is_root: false, me_json: me ? Buffer.from(JSON.stringify(me)) : Buffer.alloc(0) },
    request_id: 'req-1',
  };
}

describe('Go hook builds', () => {
  let tmp: string;
  let buildDir: string;
  const oldPath = process.env.PATH;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-gob-'));
    buildDir = path.join(tmp, 'build');
    // Go from /usr/local/go even when it is not on PATH.
    if (GO.includes('/')) process.env.PATH = `${path.dirname(GO)}${path.delimiter}${oldPath ?? ''}`;
  }, { timeout: 600_000 });

  after(() => {
    process.env.PATH = oldPath;
    fs.rmSync(tmp, { recursive: true, force: true });
  }, { timeout: 60_000 });

  const todoFiles = [
    { event: 'post', file: 'todos/post.go', source: POST_GO },
    { event: 'validate', file: 'todos/validate.go', source: VALIDATE_GO },
  ];

  it('builds the go-deployd form (two events, same-named helpers), runs it, and reuses it', { timeout: BUILD_TIMEOUT_MS }, async () => {
    const first = built(await buildGoHooks({ collection: 'todos', files: todoFiles, buildDir, sdkDir: SDK }));
    assert.equal(first.reused, false);
    assert.equal(first.binary, path.join(buildDir, first.hash, 'plugin'));
    assert.ok(fs.statSync(first.binary).isFile());

    const writtenAt = fs.statSync(first.binary).mtimeMs;
    const again = built(await buildGoHooks({ collection: 'todos', files: [...todoFiles].reverse(), buildDir, sdkDir: SDK }));
    assert.deepEqual(again, { ...first, reused: true });
    // Reused, not rebuilt: the program is the same file, untouched (a clock bound flaked on busy machines).
    assert.equal(fs.statSync(first.binary).mtimeMs, writtenAt, 'the reused program was not written again');

    // Another collection name is another build.
    const other = built(await buildGoHooks({ collection: 'notes', files: todoFiles, buildDir, sdkDir: SDK }));
    assert.notEqual(other.hash, first.hash);

    const p = await GoPluginProcess.start({ binary: first.binary, socketDir: tmp, log: () => undefined });
    try {
      const res = await p.run(ctx('EVENT_POST', { title: '  Milk  ' }, { id: 'u1' }), 5000);
      assert.equal(res.cancel, null);
      assert.deepEqual(JSON.parse(res.data_json.toString('utf8')), { title: 'Milk' });
      assert.equal(res.emits.length, 1);
      assert.equal(res.emits[0]!.event, 'todo:created');
      assert.equal(res.emits[0]!.room, 'todos');
      assert.deepEqual(JSON.parse(res.emits[0]!.data_json.toString('utf8')), { title: 'Milk' });

      const v = await p.run(ctx('EVENT_VALIDATE', { title: '' }, null), 5000);
      assert.deepEqual({ ...v.errors }, { title: 'is required' });
    } finally {
      await p.stop();
    }
  });

  it("builds the seed's EventHandler form as the page writes it (imports added, the type renamed) and runs it", { timeout: BUILD_TIMEOUT_MS }, async () => {
    const r = built(
      await buildGoHooks({ collection: 'tasks', files: [{ event: 'aftercommit', file: 'tasks/aftercommit.go', source: SEED_AFTERCOMMIT_GO }], buildDir, sdkDir: SDK }),
    );
    assert.equal(r.reused, false);
    const p = await GoPluginProcess.start({ binary: r.binary, socketDir: tmp, log: () => undefined });
    try {
      const res = await p.run(ctx('EVENT_AFTER_COMMIT', { id: 't1', title: 'fire', priority: 9, status: 'completed' }, { username: 'ann' }), 5000);
      assert.equal(res.cancel, null);
      assert.deepEqual(
        res.emits.map((e) => e.event),
        ['urgent_task_created', 'task_completed'],
      );
      const urgent = JSON.parse(res.emits[0]!.data_json.toString('utf8'));
      assert.equal(urgent.taskId, 't1');
      assert.equal(urgent.priority, 9);
      assert.equal(urgent.createdBy, 'ann');
      assert.equal(typeof urgent.timestamp, 'string');
    } finally {
      await p.stop();
    }
  });

  it("reports compile errors at the user's file, line and column", { timeout: BUILD_TIMEOUT_MS }, async () => {
    // Line 1 (where the package clause is injected) and a later line.
    const broken = `import "strings"

func Run(ctx *EventContext) error {
	ctx.Data["x"] = undefinedThing
	return nil
}
`;
    const r = await buildGoHooks({
      collection: 'broken',
      files: [
        { event: 'post', file: 'broken/post.go', source: broken },
        { event: 'validate', file: 'broken/validate.go', source: VALIDATE_GO },
      ],
      buildDir,
      sdkDir: SDK,
    });
    assert.ok('errors' in r, JSON.stringify(r));
    const sorted = [...r.errors].sort((a, b) => a.line - b.line);
    assert.equal(sorted.length, 2, JSON.stringify(r.errors));
    assert.deepEqual(
      sorted.map((e) => [e.file, e.line, e.column]),
      [
        ['broken/post.go', 1, 8],
        ['broken/post.go', 4, 18],
      ],
    );
    assert.match(sorted[0]!.message, /"strings" imported and not used/);
    assert.match(sorted[1]!.message, /undefined: undefinedThing/);

    // A file with no hook in it is reported without running Go.
    const none = await buildGoHooks({ collection: 'broken', files: [{ event: 'get', file: 'broken/get.go', source: 'func helper() {}\n' }], buildDir, sdkDir: SDK });
    assert.ok('errors' in none);
    assert.equal(none.errors[0]!.file, 'broken/get.go');
    assert.match(none.errors[0]!.message, /func Run\(ctx \*EventContext\) error/);
  });

  it("blames a wrong hook signature on the user's declaration line, not on generated code", { timeout: BUILD_TIMEOUT_MS }, async () => {
    const wrong = `package todos

// Run returns the wrong type.
func Run(ctx *EventContext) string {
	return "no"
}
`;
    const r = await buildGoHooks({ collection: 'wrong', files: [{ event: 'post', file: 'wrong/post.go', source: wrong }], buildDir, sdkDir: SDK });
    assert.ok('errors' in r, JSON.stringify(r));
    assert.equal(r.errors.length, 1, JSON.stringify(r.errors));
    assert.deepEqual([r.errors[0]!.file, r.errors[0]!.line], ['wrong/post.go', 4]);
    assert.match(r.errors[0]!.message, /a Go hook needs func Run\(ctx \*EventContext\) error/);
    assert.doesNotMatch(JSON.stringify(r.errors), /main\.go|zz_deployd|hook_post/);
  });

  it('a build removes what an interrupted build (a killed server) left behind', { timeout: BUILD_TIMEOUT_MS }, async () => {
    const files = [{ event: 'post', file: 'left/post.go', source: 'func Run(ctx *EventContext) error { return nil }\n' }];
    const plan = planGoBuild({ collection: 'left', files, buildDir, sdkDir: SDK });
    const dir = path.dirname(plan.binary);
    // A pid that does not run: the highest possible one is never handed out this soon.
    fs.mkdirSync(path.join(dir, 'src-4194303-deadbeef', 'hook_post'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'plugin.tmp-4194303-deadbeef'), 'half a binary');
    fs.mkdirSync(path.join(dir, `src-${process.pid}-0badcafe`)); // a build of a live process: kept
    built(await buildGoHooks({ collection: 'left', files, buildDir, sdkDir: SDK }));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['plugin', `src-${process.pid}-0badcafe`]);
  });

  it('says so when there is no Go toolchain', async () => {
    await assert.rejects(
      buildGoHooks({ collection: 'nogo', files: todoFiles, buildDir, sdkDir: SDK, go: 'no-such-go-toolchain' }),
      (err: unknown) => err instanceof GoBuildError && err.code === 'NO_GO' && /Go hooks need the Go toolchain/.test(err.message),
    );
  });
});
