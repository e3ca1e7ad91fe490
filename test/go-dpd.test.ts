/**
 * dpd from Go at the runner level (the HTTP behaviour is in go-behaviour.test.ts): a Go hook's
 * ctx.Dpd call reaches the internal handler with the very request scope its hook was run with
 * (the caller's identity and request stack), and the host's HostService refuses calls that name
 * no running invocation (a forged or stale id), and plain-text clients when AutoMTLS is on.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { GoHookRunner } from '../src/hooks/go/go-runner.js';
import type { InternalCall } from '../src/hooks/hook-runner.js';
import type { EventContext } from '../src/hooks/protocol.js';
import { goRun, useGo } from './helpers/go.js';
import { ROOT } from './helpers/server.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, trace() {}, fatal() {}, child() { return quiet; } } as any;

const POST_GO = goRun(`	got, err := ctx.Dpd("others").Get(map[string]interface{}{"owner": ctx.Data["owner"]})
	if err != nil {
		return err
	}
	ctx.Data["others"] = len(got)
	one, err := ctx.Dpd("others").GetOne("missing")
	if e, ok := err.(*DpdError); ok {
		ctx.Data["missing"] = fmt.Sprint(e.Status, " ", e.Message)
	} else {
		ctx.Data["missing"] = fmt.Sprint("no error: ", one)
	}`, ['fmt']);

function ctx(data: Record<string, unknown>): EventContext {
  return {
    collection: 'todos', event: 'post', method: 'POST', requestEvent: 'POST', data: data as any, previous: {}, query: {},
    caller: { isRoot: false, me: { id: 'u1', username: 'ann' } }, internal: false, requestId: 'r1', success: false,
  };
}

function hostClient(socketDir: string, credentials: grpc.ChannelCredentials): { dpd(req: object): Promise<any>; close(): void } {
  const dir = fs.readdirSync(socketDir).find((d) => d.startsWith('dpd-go-') && fs.existsSync(path.join(socketDir, d, 'host.sock')));
  assert.ok(dir, 'a sidecar directory with host.sock');
  const def = protoLoader.loadSync(path.join(ROOT, 'proto', 'deployd', 'hooks', 'v1', 'hooks.proto'), { keepCase: true, longs: String, defaults: true });
  const Service = grpc.makeGenericClientConstructor(def['deployd.hooks.v1.HostService'] as any, 'HostService');
  const client = new Service(`unix://${path.join(socketDir, dir!, 'host.sock')}`, credentials) as any;
  return {
    dpd: (req) => new Promise((resolve, reject) => client.Dpd(req, { deadline: Date.now() + 5000 }, (err: Error | null, res: any) => (err ? reject(err) : resolve(res)))),
    close: () => client.close(),
  };
}

for (const autoMTLS of [false, true]) {
  describe(`dpd from Go, runner level (AutoMTLS ${autoMTLS ? 'on' : 'off'})`, () => {
    let tmp: string;
    let runner: GoHookRunner;
    const calls: { scope: unknown; call: InternalCall }[] = [];

    before(async () => {
      useGo();
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-godpd-'));
      runner = new GoHookRunner({ buildDir: path.join(tmp, 'build'), socketDir: tmp, log: quiet, autoMTLS, buildWaitMs: 600_000 });
      runner.setInternalHandler(async (scope, call) => {
        calls.push({ scope, call });
        if (call.id === 'missing') return { error: { message: 'not found', status: 404, statusCode: 404 } };
        return { result: [{ id: 'a' }, { id: 'b' }] };
      });
      const errors = await runner.load('todos', [{ event: 'post', file: 'todos/post.go', source: POST_GO }], { timeoutMs: 5000, memoryMb: 64 });
      assert.deepEqual(errors, {});
      await runner.settled();
    }, { timeout: 600_000 });

    after(async () => {
      await runner?.close();
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    }, { timeout: 60_000 });

    it("each call reaches the internal handler with its own hook's request scope; errors come back as DpdError", async () => {
      calls.length = 0;
      const scopes = [{ request: 1 }, { request: 2 }];
      const results = await Promise.all(scopes.map((scope, i) => runner.run(ctx({ title: `t${i}`, owner: `o${i}` }), scope, 'todos')));
      for (const [i, res] of results.entries()) {
        assert.equal(res.cancel, undefined, JSON.stringify(res.cancel));
        assert.equal(res.data.others, 2);
        assert.equal(res.data.missing, '404 not found');
        const mine = calls.filter((c) => c.scope === scopes[i]);
        assert.deepEqual(mine.map((c) => [c.call.collection, c.call.method, c.call.id ?? null, c.call.query]), [
          ['others', 'GET', null, { owner: `o${i}` }],
          ['others', 'GET', 'missing', {}],
        ]);
      }
      assert.equal(calls.length, 4);
    });

    it('HostService refuses a call that names no running invocation (forged or stale id)', async () => {
      calls.length = 0;
      const credentials = autoMTLS ? undefined : grpc.credentials.createInsecure();
      if (!credentials) {
        // A client without the host's certificate pair cannot even connect.
        const client = hostClient(tmp, grpc.credentials.createInsecure());
        try {
          await assert.rejects(client.dpd({ invocation_id: 1, collection: 'others', method: 'GET' }), (err: any) => err.code === grpc.status.UNAVAILABLE);
        } finally {
          client.close();
        }
        return;
      }
      const client = hostClient(tmp, credentials);
      try {
        for (const id of ['1', '999999']) {
          const res = await client.dpd({ invocation_id: id, collection: 'others', method: 'GET' });
          const error = JSON.parse(Buffer.from(res.error_json).toString('utf8'));
          assert.equal(error.status, 400);
          assert.match(error.message, /not running/);
        }
        assert.equal(calls.length, 0);
      } finally {
        client.close();
      }
    });
  });
}
