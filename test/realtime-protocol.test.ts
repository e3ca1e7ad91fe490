/**
 * The `/ws` message protocol on its own (src/realtime/protocol.ts): which client frames are
 * requests and what a malformed one is answered, and the server frames as clients read them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CollectionChange, CustomEvent } from '../src/events/messages.js';
import { parseClientFrame, serverFrames } from '../src/realtime/protocol.js';

describe('client frames', () => {
  it('the requests of the seed contract parse into typed requests', () => {
    assert.deepEqual(parseClientFrame('{"type":"ping"}', false), { type: 'ping' });
    assert.deepEqual(parseClientFrame('{"type":"subscribe","collections":["todos","notes"]}', false), { type: 'subscribe', collections: ['todos', 'notes'] });
    assert.deepEqual(parseClientFrame('{"type":"unsubscribe","collections":["todos"]}', false), { type: 'unsubscribe', collections: ['todos'] });
    assert.deepEqual(parseClientFrame('{"type":"join","room":"lobby"}', false), { type: 'join', room: 'lobby' });
    assert.deepEqual(parseClientFrame('{"type":"leave","room":"lobby"}', false), { type: 'leave', room: 'lobby' });
    assert.deepEqual(parseClientFrame('{"type":"auth","token":"abc"}', false), { type: 'auth', token: 'abc' });
    assert.deepEqual(parseClientFrame('{"type":"auth","token":null}', false), { type: 'auth', token: null });
  });

  it('anything else is answered with an error that says what is expected', () => {
    const cases: Array<[string, boolean, string]> = [
      ['{"type":"ping"}', true, 'messages must be JSON objects like {"type":"ping"}'],
      ['not json', false, 'messages must be JSON objects like {"type":"ping"}'],
      ['[1,2]', false, 'messages must be JSON objects like {"type":"ping"}'],
      ['null', false, 'messages must be JSON objects like {"type":"ping"}'],
      ['{}', false, 'messages need a "type"'],
      ['{"type":"launch"}', false, 'unknown message type "launch"'],
      [`{"type":"${'x'.repeat(80)}"}`, false, `unknown message type "${'x'.repeat(50)}"`],
      ['{"type":"subscribe","collections":[]}', false, 'subscribe needs "collections": a non-empty list of collection names'],
      ['{"type":"unsubscribe","collections":["ok",""]}', false, 'unsubscribe needs "collections": a non-empty list of collection names'],
      [`{"type":"subscribe","collections":["${'c'.repeat(201)}"]}`, false, 'subscribe needs "collections": a non-empty list of collection names'],
      ['{"type":"join"}', false, 'join needs "room": a room name'],
      ['{"type":"leave","room":7}', false, 'leave needs "room": a room name'],
      ['{"type":"auth","token":""}', false, 'auth needs "token": a session token, the master key, or null'],
      [`{"type":"auth","token":"${'t'.repeat(501)}"}`, false, 'auth needs "token": a session token, the master key, or null'],
    ];
    for (const [text, isBinary, error] of cases) assert.deepEqual(parseClientFrame(text, isBinary), { error }, text.slice(0, 60));
  });
});

describe('server frames', () => {
  it('a change carries the reader\'s view of the document and the event id', () => {
    const change: CollectionChange = { type: 'collection_change', collection: 'todos', action: 'updated', document: { id: 'a', secret: 's' }, timestamp: 't', userId: 'u' };
    assert.deepEqual(JSON.parse(serverFrames.change(change, { id: 'a' }, 'e:5')), { type: 'collection_change', collection: 'todos', action: 'updated', document: { id: 'a' }, timestamp: 't', userId: 'u', id: 'e:5' });
  });

  it('a custom event does not tell clients whom it targeted', () => {
    const event: CustomEvent = { type: 'custom_event', event: 'hi', data: [1], timestamp: 't', room: 'r', userIds: ['u1'] };
    assert.deepEqual(JSON.parse(serverFrames.custom(event, 'e:6')), { type: 'custom_event', event: 'hi', data: [1], timestamp: 't', room: 'r', id: 'e:6' });
  });

  it('control frames', () => {
    assert.deepEqual(JSON.parse(serverFrames.connected('e:0')), { type: 'connected', id: 'e:0' });
    assert.deepEqual(JSON.parse(serverFrames.subscription('unsubscribe', ['x'])), { type: 'unsubscribed', collections: ['x'] });
    assert.deepEqual(JSON.parse(serverFrames.authenticated(false, null)), { type: 'authenticated', isRoot: false, userId: null });
    assert.deepEqual(JSON.parse(serverFrames.resyncRequired()), { type: 'resync_required' });
  });
});
