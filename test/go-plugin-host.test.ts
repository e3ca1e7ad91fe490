/**
 * The go-plugin host (src/hooks/go/plugin-host.ts) against real Go plugins: hooks-go's
 * examples/post, and a test plugin (a temp module using hooks-go through a `replace`) that sleeps,
 * prints or crashes on demand. Needs the Go toolchain; the first run may download Go modules.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { parseHandshake } from '../src/hooks/go/handshake.js';
import { GoPluginError } from '../src/hooks/go/plugin-error.js';
import { GoPluginProcess } from '../src/hooks/go/plugin-host.js';
import type { PluginLogLevel } from '../src/hooks/go/plugin-log.js';
import type { ProtoEventContext } from '../src/hooks/go/proto-convert.js';
import { ROOT } from './helpers/server.js';

const HOOKS_GO = path.join(ROOT, 'hooks-go');
const GO = fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
const BUILD_TIMEOUT_MS = 600_000;

const TEST_PLUGIN = `package main

import (
	"fmt"
	"os"
	"time"

	"github.com/deployd-ts/deployd-ts/hooks-go/hooks"
)

func main() {
	hooks.Register("post", func(ctx *hooks.EventContext) error {
		switch ctx.Data["mode"] {
		case "sleep":
			time.Sleep(3 * time.Second)
		case "print":
			fmt.Println("hello on stdout")
			fmt.Fprintln(os.Stderr, "hello on stderr")
		case "crash":
			go func() { panic("boom from a goroutine") }()
			time.Sleep(3 * time.Second)
		}
		ctx.Data["seen"] = true
		return nil
	})
	hooks.Serve()
}
`;

/** A program built before RunStream existed: it serves only HookService/Run (the host falls back to it). */
const RUN_ONLY_PLUGIN = `package main

import (
	"context"

	"github.com/hashicorp/go-plugin"

	"github.com/deployd-ts/deployd-ts/hooks-go/hooks"
	hooksv1 "github.com/deployd-ts/deployd-ts/hooks-go/proto/hooksv1"
)

type runOnly struct {
	hooksv1.UnimplementedHookServiceServer
	r *hooks.Registry
}

func (s runOnly) Run(ctx context.Context, in *hooksv1.EventContext) (*hooksv1.HookResult, error) {
	return s.r.Run(ctx, in)
}

func main() {
	r := hooks.NewRegistry()
	r.Register("post", func(c *hooks.EventContext) error {
		c.Data["unary"] = true
		return nil
	})
	cfg := r.ServeConfig()
	cfg.Plugins = plugin.PluginSet{hooks.PluginName: &hooks.Plugin{Impl: runOnly{r: r}}}
	plugin.Serve(cfg)
}
`;

function run(cmd: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: { ...process.env, ...env }, timeout: BUILD_TIMEOUT_MS - 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`$ ${cmd} ${args.join(' ')}\n${stdout}${stderr}\n${error.message}`));
      else resolve();
    });
  });
}

interface Logged {
  level: PluginLogLevel;
  message: string;
  fields: Record<string, unknown>;
}

function collector(): { lines: Logged[]; log: (level: PluginLogLevel, message: string, fields: Record<string, unknown>) => void } {
  const lines: Logged[] = [];
  return { lines, log: (level, message, fields) => lines.push({ level, message, fields }) };
}

/** Whether pid is a running process (a zombie, killed but not yet reaped, counts as gone). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function postContext(data: Record<string, unknown>, me: Record<string, unknown> | null): ProtoEventContext {
  return {
    collection: 'todos',
    event: 'EVENT_POST',
    method: 'POST',
    data_json: Buffer.from(JSON.stringify(data)),
    query_json: Buffer.from('{}'),
    caller: { is_root: false, me_json: me ? Buffer.from(JSON.stringify(me)) : Buffer.alloc(0) },
    request_id: 'req-1',
  };
}

async function rejectsWith(p: Promise<unknown>, code: string, pattern: RegExp): Promise<GoPluginError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GoPluginError, `not a GoPluginError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return err;
  }
  assert.fail('expected a rejection');
}

describe('go-plugin host', () => {
  let tmp: string;
  let postBin: string;
  let testBin: string;
  let runOnlyBin: string;

  before(
    async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-gph-'));
      postBin = path.join(tmp, 'post');
      await run(GO, ['build', '-o', postBin, './examples/post'], HOOKS_GO);
      const mod = path.join(tmp, 'testplugin');
      fs.mkdirSync(mod);
      fs.writeFileSync(
        path.join(mod, 'go.mod'),
        `module testplugin\n\ngo 1.26.0\n\nrequire github.com/deployd-ts/deployd-ts/hooks-go v0.0.0\n\nreplace github.com/deployd-ts/deployd-ts/hooks-go => ${HOOKS_GO}\n`,
      );
      fs.copyFileSync(path.join(HOOKS_GO, 'go.sum'), path.join(mod, 'go.sum'));
      fs.writeFileSync(path.join(mod, 'main.go'), TEST_PLUGIN);
      testBin = path.join(tmp, 'testplugin-bin');
      await run(GO, ['build', '-o', testBin, '.'], mod, { GOFLAGS: '-mod=mod' });
      fs.mkdirSync(path.join(mod, 'runonly'));
      fs.writeFileSync(path.join(mod, 'runonly', 'main.go'), RUN_ONLY_PLUGIN);
      runOnlyBin = path.join(tmp, 'runonly-bin');
      await run(GO, ['build', '-o', runOnlyBin, './runonly'], mod, { GOFLAGS: '-mod=mod' });
    },
    { timeout: BUILD_TIMEOUT_MS },
  );

  after(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  }, { timeout: 60_000 });

  it('starts examples/post, health-checks it, runs the hook, a cancel, and stops it cleanly', async () => {
    const { lines, log } = collector();
    const p = await GoPluginProcess.start({ binary: postBin, socketDir: tmp, log, startTimeoutMs: 10_000 });
    try {
      assert.ok(p.pid && pidAlive(p.pid));
      assert.match(p.address!, /^unix:\/\/\//);
      const socket = p.address!.slice('unix://'.length);
      assert.ok(fs.existsSync(socket));
      assert.ok(socket.startsWith(p.socketDir + path.sep), 'socket is in the host-owned directory');
      assert.equal(await p.ping(), true);
      assert.equal(p.streaming, true, 'hooks-go programs take every call over one RunStream stream');
      // hclog JSON from stderr became structured log calls
      assert.ok(
        lines.some((l) => l.level === 'debug' && l.message === 'plugin address' && l.fields.network === 'unix'),
        JSON.stringify(lines),
      );

      const before = Date.now();
      const res = await p.run(postContext({ title: 'milk' }, { id: 'u1', username: 'ann' }), 2000);
      assert.equal(res.cancel, null);
      const data = JSON.parse(res.data_json.toString('utf8'));
      assert.equal(data.title, 'milk');
      assert.equal(data.owner, 'u1');
      assert.ok(data.createdAt >= before - 1000 && data.createdAt <= Date.now() + 1000);
      assert.equal(res.emits.length, 1);
      assert.equal(res.emits[0].event, 'todo:created');
      assert.equal(res.emits[0].room, 'todos');
      assert.deepEqual(JSON.parse(res.emits[0].data_json.toString('utf8')), { title: 'milk' });
      assert.deepEqual(res.errors, {});

      // the example cancels when nobody is logged in
      const cancelled = await p.run(postContext({ title: 'milk' }, null), 2000);
      assert.deepEqual(cancelled.cancel, { message: 'log in to create todos', status: 401, is_error: false });

      const pid = p.pid!;
      const dir = p.socketDir;
      await p.stop();
      assert.equal(p.alive, false);
      assert.equal(pidAlive(pid), false, 'plugin process is gone');
      assert.equal(fs.existsSync(socket), false, 'socket removed');
      assert.equal(fs.existsSync(dir), false, 'socket directory removed');
      await rejectsWith(p.run(postContext({}, null), 1000), 'STOPPED', /stopped/);
      await p.stop(); // idempotent
    } finally {
      await p.stop();
    }
  });

  it('AutoMTLS: mutual TLS with the plugin; a plain-text client is refused', async () => {
    const p = await GoPluginProcess.start({ binary: postBin, socketDir: tmp, log: () => {}, autoMTLS: true });
    try {
      assert.equal(p.tls, true);
      const res = await p.run(postContext({ title: 'tls' }, { id: 'u2' }), 2000);
      assert.equal(JSON.parse(res.data_json.toString()).owner, 'u2');
      const plain = new grpc.Client(p.address!, grpc.credentials.createInsecure());
      try {
        const err = await new Promise<grpc.ServiceError | null>((resolve) =>
          plain.makeUnaryRequest(
            '/grpc.health.v1.Health/Check',
            (x: Buffer) => x,
            (x: Buffer) => x,
            Buffer.from([0x0a, 6, ...Buffer.from('plugin')]),
            new grpc.Metadata(),
            { deadline: Date.now() + 1000 },
            (e) => resolve(e),
          ),
        );
        assert.ok(err, 'a plain-text call must fail');
      } finally {
        plain.close();
      }
    } finally {
      await p.stop();
    }
  });

  it('calls a program without RunStream (an older SDK) one Run at a time', async () => {
    const p = await GoPluginProcess.start({ binary: runOnlyBin, socketDir: tmp, log: () => {} });
    try {
      assert.equal(p.streaming, false);
      const results = await Promise.all([1, 2, 3].map((n) => p.run(postContext({ n }, null), 5000)));
      for (const [i, res] of results.entries()) {
        assert.equal(res.cancel, null);
        assert.deepEqual(JSON.parse(res.data_json.toString('utf8')), { n: i + 1, unary: true });
      }
    } finally {
      await p.stop();
    }
  });

  it('rejects a Run that exceeds its deadline, and the plugin stays usable', async () => {
    const p = await GoPluginProcess.start({ binary: testBin, socketDir: tmp, log: () => {} });
    try {
      const t0 = Date.now();
      await rejectsWith(p.run(postContext({ mode: 'sleep' }, null), 200), 'DEADLINE', /did not finish within 200 ms/);
      assert.ok(Date.now() - t0 < 1500);
      const res = await p.run(postContext({ mode: 'none' }, null), 2000);
      assert.equal(JSON.parse(res.data_json.toString()).seen, true);
    } finally {
      await p.stop();
    }
  });

  it("forwards the plugin's stdout/stderr (GRPCStdio) to the log", async () => {
    const { lines, log } = collector();
    const p = await GoPluginProcess.start({ binary: testBin, socketDir: tmp, log });
    try {
      await p.run(postContext({ mode: 'print' }, null), 2000);
      await waitFor(() => lines.some((l) => l.message === 'hello on stdout') && lines.some((l) => l.message === 'hello on stderr'));
      assert.deepEqual(
        lines.find((l) => l.message === 'hello on stdout'),
        { level: 'info', message: 'hello on stdout', fields: { stream: 'stdout' } },
      );
      assert.equal(lines.find((l) => l.message === 'hello on stderr')!.level, 'warn');
    } finally {
      await p.stop();
    }
  });

  it('reports a plugin that dies during a call as EXITED, with the panic logged as errors', async () => {
    const { lines, log } = collector();
    const p = await GoPluginProcess.start({ binary: testBin, socketDir: tmp, log });
    const dir = p.socketDir;
    try {
      await rejectsWith(p.run(postContext({ mode: 'crash' }, null), 5000), 'EXITED', /exited \(code 2\)/);
      assert.equal(p.alive, false);
      await waitFor(() => lines.some((l) => l.level === 'error' && /boom from a goroutine/.test(l.message)));
    } finally {
      await p.stop();
    }
    assert.equal(fs.existsSync(dir), false);
  });

  it('fails to start a binary that is not a plugin, with a clear message', async () => {
    const before = fs.readdirSync(tmp).filter((f) => f.startsWith('dpd-go-')).length;
    await rejectsWith(
      GoPluginProcess.start({ binary: '/bin/true', socketDir: tmp, log: () => {} }),
      'EXITED',
      /exited \(code 0\) before the go-plugin handshake/,
    );

    const garbage = path.join(tmp, 'garbage.sh');
    fs.writeFileSync(garbage, '#!/bin/sh\necho "hello, I am not a plugin"\nexec sleep 30\n', { mode: 0o755 });
    const err = await rejectsWith(GoPluginProcess.start({ binary: garbage, socketDir: tmp, log: () => {} }), 'HANDSHAKE', /unrecognized handshake/);
    assert.match(err.message, /hello, I am not a plugin/);

    const failing = path.join(tmp, 'failing.sh');
    fs.writeFileSync(failing, '#!/bin/sh\necho "something went wrong" >&2\nexit 3\n', { mode: 0o755 });
    await rejectsWith(
      GoPluginProcess.start({ binary: failing, socketDir: tmp, log: () => {} }),
      'EXITED',
      /exited \(code 3\) before the go-plugin handshake; stderr:\nsomething went wrong/,
    );

    const silent = path.join(tmp, 'silent.sh');
    fs.writeFileSync(silent, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
    await rejectsWith(
      GoPluginProcess.start({ binary: silent, socketDir: tmp, log: () => {}, startTimeoutMs: 300 }),
      'START_TIMEOUT',
      /no handshake within 300 ms/,
    );

    const oldVersion = path.join(tmp, 'old.sh');
    fs.writeFileSync(oldVersion, '#!/bin/sh\necho "1|2|unix|/nowhere|grpc|"\nexec sleep 30\n', { mode: 0o755 });
    await rejectsWith(GoPluginProcess.start({ binary: oldVersion, socketDir: tmp, log: () => {} }), 'HANDSHAKE', /incompatible hook protocol version 2/);

    await rejectsWith(GoPluginProcess.start({ binary: path.join(tmp, 'missing'), socketDir: tmp, log: () => {} }), 'SPAWN', /ENOENT/);

    // the Go plugin run by hand (without the cookie) refuses: go-plugin's own message
    const err2 = await new Promise<string>((resolve) => execFile(postBin, (_e, _o, stderr) => resolve(stderr)));
    assert.match(err2, /This binary is a plugin/);

    // no socket directory left behind by the failures
    assert.equal(fs.readdirSync(tmp).filter((f) => f.startsWith('dpd-go-')).length, before);
  });

  it('parses handshake lines like go-plugin', () => {
    assert.deepEqual(parseHandshake('1|1|unix|/tmp/x/plugin1|grpc|\n', 'p'), {
      network: 'unix',
      address: '/tmp/x/plugin1',
      serverCert: '',
    });
    assert.equal(parseHandshake(`1|1|unix|/x|grpc|${'A'.repeat(60)}`, 'p').serverCert, 'A'.repeat(60));
    assert.equal(parseHandshake('1|1|unix|/x|grpc|short-extra-data', 'p').serverCert, '');
    assert.throws(() => parseHandshake('2|1|unix|/x|grpc', 'p'), /core protocol version 2/);
    assert.throws(() => parseHandshake('1|1|unix|/x', 'p'), /protocol "netrpc"; only grpc/);
    assert.throws(() => parseHandshake('1|1|udp|/x|grpc', 'p'), /unsupported network "udp"/);
  });

  it('kills its plugins when the host process exits', async () => {
    const script = path.join(tmp, 'host.mjs');
    const mod = path.join(ROOT, 'dist', 'src', 'hooks', 'go', 'plugin-host.js');
    fs.writeFileSync(
      script,
      `import { GoPluginProcess } from ${JSON.stringify(mod)};\n` +
        `const p = await GoPluginProcess.start({ binary: ${JSON.stringify(postBin)}, socketDir: ${JSON.stringify(tmp)}, log: () => {} });\n` +
        `console.log(JSON.stringify({ pid: p.pid, dir: p.socketDir }));\nprocess.exit(0);\n`,
    );
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.on('error', reject);
      child.on('exit', () => resolve(text));
    });
    const { pid, dir } = JSON.parse(out) as { pid: number; dir: string };
    await waitFor(() => !pidAlive(pid));
    assert.equal(fs.existsSync(dir), false);
  });
  it('leaves no plugin process or socket behind when the host is killed with SIGKILL', async () => {
    const script = path.join(tmp, 'host-killed.mjs');
    const mod = path.join(ROOT, 'dist', 'src', 'hooks', 'go', 'plugin-host.js');
    fs.writeFileSync(
      script,
      `import { GoPluginProcess } from ${JSON.stringify(mod)};\n` +
        `const p = await GoPluginProcess.start({ binary: ${JSON.stringify(postBin)}, socketDir: ${JSON.stringify(tmp)}, log: () => {} });\n` +
        `console.log(JSON.stringify({ pid: p.pid, dir: p.socketDir }));\nsetInterval(() => {}, 1000);\n`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('\n')) resolve(text.trim());
      });
      child.on('error', reject);
    });
    const { pid, dir } = JSON.parse(line) as { pid: number; dir: string };
    assert.ok(pidAlive(pid), 'the plugin runs while its host does');
    assert.ok(fs.readdirSync(dir).length > 0, 'its socket exists');
    child.kill('SIGKILL'); // no exit handlers run in the host
    await waitFor(() => !pidAlive(pid));
    await waitFor(() => !fs.existsSync(dir));
  });
});
