/**
 * One serialization per committed change (issue #19): the document's JSON text, made when the store
 * writes it, is what the answer, the event log and the frames of readers who see the stored
 * document carry — and every reader who sees less still gets a text of its own view.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseSchema } from '../src/core/schema.js';
import { frameBytes } from '../src/events/event-log.js';
import { messageJson, storedChangeFrame } from '../src/events/message-json.js';
import type { CollectionChange, CustomEvent } from '../src/events/messages.js';
import { serverFrames } from '../src/realtime/protocol.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { emptyUpdate } from '../src/core/update.js';
import { jsonOf, madeJson } from '../src/util/json-text.js';
import { makeApp, startServer, type TestServer } from './helpers/server.js';
import { Peer } from './helpers/ws-peer.js';

const change = (document: Record<string, unknown>): CollectionChange => ({
  type: 'collection_change', collection: 'notes', action: 'created', document: document as CollectionChange['document'], timestamp: '2026-12-02T06:00:00.000Z', userId: null,
});

describe('the shared JSON text of a change', () => {
  it('is exactly JSON.stringify of the message, and of the frame a reader of the stored document gets', () => {
    for (const document of [{ id: 'a1', title: 'é "quoted"\n', n: 2.5, tags: ['x'], nested: { deep: [null, true] } }, { id: 'b2' }]) {
      const message = change(document);
      assert.equal(messageJson(message), JSON.stringify(message));
      assert.equal(storedChangeFrame(message, 'e:7'), serverFrames.change(message, message.document, 'e:7'));
      assert.equal(frameBytes(message), Buffer.byteLength(JSON.stringify(message)), 'the log counts the UTF-8 bytes of that text');
    }
    const custom: CustomEvent = { type: 'custom_event', event: 'ping', data: { a: 1 }, timestamp: 't', room: 'r' };
    assert.equal(messageJson(custom), JSON.stringify(custom));
  });

  it('is made once per object: a second call returns the same text even if asked again', () => {
    const doc = { id: 'c3', title: 'once' };
    assert.equal(madeJson(doc), undefined, 'nothing made before anyone serialized it');
    const text = jsonOf(doc);
    assert.equal(text, JSON.stringify(doc));
    assert.equal(madeJson(doc), text);
    assert.equal(madeJson({ ...doc }), undefined, 'a copy (a view) is not the stored document: it has no text made for it');
  });

  describe('the SQLite store makes it from the text it stores', () => {
    let dir: string;
    let store: SqliteStore;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shared-json-'));
      store = new SqliteStore({ file: path.join(dir, 'data.sqlite') });
    }, { timeout: 10_000 });
    after(async () => {
      await store?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }, { timeout: 10_000 });

    it('after an insert and an update, the document text equals JSON.stringify of the document', async () => {
      const notes = await store.collection(parseSchema('notes', { properties: { title: { type: 'string' }, n: { type: 'number' } } }));
      const inserted = await notes.insert({ id: 'd4e5f6a7b8c9d0e1', title: 'ünïcode "and" quotes', n: 1 });
      assert.equal(madeJson(inserted), JSON.stringify(inserted));
      const empty = await notes.insert({ id: 'd4e5f6a7b8c9d0e2' });
      assert.equal(madeJson(empty), '{"id":"d4e5f6a7b8c9d0e2"}');
      const updated = await notes.update('d4e5f6a7b8c9d0e1', { fields: {} }, { ...emptyUpdate(), set: { n: 2 }, unset: ['title'] });
      assert.ok(updated);
      assert.equal(madeJson(updated), JSON.stringify(updated));
      assert.equal(JSON.parse(madeJson(updated)!).n, 2);
    });

    it('a page read as JSON text (SQLite writes each row) is the JSON of the documents as found, whatever their ids hold', async () => {
      const odd = await store.collection(parseSchema('odd', { properties: { title: { type: 'string' }, n: { type: 'number' } } }));
      const ids = ['plain0123456789a', 'quote"back\\slash', 'tab\tnew\nline\u0001', 'ünïcödé ✓ \u2028', 'emptydoc'];
      for (const [i, id] of ids.entries()) await odd.insert(id === 'emptydoc' ? { id } : { id, title: `t "${i}" é\n`, n: i / 3 });
      const docs = await odd.find({ fields: {} });
      assert.equal(docs.length, ids.length);
      assert.equal(await odd.findJson!({ fields: {} }), JSON.stringify(docs));
      assert.equal(await odd.findJson!({ fields: { n: { $gte: 1 } } }, { limit: 2, skip: 1 }), JSON.stringify(await odd.find({ fields: { n: { $gte: 1 } } }, { limit: 2, skip: 1 })));
      assert.equal(await odd.findJson!({ fields: { n: { $gte: 99 } } }, { limit: 5 }), '[]');
    });

    it('a document whose id is not its first key gets no shortcut (its own JSON puts id elsewhere)', async () => {
      const notes = await store.collection(parseSchema('later', { properties: { title: { type: 'string' } } }));
      const doc = { title: 'first', id: 'e5f6a7b8c9d0e1f2' };
      await notes.insert(doc);
      assert.equal(madeJson(doc), undefined);
    });
  });
});

describe('answers and frames share the text only where the reader sees the stored document', () => {
  let server: TestServer;
  before(async () => {
    const app = makeApp({ notes: { properties: { title: { type: 'string' }, note: { type: 'string', hidden: true } } } });
    server = await startServer(app);
  }, { timeout: 60_000 });
  after(async () => {
    await server?.stop();
  }, { timeout: 30_000 });

  it('root sees every field in the answer and the frame; an anonymous reader sees neither the hidden field', async () => {
    const rootPeer = await Peer.connect(server, 'root', { headers: server.root });
    const anonymous = await Peer.connect(server, 'anonymous');
    try {
      const byRoot = await server.post('/notes', { title: 'mine', note: 'secret' }, server.root);
      assert.equal(byRoot.status, 200);
      assert.match(byRoot.headers.get('content-type') ?? '', /^application\/json; charset=utf-8$/);
      assert.deepEqual(Object.keys(byRoot.body as object).sort(), ['id', 'note', 'title']);
      const rootFrame = await rootPeer.take((f) => f.type === 'collection_change' && f.document.id === (byRoot.body as { id: string }).id, 'root frame');
      assert.deepEqual(rootFrame.document, byRoot.body, 'root frame carries the stored document, as root was answered');
      const anonFrame = await anonymous.take((f) => f.type === 'collection_change' && f.document.id === (byRoot.body as { id: string }).id, 'anonymous frame');
      assert.deepEqual(anonFrame.document, { id: (byRoot.body as { id: string }).id, title: 'mine' }, 'no hidden field for a reader who could not GET it');

      const byAnyone = await server.post('/notes', { title: 'theirs', note: 'also secret' });
      assert.equal(byAnyone.status, 200);
      assert.deepEqual(Object.keys(byAnyone.body as object).sort(), ['id', 'title'], 'the anonymous writer is answered its own view');
      const again = await anonymous.take((f) => f.type === 'collection_change' && f.document.id === (byAnyone.body as { id: string }).id, 'anonymous frame');
      assert.equal(again.document.note, undefined);
    } finally {
      rootPeer.ws.close();
      anonymous.ws.close();
    }
  });
});
