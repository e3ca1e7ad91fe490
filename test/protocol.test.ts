/**
 * The hook protocol has one definition, proto/deployd/hooks/v1/hooks.proto. The JavaScript runner's
 * plain objects (src/hooks/protocol.ts) must have exactly its fields: a proto `foo_json` field is
 * the decoded value `foo`. The samples below are typed `Required<…>` with object literals, so the
 * compiler rejects a missing or extra TypeScript field; the test compares them with the .proto.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import type { Caller, Cancel, Emit, EventContext, HookResult, LogLine, ResponseMutation, SessionRooms } from '../src/hooks/protocol.js';
import { HOOK_EVENTS, PROTO_EVENT } from '../src/hooks/protocol.js';
import { ROOT } from './helpers/server.js';

const root = new protobuf.Root().loadSync(path.join(ROOT, 'proto', 'deployd', 'hooks', 'v1', 'hooks.proto'), { keepCase: true });

/** proto field names as the TypeScript objects spell them. */
function protoFields(message: string): string[] {
  const type = root.lookupType(`deployd.hooks.v1.${message}`);
  return type.fieldsArray.map((f) => f.name.replace(/_json$/, '').replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())).sort();
}

const caller: Required<Caller> = { isRoot: false, me: null };
const samples: Record<string, object> = {
  EventContext: {
    collection: 'todos', event: 'post', method: 'POST', requestEvent: 'POST', data: {}, previous: null, query: {}, caller, internal: false, requestId: '1', success: false, url: '/', body: {},
  } satisfies Required<EventContext>,
  Emit: { event: 'e', data: null, room: 'r', usersCollection: 'users', usersQuery: {} } satisfies Required<Emit>,
  Cancel: { message: 'm', status: 400, isError: false } satisfies Required<Cancel>,
  ResponseMutation: { replaceData: false, data: null, addFields: {}, messages: [], status: 0 } satisfies Required<ResponseMutation>,
  LogLine: { level: 'info', message: 'm', fields: {} } satisfies Required<LogLine>,
  HookResult: {
    data: {}, cancel: { message: '', status: 400, isError: false }, errors: {}, hidden: [], protected: [], emits: [], response: { replaceData: false, addFields: {}, messages: [], status: 0 }, logs: [], query: {},
    sessionRooms: { join: [], leave: [], leaveAll: false },
  } satisfies Required<HookResult>,
  SessionRooms: { join: ['r'], leave: [], leaveAll: false } satisfies Required<SessionRooms>,
};

describe('hook protocol', () => {
  for (const [message, sample] of Object.entries(samples)) {
    it(`${message} has the .proto's fields`, () => {
      assert.deepEqual(Object.keys(sample).sort(), protoFields(message));
    });
  }

  it('Caller in TypeScript has the same fields', () => {
    assert.deepEqual(Object.keys(caller).sort(), protoFields('Caller'));
  });

  it('every hook event has a proto enum value and back', () => {
    const values = Object.keys(root.lookupEnum('deployd.hooks.v1.Event').values).filter((v) => v !== 'EVENT_UNSPECIFIED').sort();
    assert.deepEqual(HOOK_EVENTS.map((e) => PROTO_EVENT[e]).sort(), values);
  });

  it('the service takes an EventContext and answers a HookResult', () => {
    const method = root.lookupService('deployd.hooks.v1.HookService').methods.Run;
    assert.equal(method.requestType, 'EventContext');
    assert.equal(method.responseType, 'HookResult');
  });
});
