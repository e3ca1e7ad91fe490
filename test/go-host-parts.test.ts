/**
 * The Go host's parts that need no process, in-process and fast: go-plugin's handshake
 * environment, the plugin's log lines, the protocol messages through the real hooks.proto encoding,
 * HostService/Dpd requests, the generated support file, and the one failed result of every runner.
 * (The same parts end to end, with real Go programs: go-plugin-host, go-sidecars, go-dpd.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failedResult } from '../src/hooks/hook-result.js';
import type { EventContext } from '../src/hooks/protocol.js';
import { handshakeEnv, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, parseHandshake } from '../src/hooks/go/handshake.js';
import { GoPluginError } from '../src/hooks/go/plugin-error.js';
import { PluginStderr, PluginStdio, type PluginLogLevel } from '../src/hooks/go/plugin-log.js';
import { DEFAULT_HOOKS_PROTO, hookMethod } from '../src/hooks/go/plugin-protos.js';
import { fromProto, fromProtoDpd, toProto, toProtoDpd, type ProtoDpdRequest, type ProtoEventContext, type ProtoHookResult } from '../src/hooks/go/proto-convert.js';
import { goSupportFile } from '../src/hooks/go/support-file.js';

type Line = [PluginLogLevel, string, Record<string, unknown>];
function collector(): { lines: Line[]; log: (level: PluginLogLevel, message: string, fields: Record<string, unknown>) => void } {
  const lines: Line[] = [];
  return { lines, log: (level, message, fields) => lines.push([level, message, fields]) };
}

const ctx: EventContext = {
  collection: 'todos',
  event: 'post',
  method: 'POST',
  requestEvent: 'POST',
  data: { title: 'milk', done: false, tags: ['a'] },
  previous: null,
  query: { done: { $ne: true } },
  caller: { isRoot: false, me: { id: 'u1', username: 'ann' } },
  internal: false,
  requestId: 'r-1',
  success: true,
  url: '/x',
  body: { title: 'milk' },
};

describe('go-plugin handshake', () => {
  it('sets the magic cookie and versions, and clears go-plugin variables the host did not ask for', () => {
    const env = handshakeEnv({ PATH: '/bin', PLUGIN_CLIENT_CERT: 'stale', PLUGIN_MULTIPLEX_GRPC: 'true' }, { EXTRA: '1' }, '/tmp/s', undefined);
    assert.equal(env[MAGIC_COOKIE_KEY], MAGIC_COOKIE_VALUE);
    assert.equal(env.PLUGIN_PROTOCOL_VERSIONS, '1');
    assert.equal(env.PLUGIN_UNIX_SOCKET_DIR, '/tmp/s');
    assert.equal(env.PATH, '/bin');
    assert.equal(env.EXTRA, '1');
    assert.equal(env.PLUGIN_CLIENT_CERT, undefined);
    assert.equal(env.PLUGIN_MULTIPLEX_GRPC, undefined);
    assert.equal(handshakeEnv({}, undefined, '/tmp/s', 'PEM').PLUGIN_CLIENT_CERT, 'PEM');
  });

  it('reads a grpc handshake line and refuses other protocols with a HANDSHAKE error', () => {
    assert.deepEqual(parseHandshake('1|1|unix|/tmp/s/plugin.sock|grpc|\n', 'p'), { network: 'unix', address: '/tmp/s/plugin.sock', serverCert: '' });
    assert.throws(() => parseHandshake('1|1|unix|/tmp/x|netrpc', 'p'), (err: unknown) => err instanceof GoPluginError && err.code === 'HANDSHAKE' && /only grpc/.test(err.message));
    assert.throws(() => parseHandshake('1|2|unix|/tmp/x|grpc', 'p'), (err: unknown) => err instanceof GoPluginError && /hook protocol version 2/.test(err.message));
    assert.throws(() => parseHandshake('hello', 'p'), (err: unknown) => err instanceof GoPluginError && /unrecognized handshake/.test(err.message));
  });
});

describe('plugin log lines', () => {
  it('hclog JSON keeps its level, message and fields; a tagged line its level', () => {
    const { lines, log } = collector();
    const stderr = new PluginStderr(log);
    stderr.line('{"@level":"warning","@message":"slow","@timestamp":"2026-01-01T00:00:00Z","@module":"hooks","ms":12}');
    stderr.line('[ERROR] broken');
    stderr.line('   ');
    assert.deepEqual(lines, [
      ['warn', 'slow', { module: 'hooks', ms: 12, time: '2026-01-01T00:00:00Z' }],
      ['error', 'broken', {}],
    ]);
  });

  it('untagged lines are debug until a panic begins, then errors', () => {
    const { lines, log } = collector();
    const stderr = new PluginStderr(log);
    stderr.line('starting');
    stderr.line('panic: boom');
    stderr.line('goroutine 1 [running]:');
    assert.deepEqual(lines.map(([level]) => level), ['debug', 'error', 'error']);
  });

  it('GRPCStdio chunks become whole lines: stdout at info, stderr at warn, a last partial line on end', () => {
    const { lines, log } = collector();
    const stdio = new PluginStdio(log);
    stdio.data('STDOUT', Buffer.from('hel'));
    stdio.data('STDOUT', Buffer.from('lo\nwor'));
    stdio.data('STDERR', Buffer.from('oops\n'));
    assert.deepEqual(lines, [
      ['info', 'hello', { stream: 'stdout' }],
      ['warn', 'oops', { stream: 'stderr' }],
    ]);
    stdio.end();
    assert.deepEqual(lines.at(-1), ['info', 'wor', { stream: 'stdout' }]);
  });
});

describe('protocol messages through hooks.proto', () => {
  const run = hookMethod(DEFAULT_HOOKS_PROTO, 'Run');

  it('an EventContext survives the encoding (JSON fields as bytes, AfterCommit previous absent)', () => {
    const decoded = run.requestDeserialize(run.requestSerialize(toProto(ctx))) as ProtoEventContext;
    assert.equal(decoded.event, 'EVENT_POST');
    assert.equal(decoded.collection, 'todos');
    assert.deepEqual(JSON.parse(Buffer.from(decoded.data_json!).toString()), ctx.data);
    assert.deepEqual(JSON.parse(Buffer.from(decoded.caller!.me_json!).toString()), ctx.caller.me);
    assert.equal(decoded.previous_json!.length, 0);
    assert.equal(decoded.url, '/x');
  });

  it('a HookResult comes back as protocol.ts objects: cancel, emits, response changes, logs, rooms', () => {
    const json = (v: unknown) => Buffer.from(JSON.stringify(v));
    const wire = run.responseSerialize({
      data_json: json({ title: 'MILK' }),
      cancel: { message: 'no', status: 403, is_error: false },
      errors: { title: 'too short' },
      hidden: ['secret'],
      protected: ['owner'],
      emits: [{ event: 'todos:new', data_json: json({ n: 1 }), room: 'r', users_collection: '', users_query_json: Buffer.alloc(0) }],
      response: { replace_data: false, data_json: Buffer.alloc(0), add_fields_json: json({ extra: true }), messages: ['hi'], status: 201 },
      logs: [{ level: 'warn', message: 'w', fields_json: json({ k: 'v' }) }],
      query_json: Buffer.alloc(0),
      session_rooms: { join: ['a'], leave: [], leave_all: true },
    });
    const result = fromProto(run.responseDeserialize(wire) as ProtoHookResult, ctx);
    assert.deepEqual(result, {
      data: { title: 'MILK' },
      cancel: { message: 'no', status: 403, isError: false },
      errors: { title: 'too short' },
      hidden: ['secret'],
      protected: ['owner'],
      emits: [{ event: 'todos:new', data: { n: 1 }, room: 'r' }],
      response: { replaceData: false, addFields: { extra: true }, messages: ['hi'], status: 201 },
      logs: [{ level: 'warn', message: 'w', fields: { k: 'v' } }],
      sessionRooms: { join: ['a'], leave: [], leaveAll: true },
    });
  });

  it('a result without data keeps the event\'s data', () => {
    const result = fromProto(run.responseDeserialize(run.responseSerialize({})) as ProtoHookResult, ctx);
    assert.deepEqual(result.data, ctx.data);
    assert.equal(result.cancel, undefined);
  });
});

describe('HostService/Dpd requests', () => {
  const request = (over: Partial<ProtoDpdRequest>): ProtoDpdRequest => ({
    invocation_id: '1', collection: 'todos', method: 'GET', id: '', query_json: Buffer.from('{"done":true}'), body_json: Buffer.alloc(0), ...over,
  });
  const errorOf = (answer: unknown) => JSON.parse(Buffer.from((answer as { error_json: Buffer }).error_json).toString());

  it('become the internal call they ask for', () => {
    assert.deepEqual(fromProtoDpd(request({})), { collection: 'todos', method: 'GET', id: undefined, query: { done: true }, body: {} });
    assert.deepEqual(fromProtoDpd(request({ method: 'PUT', id: 'a1', body_json: Buffer.from('{"x":1}') })), { collection: 'todos', method: 'PUT', id: 'a1', query: { done: true }, body: { x: 1 } });
  });

  it('a bad request is a 400 answered by the host, in hooks-go DpdError shape', () => {
    assert.deepEqual(errorOf(fromProtoDpd(request({ method: 'PATCH' }))), { message: 'dpd: unknown method "PATCH"', status: 400, statusCode: 400 });
    assert.equal(errorOf(fromProtoDpd(request({ collection: '' }))).message, 'dpd: no collection named');
    assert.equal(errorOf(fromProtoDpd(request({ query_json: Buffer.from('[1]') }))).message, 'dpd: query and body must be JSON objects');
  });

  it('an outcome is a result or an error, as JSON', () => {
    assert.deepEqual(JSON.parse(toProtoDpd({ result: [{ id: 'a' }] }).result_json!.toString()), [{ id: 'a' }]);
    assert.deepEqual(errorOf(toProtoDpd({ error: { message: 'not found', status: 404 } })), { message: 'not found', status: 404 });
  });
});

describe('generated Go support file', () => {
  it('declares what hook files use, minus what the file declares itself', () => {
    const all = goSupportFile('Code generated by test.', 'hook_post', new Set());
    assert.match(all, /^\/\/ Code generated by test\.\n\npackage hook_post\n/);
    assert.match(all, /type EventContext = hooks\.EventContext/);
    assert.match(all, /type DpdError = hooks\.DpdError/);
    assert.match(all, /var deployd = /);
    const some = goSupportFile('x', 'p', new Set(['EventContext', 'deployd']));
    assert.doesNotMatch(some, /type EventContext/);
    assert.doesNotMatch(some, /var deployd/);
    assert.match(some, /type DpdError/);
  });
});

describe('a failed run', () => {
  it('is one shape for every runner: no data, no emits, a cancel marked as an error', () => {
    assert.deepEqual(failedResult('go hook todos/post.go timed out', 504), {
      data: {}, errors: {}, hidden: [], protected: [], emits: [], logs: [],
      cancel: { message: 'go hook todos/post.go timed out', status: 504, isError: true },
    });
    assert.equal(failedResult('hook failed').cancel!.status, 500);
  });
});
