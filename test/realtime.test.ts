/**
 * The real-time gateway at `/ws` as clients see it: real `bin/deployd` processes, real WebSocket
 * clients (`ws`), and raw sockets where a misbehaving peer is needed. Expectations are written by
 * hand from the seed page (message shapes) and the gateway's documented contract (`id` on every
 * event frame, `room` on room events, subscriptions, rooms, permissions, resume, limits).
 *
 * Four servers start in parallel, each with the `.deployd/realtime.json` its topic needs:
 *   main         message shapes, permissions, client messages, ordering, refused upgrades, frame
 *                limits; idleTimeout (1 s) shorter than pingInterval (30 s)
 *   resume       `?since=` replay (history of 150, a Get hook so replays are slow), a restart
 *   limits       maxConnections 3, fast heartbeat (0.2 s / 0.6 s), history of 50
 *   backpressure maxBufferedBytes 64 KiB, a collection whose reads emit 1 MB of events
 * plus short-lived processes for invalid configurations.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { BIN, eventually, makeApp, TODOS, type TestServer } from './helpers/server.js';
import { Stack } from './helpers/stack.js';
import { isEvent, Peer, type Frame } from './helpers/ws-peer.js';


const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const STREAM_ID = /^[0-9a-z]+:\d+$/;
const DOC_ID = /^[0-9a-f]{16}$/;

const seqOf = (id: string) => Number(id.split(':')[1]);
const epochOf = (id: string) => id.split(':')[0];

/** An upgrade request the server refuses: its status and JSON body. */
function refusedUpgrade(server: TestServer, urlPath: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(server.url + urlPath, {
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'), ...headers,
      },
      timeout: 5000,
    });
    req.on('upgrade', (_res, socket) => { socket.destroy(); reject(new Error('the upgrade was accepted')); });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode!, body: JSON.parse(text), headers: res.headers });
        } catch {
          reject(new Error(`not JSON (${res.statusCode}): ${text}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', reject);
    req.end();
  });
}

/** A hand-made WebSocket handshake on a raw socket; resolves once the 101 arrived. */
function rawUpgrade(server: TestServer): Promise<net.Socket> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('raw handshake: no 101 in 5 s')); }, 5000);
    socket.once('error', (err) => { clearTimeout(timer); reject(err); });
    socket.once('connect', () => {
      socket.write(`GET /ws HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n`
        + `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`);
    });
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      clearTimeout(timer);
      if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(`raw handshake answered: ${head.split('\r\n')[0]}`));
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

/** A masked client text frame of `length` bytes (for frames `ws` would not let us send). */
function maskedTextFrame(payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0x81, 0x80 | length])
    : length < 65536 ? Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff])
      : Buffer.concat([Buffer.from([0x81, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(length)); return b; })()]);
  const body = Buffer.alloc(length);
  for (let i = 0; i < length; i++) body[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([header, mask, body]);
}

function vmRssKb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match, 'VmRSS in /proc/<pid>/status');
  return Number(match[1]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let failedStartExits: Array<number | null> = [];

function assertChange(frame: Frame, collection: string, action: string, document: Frame, userId: string | null): void {
  assert.deepEqual(Object.keys(frame).sort(), ['action', 'collection', 'document', 'id', 'timestamp', 'type', 'userId'], JSON.stringify(frame));
  assert.equal(frame.type, 'collection_change');
  assert.equal(frame.collection, collection);
  assert.equal(frame.action, action);
  assert.deepEqual(frame.document, document);
  assert.equal(frame.userId, userId);
  assert.match(frame.timestamp, TIMESTAMP);
  assert.match(frame.id, STREAM_ID);
}

function assertCustom(frame: Frame, event: string, data: unknown, room?: string): void {
  const keys = ['data', 'event', 'id', 'timestamp', 'type', ...(room === undefined ? [] : ['room'])].sort();
  assert.deepEqual(Object.keys(frame).sort(), keys, JSON.stringify(frame));
  assert.equal(frame.type, 'custom_event');
  assert.equal(frame.event, event);
  assert.deepEqual(frame.data, data);
  if (room !== undefined) assert.equal(frame.room, room);
  assert.match(frame.timestamp, TIMESTAMP);
  assert.match(frame.id, STREAM_ID);
}

function assertIncreasing(frames: Frame[]): void {
  for (let i = 1; i < frames.length; i++) {
    assert.equal(epochOf(frames[i].id), epochOf(frames[0].id), 'one epoch');
    assert.ok(seqOf(frames[i].id) > seqOf(frames[i - 1].id), `stream positions increase: ${frames[i - 1].id} then ${frames[i].id}`);
  }
}

// ---- the apps -----------------------------------------------------------------------------------

const PLAIN = { type: 'Collection', properties: { title: { type: 'string' }, n: { type: 'number' } } };
const SECRETS = {
  type: 'Collection',
  properties: { title: { type: 'string' }, secret: { type: 'boolean' }, internalNote: { type: 'string' }, n: { type: 'number' } },
};

const MAIN_FILES: Record<string, string> = {
  // An idle timeout shorter than the ping interval: live peers must still be pinged in time.
  '.deployd/realtime.json': JSON.stringify({ rooms: ['lobby', 'team-*'], limits: { pingInterval: 30, idleTimeout: 2 } }),
  // A hook's internal dpd call writes to another collection.
  'resources/a/post.js': `
dpd.b.post({ title: 'from ' + this.title }, function (result, error) {
  if (error) cancel(error.message, 500);
});`,
  'resources/secrets/get.js': `if (this.secret && !isRoot) cancel('no', 401); hide('internalNote');`,
  // Emits queued by hooks of requests that then fail must never be published.
  'resources/events/validate.js': `
emit('queued-in-validate', { title: this.title });
if (this.title === 'cancel-me') cancel('nope', 400);
if (this.title === 'invalid') error('title', 'is bad');`,
  'resources/events/post.js': `
emit('queued-in-post', { title: this.title });
if (this.title === 'throw-me') throw new Error('boom');`,
  'resources/events/aftercommit.js': `
if (method === 'POST') {
  emit('hello', { title: this.title });
  emit('lobby', 'room-msg', { title: this.title });
  emit('team-red', 'team-msg', { n: 1 });
}`,
};

describe('real-time gateway', { timeout: 120_000 }, () => {
  let main: TestServer;
  let resume: TestServer;
  let limits: TestServer;
  let pressure: TestServer;
  const peers: Peer[] = [];
  const stack = new Stack();
  const connect = async (server: TestServer, options?: Parameters<typeof Peer.connect>[1]) => {
    const peer = await Peer.connect(server, options);
    peers.push(peer);
    return peer;
  };

  before(async () => {
    const mainApp = makeApp({ todos: TODOS, a: PLAIN, b: PLAIN, c: PLAIN, secrets: SECRETS, events: PLAIN, ordered: SECRETS, slow: PLAIN }, {
      ...MAIN_FILES,
      'resources/ordered/get.js': `hide('internalNote');`,
      // Reading it for delivery takes a while: time for a client to change identity meanwhile.
      'resources/slow/get.js': `var t = Date.now(); while (Date.now() - t < 150) {}`,
    });
    const resumeApp = makeApp({ todos: TODOS }, {
      '.deployd/realtime.json': JSON.stringify({ history: { size: 150 } }),
      // A Get hook makes each replayed event a round trip to a hook worker: live events land mid-replay.
      'resources/todos/get.js': `if (this.title === 'never shown') cancel('hidden');`,
    });
    const limitsApp = makeApp({ todos: TODOS }, {
      '.deployd/realtime.json': JSON.stringify({ limits: { maxConnections: 3, pingInterval: 0.2, idleTimeout: 0.6 }, history: { size: 50 } }),
    });
    const pressureApp = makeApp({ burst: { type: 'Collection', noStore: true, properties: { n: { type: 'number' } } } }, {
      '.deployd/realtime.json': JSON.stringify({ limits: { maxBufferedBytes: 65536 }, history: { size: 10 } }),
      // One GET publishes 20 events of ~50 KB each.
      'resources/burst/get.js': `
if (query.huge) { emit('huge', { pad: new Array(100001).join('h') }); return; }
var pad = new Array(50001).join('x');
for (var i = 0; i < 20; i++) emit('big', { i: i, pad: pad });`,
    });
    [main, resume, limits, pressure] = await Stack.all([stack.server(mainApp), stack.server(resumeApp), stack.server(limitsApp), stack.server(pressureApp)]);
  }, { timeout: 120_000 });

  after(async () => {
    for (const peer of peers) peer.close();
    await stack.stop();
  }, { timeout: 60_000 });

  // ---- upgrades ---------------------------------------------------------------------------------

  describe('upgrades', () => {
    it('GET /ws without an upgrade answers 426 with a JSON error', async () => {
      const res = await main.get('/ws');
      assert.equal(res.status, 426);
      assert.equal(res.headers.get('upgrade'), 'websocket');
      assert.equal(res.body.status, 426);
      assert.equal(res.body.code, 'DPD_ERR_UPGRADE_REQUIRED');
      assert.equal(typeof res.body.message, 'string');
    });

    it('an upgrade on an unknown path is a 404 JSON answer', async () => {
      const res = await refusedUpgrade(main, '/nope');
      assert.equal(res.status, 404);
      assert.equal(res.body.status, 404);
      assert.match(res.headers['content-type'] ?? '', /application\/json/);
      const under = await refusedUpgrade(main, '/ws/extra');
      assert.equal(under.status, 404);
    });

    it('a wrong X-Master-Key on the upgrade is a 401; the right one is accepted', async () => {
      const res = await refusedUpgrade(main, '/ws', { 'X-Master-Key': 'wrong' });
      assert.equal(res.status, 401);
      assert.equal(res.body.status, 401);
      assert.equal(res.body.code, 'DPD_ERR_UNAUTHORIZED');
      const root = await connect(main, { headers: main.root });
      await root.assertAlive();
      root.close();
    });

    it('a client that disconnects right after sending a refused upgrade does not hurt the server', async () => {
      const { hostname, port } = new URL(main.url);
      for (let i = 0; i < 20; i++) {
        const socket = net.connect(Number(port), hostname);
        socket.on('error', () => {});
        socket.on('connect', () => {
          socket.write(`GET /nope HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`);
          socket.resetAndDestroy();
        });
      }
      await sleep(200);
      assert.equal((await main.get('/health')).status, 200);
      assert.equal(main.proc.exitCode, null);
    });
  });

  // ---- message shapes ---------------------------------------------------------------------------

  describe('collection_change', () => {
    it('REST create, update and delete, as anonymous and as root', async () => {
      const peer = await connect(main);
      const created = await main.post('/todos', { title: 'shape', priority: 3 });
      assert.equal(created.status, 200, created.text);
      assert.match(created.body.id, DOC_ID);
      const updated = await main.put(`/todos/${created.body.id}`, { completed: true }, main.root);
      assert.equal(updated.status, 200, updated.text);
      const stored = (await main.get(`/todos/${created.body.id}`)).body;
      assert.equal((await main.del(`/todos/${created.body.id}`)).status, 200);

      const [c, u, d] = await peer.eventsUntil((f) => f.action === 'deleted');
      assertChange(c, 'todos', 'created', created.body, null);
      assertChange(u, 'todos', 'updated', updated.body, 'root');
      assert.equal(u.document.completed, true);
      assertChange(d, 'todos', 'deleted', stored, null);
      assertIncreasing([c, u, d]);
      peer.close();
    });

    it('a write made by a hook through dpd is published, with the caller of the outer request', async () => {
      const peer = await connect(main);
      const res = await main.post('/a', { title: 'outer' }, main.root);
      assert.equal(res.status, 200, res.text);
      const events = await peer.eventsUntil((f) => f.collection === 'a');
      assert.equal(events.length, 2, JSON.stringify(events));
      const [b, a] = events;
      const [inner] = (await main.get('/b?title=from%20outer')).body;
      assert.ok(inner, 'the hook created the b document');
      assertChange(b, 'b', 'created', inner, 'root');
      assert.equal(b.document.title, 'from outer');
      assertChange(a, 'a', 'created', res.body, 'root');
      assertIncreasing([b, a]);
      peer.close();
    });

    it('a root bulk DELETE publishes one deleted event per document', async () => {
      const docs = [];
      for (const title of ['x1', 'x2', 'x3']) docs.push((await main.post('/c', { title })).body);
      const peer = await connect(main);
      const res = await main.del(`/c?${JSON.stringify({ id: { $ne: null } })}`, main.root);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { count: 3 });
      const events = [];
      for (let i = 0; i < 3; i++) events.push(await peer.take((f) => f.collection === 'c', `deleted event ${i + 1}`));
      for (const event of events) {
        const doc = docs.find((d) => d.id === event.document.id);
        assert.ok(doc, `a deleted event for ${event.document.id}`);
        assertChange(event, 'c', 'deleted', doc, 'root');
      }
      assert.equal(new Set(events.map((e) => e.document.id)).size, 3);
      assertIncreasing(events);
      await main.post('/todos', { title: 'bulk marker' });
      const rest = await peer.eventsUntil((f) => f.document?.title === 'bulk marker');
      assert.equal(rest.length, 1, 'nothing more than the three deletes');
      peer.close();
    });

    it('a request that fails publishes nothing: not its change, not its hooks\' emits', async () => {
      const peer = await connect(main);
      assert.equal((await main.post('/events', { title: 'cancel-me' })).status, 400);
      assert.equal((await main.post('/events', { title: 'invalid' })).status, 400);
      assert.equal((await main.post('/events', { title: 'throw-me' })).status >= 400, true);
      assert.equal((await main.put('/todos/0123456789abcdef', { title: 'missing' })).status, 404);
      assert.equal((await main.del('/todos/0123456789abcdef')).status, 404);
      assert.equal((await main.post('/todos', { priority: 1 })).status, 400); // title is required
      assert.equal((await main.post('/todos', { title: 'marker' })).status, 200);
      const events = await peer.eventsUntil((f) => f.document?.title === 'marker');
      assert.equal(events.length, 1, JSON.stringify(events));
      peer.close();
    });
  });

  describe('custom_event', () => {
    it('emit(event, data) reaches everyone; emit(room, event, data) only those who joined', async () => {
      const member = await connect(main);
      const outsider = await connect(main);
      assert.deepEqual(await member.ask({ type: 'join', room: 'lobby' }, 'joined'), { type: 'joined', room: 'lobby' });
      assert.deepEqual(await member.ask({ type: 'join', room: 'team-red' }, 'joined'), { type: 'joined', room: 'team-red' });
      const res = await main.post('/events', { title: 'party' });
      assert.equal(res.status, 200, res.text);

      // In commit order: Validate's and Post's emits, the change, then AfterCommit's emits.
      const mine = await member.eventsUntil((f) => f.event === 'team-msg');
      assert.deepEqual(mine.map((f) => f.event ?? f.action), ['queued-in-validate', 'queued-in-post', 'created', 'hello', 'room-msg', 'team-msg']);
      assertCustom(mine[0], 'queued-in-validate', { title: 'party' });
      assertCustom(mine[1], 'queued-in-post', { title: 'party' });
      assertChange(mine[2], 'events', 'created', res.body, null);
      assertCustom(mine[3], 'hello', { title: 'party' });
      assertCustom(mine[4], 'room-msg', { title: 'party' }, 'lobby');
      assertCustom(mine[5], 'team-msg', { n: 1 }, 'team-red');
      assertIncreasing(mine);

      const theirs = await outsider.eventsUntil((f) => f.event === 'hello');
      assert.deepEqual(theirs.map((f) => f.event ?? f.action), ['queued-in-validate', 'queued-in-post', 'created', 'hello']);
      assert.deepEqual(theirs, mine.slice(0, 4), 'the same frames, same ids');

      // After leave, room events stop; the outsider never gets any.
      assert.deepEqual(await member.ask({ type: 'leave', room: 'lobby' }, 'left'), { type: 'left', room: 'lobby' });
      await main.post('/events', { title: 'second' });
      const again = await member.eventsUntil((f) => f.event === 'team-msg');
      assert.deepEqual(again.map((f) => f.event ?? f.action), ['queued-in-validate', 'queued-in-post', 'created', 'hello', 'team-msg']);
      await main.post('/todos', { title: 'room marker' });
      const rest = await outsider.eventsUntil((f) => f.document?.title === 'room marker');
      assert.deepEqual(rest.map((f) => f.event ?? f.action), ['queued-in-validate', 'queued-in-post', 'created', 'hello', 'created']);
      outsider.close();
      member.close();
    });
  });

  // ---- who receives what ------------------------------------------------------------------------

  describe('permissions', () => {
    it('the Get hook decides per reader: no secret documents (nor their deletes) for anonymous, hidden fields stripped', async () => {
      const anonymous = await connect(main);
      const root = await connect(main, { headers: main.root });
      const upgraded = await connect(main);
      assert.deepEqual(await upgraded.ask({ type: 'auth', token: main.masterKey }, 'authenticated'), { type: 'authenticated', isRoot: true, userId: null });

      const pub = (await main.post('/secrets', { title: 'public', secret: false, internalNote: 'n1' })).body;
      const created = (await main.post('/secrets', { title: 'secret', secret: true, internalNote: 'n2' })).body;
      assert.deepEqual(Object.keys(created), ['id'], 'its creator may not GET it: the answer is its id only');
      const sec = (await main.get(`/secrets/${created.id}?$skipEvents=true`, main.root)).body;
      const goesSecret = (await main.post('/secrets', { title: 'goes secret', secret: false, internalNote: 'n3' })).body;
      const goesPublic = (await main.post('/secrets', { title: 'goes public', secret: true, internalNote: 'n4' })).body;
      await main.put(`/secrets/${sec.id}`, { n: 1 });
      await main.put(`/secrets/${goesSecret.id}`, { secret: true });
      await main.put(`/secrets/${goesPublic.id}`, { secret: false });
      for (const doc of [pub, sec, goesSecret, goesPublic]) assert.equal((await main.del(`/secrets/${doc.id}`, main.root)).status, 200);
      await main.post('/todos', { title: 'perm marker' });

      const strip = (d: Frame) => { const { internalNote: _n, ...rest } = d; return rest; };
      const summary = (frames: Frame[]) => frames.filter((f) => f.collection === 'secrets').map((f) => `${f.action} ${f.document.title}`);

      const anon = await anonymous.eventsUntil((f) => f.document?.title === 'perm marker');
      assert.deepEqual(summary(anon), [
        'created public', 'created goes secret', 'updated goes public', 'deleted public', 'deleted goes public',
      ]);
      for (const f of anon) assert.equal('internalNote' in f.document, false, `hidden field stripped: ${JSON.stringify(f)}`);
      assert.deepEqual(anon[0].document, strip(pub));
      assert.equal(anon.some((f) => f.document.id === sec.id), false);

      const everything = [
        'created public', 'created secret', 'created goes secret', 'created goes public',
        'updated secret', 'updated goes secret', 'updated goes public',
        'deleted public', 'deleted secret', 'deleted goes secret', 'deleted goes public',
      ];
      for (const peer of [root, upgraded]) {
        const frames = await peer.eventsUntil((f) => f.document?.title === 'perm marker');
        assert.deepEqual(summary(frames), everything);
        for (const f of frames) assert.equal('internalNote' in f.document, false, 'root too: hide() applies');
        const secretCreated = frames.find((f) => f.action === 'created' && f.document.id === sec.id)!;
        assertChange(secretCreated, 'secrets', 'created', strip(sec), null);
      }
      for (const p of [anonymous, root, upgraded]) p.close();
    });

    it('an event committed before an auth lands is still delivered (as the reader was then)', async () => {
      const peer = await connect(main);
      const res = await main.post('/slow', { title: 'during auth' });
      assert.equal(res.status, 200);
      // The Get hook is still running for this event when the identity changes.
      assert.deepEqual(await peer.ask({ type: 'auth', token: main.masterKey }, 'authenticated'), { type: 'authenticated', isRoot: true, userId: null });
      await main.post('/todos', { title: 'auth race marker' });
      const frames = await peer.eventsUntil((f) => f.document?.title === 'auth race marker');
      assert.deepEqual(frames.map((f) => f.document.title), ['during auth', 'auth race marker']);
      assertChange(frames[0], 'slow', 'created', res.body, null);
      peer.close();
    });

    it('a resumed replay is filtered by the same rules', async () => {
      const peer = await connect(main);
      await main.post('/todos', { title: 'replay start' });
      const [start] = await peer.eventsUntil((f) => f.document?.title === 'replay start');
      peer.close();
      const pub = (await main.post('/secrets', { title: 'r public', secret: false, internalNote: 'a' })).body;
      await main.post('/secrets', { title: 'r secret', secret: true, internalNote: 'b' });
      await main.post('/todos', { title: 'replay end' });
      const anonymous = await connect(main, { query: `?since=${start.id}` });
      const root = await connect(main, { query: `?since=${start.id}`, headers: main.root });
      const anon = await anonymous.eventsUntil((f) => f.document?.title === 'replay end');
      assert.deepEqual(anon.map((f) => f.document.title), ['r public', 'replay end']);
      const { internalNote: _n, ...visible } = pub;
      assertChange(anon[0], 'secrets', 'created', visible, null);
      const all = await root.eventsUntil((f) => f.document?.title === 'replay end');
      assert.deepEqual(all.map((f) => f.document.title), ['r public', 'r secret', 'replay end']);
      assert.equal('internalNote' in all[1].document, false);
      anonymous.close();
      root.close();
    });

    it('an invalid auth token is an error and changes nothing', async () => {
      const peer = await connect(main);
      const reply = await peer.ask({ type: 'auth', token: 'not-the-key' }, 'error');
      assert.equal(typeof reply.message, 'string');
      await main.post('/secrets', { title: 'still secret', secret: true });
      await main.post('/todos', { title: 'auth marker' });
      const frames = await peer.eventsUntil((f) => f.document?.title === 'auth marker');
      assert.deepEqual(frames.map((f) => f.collection), ['todos']);
      peer.close();
    });
  });

  // ---- client messages --------------------------------------------------------------------------

  describe('client messages', () => {
    it('subscribe narrows to the listed collections; unsubscribe removes them', async () => {
      const peer = await connect(main);
      assert.deepEqual(await peer.ask({ type: 'subscribe', collections: ['b'] }, 'subscribed'), { type: 'subscribed', collections: ['b'] });
      await main.post('/todos', { title: 'not for me' });
      await main.post('/b', { title: 'for me' });
      await main.post('/c', { title: 'not for me either' });
      await main.post('/b', { title: 'b marker' });
      let frames = await peer.eventsUntil((f) => f.document?.title === 'b marker');
      assert.deepEqual(frames.map((f) => `${f.collection} ${f.document.title}`), ['b for me', 'b b marker']);

      assert.deepEqual(await peer.ask({ type: 'subscribe', collections: ['c'] }, 'subscribed'), { type: 'subscribed', collections: ['c'] });
      assert.deepEqual(await peer.ask({ type: 'unsubscribe', collections: ['b'] }, 'unsubscribed'), { type: 'unsubscribed', collections: ['b'] });
      await main.post('/b', { title: 'b again' });
      await main.post('/todos', { title: 'todos again' });
      await main.post('/c', { title: 'c marker' });
      frames = await peer.eventsUntil((f) => f.document?.title === 'c marker');
      assert.deepEqual(frames.map((f) => `${f.collection} ${f.document.title}`), ['c c marker']);
      peer.close();
    });

    it('unsubscribe without a subscription excludes a collection from "everything"', async () => {
      const peer = await connect(main);
      assert.deepEqual(await peer.ask({ type: 'unsubscribe', collections: ['todos'] }, 'unsubscribed'), { type: 'unsubscribed', collections: ['todos'] });
      await main.post('/todos', { title: 'excluded' });
      await main.post('/b', { title: 'included' });
      const frames = await peer.eventsUntil((f) => f.document?.title === 'included');
      assert.deepEqual(frames.map((f) => f.collection), ['b']);
      peer.close();
    });

    it('join of an undeclared room is an error and the connection stays open', async () => {
      const peer = await connect(main);
      const reply = await peer.ask({ type: 'join', room: 'undeclared' }, 'error');
      assert.deepEqual(Object.keys(reply).sort(), ['message', 'type']);
      assert.match(reply.message, /undeclared/);
      assert.equal((await peer.ask({ type: 'join' }, 'error')).type, 'error');
      assert.equal((await peer.ask({ type: 'join', room: 42 }, 'error')).type, 'error');
      assert.deepEqual(await peer.ask({ type: 'join', room: 'team-blue' }, 'joined'), { type: 'joined', room: 'team-blue' });
      await peer.assertAlive();
      peer.close();
    });

    it('subscriptions per connection are capped', async () => {
      const peer = await connect(main);
      const names = (from: number) => Array.from({ length: 500 }, (_, i) => `c${from + i}`);
      await peer.ask({ type: 'subscribe', collections: names(0) }, 'subscribed');
      await peer.ask({ type: 'subscribe', collections: names(500) }, 'subscribed');
      const reply = await peer.ask({ type: 'subscribe', collections: names(1000) }, 'error');
      assert.match(reply.message, /at most/);
      await peer.ask({ type: 'unsubscribe', collections: names(0) }, 'unsubscribed');
      await peer.assertAlive();
      peer.close();
    });

    it('ping answers pong', async () => {
      const peer = await connect(main);
      assert.deepEqual(await peer.ask({ type: 'ping' }, 'pong'), { type: 'pong' });
      peer.close();
    });

    it('malformed JSON, non-objects, unknown types and bad arguments are errors; the connection stays open', async () => {
      const peer = await connect(main);
      const bad: unknown[] = [
        'not json', '{"type":', '[1,2]', '42', '"ping"', 'null', '{}', { type: 'bogus' }, { type: 42 },
        { type: 'subscribe' }, { type: 'subscribe', collections: [] }, { type: 'subscribe', collections: [1] }, { type: 'unsubscribe', collections: 'todos' },
        { type: 'auth' }, { type: 'auth', token: 5 },
      ];
      for (const message of bad) {
        const reply = await peer.ask(message, 'error');
        assert.deepEqual(Object.keys(reply).sort(), ['message', 'type'], `${JSON.stringify(message)} → ${JSON.stringify(reply)}`);
        assert.equal(typeof reply.message, 'string');
      }
      peer.ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
      assert.equal((await peer.take((f) => f.type === 'error', 'an error for a binary frame')).type, 'error');
      await peer.assertAlive();
      assert.equal(peer.frames.length, 0, `nothing else: ${JSON.stringify(peer.frames)}`);
      // Still receiving events.
      await main.post('/todos', { title: 'still here' });
      await peer.eventsUntil((f) => f.document?.title === 'still here');
      peer.close();
    });
  });

  // ---- ordering ---------------------------------------------------------------------------------

  describe('ordering', () => {
    it('200 concurrent writes arrive in commit order with strictly increasing stream positions', async () => {
      const anonymous = await connect(main);
      const root = await connect(main, { headers: main.root });
      const doc = (await main.post('/ordered', { title: 'counter', n: 0, internalNote: 'x' })).body;
      // Each $inc commits n+1: the value in each event is its commit position.
      const results = await Promise.all(Array.from({ length: 200 }, () => main.put(`/ordered/${doc.id}`, { n: { $inc: 1 } })));
      for (const r of results) assert.equal(r.status, 200, r.text);
      assert.deepEqual(results.map((r) => r.body.n).sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i + 1));
      for (const peer of [anonymous, root]) {
        const frames = await peer.eventsUntil((f) => f.collection === 'ordered' && f.document.n === 200, 'the 200th update', 15_000);
        const updates = frames.filter((f) => f.collection === 'ordered' && f.action === 'updated');
        assert.deepEqual(updates.map((f) => f.document.n), Array.from({ length: 200 }, (_, i) => i + 1));
        assertIncreasing(frames);
        for (const f of updates) assert.equal('internalNote' in f.document, false);
      }
      anonymous.close();
      root.close();
    });
  });

  // ---- frame limits -----------------------------------------------------------------------------

  describe('limits', () => {
    it('a frame larger than maxFrameBytes closes the connection with 1009', async () => {
      const peer = await connect(main);
      const other = await connect(main);
      peer.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(70 * 1024) }));
      const { code } = await peer.closed;
      assert.equal(code, 1009);
      await other.assertAlive();
      other.close();
    });

    it('a flood beyond messageRateLimit closes the connection with 1008', async () => {
      const peer = await connect(main);
      const other = await connect(main);
      for (let i = 0; i < 300; i++) peer.send({ type: 'ping' });
      const closed = await Promise.race([peer.closed, sleep(5000).then(() => undefined)]);
      assert.ok(closed, 'closed within 5 s');
      assert.equal(closed.code, 1008);
      assert.ok(peer.frames.filter((f) => f.type === 'pong').length <= 60, 'no more than the burst was answered');
      await other.assertAlive();
      other.close();
    });

    it('maxConnections: the next upgrade is refused with a 503 JSON answer, and accepted once one closes', async () => {
      const open = [];
      for (let i = 0; i < 3; i++) open.push(await connect(limits));
      const res = await refusedUpgrade(limits, '/ws');
      assert.equal(res.status, 503);
      assert.equal(res.body.status, 503);
      assert.equal(typeof res.body.message, 'string');
      open[0].ws.close();
      await open[0].closed;
      await eventually(async () => (await limits.get('/health')).body.realtimeConnections === 2, 3000, 'the server to count the close');
      const again = await connect(limits);
      await again.assertAlive();
      for (const peer of [...open, again]) peer.close();
      await eventually(async () => (await limits.get('/health')).body.realtimeConnections === 0, 3000, 'all closed');
    });

    it('a live peer survives an idle timeout shorter than the ping interval', async () => {
      const live = await connect(main); // main: pingInterval 30 s, idleTimeout 2 s (generous: the suite shares 2 cores)
      await sleep(4500);
      assert.equal(live.closeInfo, undefined, 'still open');
      await live.assertAlive();
      live.close();
    });

    it('an idle peer that does not answer pings is closed; a live one stays', async () => {
      const live = await connect(limits);
      const raw = await rawUpgrade(limits);
      let received = 0;
      raw.on('data', (chunk: Buffer) => { received += chunk.length; }); // reads pings, never pongs
      const closedAt = new Promise<number>((resolve) => raw.once('close', () => resolve(Date.now())));
      raw.on('error', () => {});
      const start = Date.now();
      const when = await Promise.race([closedAt, sleep(5000).then(() => 0)]);
      assert.ok(when > 0, 'the silent peer was closed within 5 s');
      assert.ok(when - start >= 500, `not before the idle timeout (${when - start} ms)`);
      assert.ok(received > 0, 'it was pinged');
      await sleep(300);
      assert.equal(live.closeInfo, undefined, 'the peer answering pings stays open');
      await live.assertAlive();
      live.close();
    });
  });

  // ---- resume -----------------------------------------------------------------------------------

  describe('resume', () => {
    it('?since=<last id> replays exactly what was missed, in order, then live events', async () => {
      const first = await connect(resume);
      await resume.post('/todos', { title: 'seen' });
      const [seen] = await first.eventsUntil((f) => f.document?.title === 'seen');
      first.ws.close();
      await first.closed;

      for (let i = 0; i < 100; i++) assert.equal((await resume.post('/todos', { title: `missed ${i}` })).status, 200);
      const back = await connect(resume, { query: `?since=${encodeURIComponent(seen.id)}` });
      // Writes during the replay are live events: they come after it, once each.
      const live = Promise.all(Array.from({ length: 20 }, (_, i) => resume.post('/todos', { title: `live ${i}` })));
      await live;
      await resume.post('/todos', { title: 'resume marker' });
      const frames = await back.eventsUntil((f) => f.document?.title === 'resume marker', 'the marker', 10_000);
      assert.equal(frames.length, 121, frames.map((f) => f.document?.title).join(','));
      assert.deepEqual(frames.slice(0, 100).map((f) => f.document.title), Array.from({ length: 100 }, (_, i) => `missed ${i}`));
      assert.deepEqual(frames.slice(100, 120).map((f) => f.document.title).sort(), Array.from({ length: 20 }, (_, i) => `live ${i}`).sort());
      assert.equal(seqOf(frames[0].id), seqOf(seen.id) + 1);
      assertIncreasing([seen, ...frames]);
      assert.equal(new Set(frames.map((f) => f.id)).size, 121, 'no duplicates');
      for (let i = 1; i < frames.length; i++) assert.equal(seqOf(frames[i].id), seqOf(frames[i - 1].id) + 1, 'no gaps');
      assert.equal(back.frames.length, 0, `nothing else: ${JSON.stringify(back.frames).slice(0, 300)}`);

      // Resuming from the newest id replays nothing.
      const newest = frames[frames.length - 1].id;
      const upToDate = await connect(resume, { query: `?since=${encodeURIComponent(newest)}` });
      await resume.post('/todos', { title: 'after newest' });
      const next = await upToDate.eventsUntil((f) => f.document?.title === 'after newest');
      assert.equal(next.length, 1);
      assert.equal(seqOf(next[0].id), seqOf(newest) + 1);
      back.close();
      upToDate.close();
    });

    it('a since older than the history, unknown, or from another run answers resync_required', async () => {
      // limits keeps 50 events.
      const peer = await connect(limits);
      await limits.post('/todos', { title: 'old' });
      const [old] = await peer.eventsUntil((f) => f.document?.title === 'old');
      for (let i = 0; i < 60; i++) await limits.post('/todos', { title: `h${i}` });
      const frames = await peer.eventsUntil((f) => f.document?.title === 'h59');
      peer.close();

      const stale = await connect(limits, { query: `?since=${encodeURIComponent(old.id)}` });
      assert.deepEqual(await stale.take((f) => f.type === 'resync_required', 'resync_required'), { type: 'resync_required' });
      // ... and then live events.
      await limits.post('/todos', { title: 'live after resync' });
      const live = await stale.eventsUntil((f) => f.document?.title === 'live after resync');
      assert.equal(live.length, 1);
      stale.close();

      // Within the history: exactly the last 10.
      const recent = await connect(limits, { query: `?since=${encodeURIComponent(frames[49].id)}` });
      const replayed = await recent.eventsUntil((f) => f.document?.title === 'live after resync');
      assert.deepEqual(replayed.map((f) => f.document.title), ['h50', 'h51', 'h52', 'h53', 'h54', 'h55', 'h56', 'h57', 'h58', 'h59', 'live after resync']);
      recent.close();

      for (const since of ['garbage', `${epochOf(old.id)}:999999`, `${epochOf(old.id)}:`, `${epochOf(old.id)}:-1`, `${epochOf(old.id)}:1.5`, '']) {
        const odd = await connect(limits, { query: `?since=${encodeURIComponent(since)}` });
        assert.deepEqual(await odd.take((f) => f.type === 'resync_required', `resync_required for "${since}"`), { type: 'resync_required' });
        odd.close();
      }
      await eventually(async () => (await limits.get('/health')).body.realtimeConnections === 0, 3000, 'all closed');
    });

    it('an id from before a restart answers resync_required', async () => {
      const peer = await connect(resume);
      await resume.post('/todos', { title: 'before restart' });
      const [before] = await peer.eventsUntil((f) => f.document?.title === 'before restart');
      peer.close();
      // A peer that never answers the close frame does not hold the shutdown.
      const stalled = await rawUpgrade(resume);
      stalled.on('error', () => {});
      stalled.resume();
      const appDir = resume.appDir;
      const masterKey = resume.masterKey;
      const stopping = Date.now();
      assert.equal(await resume.stop(), 0);
      assert.ok(Date.now() - stopping < 5000, `stopped in ${Date.now() - stopping} ms`);
      stalled.destroy();
      resume = await stack.server(appDir, { masterKey });
      // The new run has had as many events, or more: same sequence numbers must not be confused.
      for (let i = 0; i < seqOf(before.id) + 1; i++) await resume.post('/todos', { title: `new run ${i}` });
      const back = await connect(resume, { query: `?since=${encodeURIComponent(before.id)}` });
      assert.deepEqual(await back.take((f) => f.type === 'resync_required', 'resync_required'), { type: 'resync_required' });
      back.close();
    });
  });

  describe('configuration', () => {
    /** Starts bin/deployd on an app whose realtime.json is `config`; what it printed and whether it exited within 15 s (generous: the suite shares 2 cores). */
    async function badStart(config: unknown): Promise<{ output: string; exitCode: number | null }> {
      const app = makeApp({ todos: TODOS }, { '.deployd/realtime.json': JSON.stringify(config) });
      const proc = spawn(BIN, ['--port', '0', '--host', '127.0.0.1', '--app', app], {
        env: { ...process.env, MASTER_KEY: 'k'.repeat(32), LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      proc.stdout!.on('data', (c: Buffer) => { output += c.toString(); });
      proc.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      const exitCode = await Promise.race([exited, sleep(15_000).then(() => undefined)]);
      if (exitCode === undefined) {
        proc.kill('SIGKILL');
        await exited;
        return { output, exitCode: null };
      }
      return { output, exitCode };
    }

    it('a limit with an unusable value stops the start with a message naming it', async () => {
      const results = await Promise.all(([
        [{ limits: { maxBufferedBytes: '64kb' } }, 'limits.maxBufferedBytes'],
        [{ limits: { pingInterval: 1e9 } }, 'limits.pingInterval'],
        [{ rooms: 'lobby' }, 'rooms'],
        [[], 'object'],
      ] as const).map(async ([config, key]) => ({ key, ...(await badStart(config)) })));
      for (const { key, output } of results) {
        assert.match(output, /realtime\.json/, output);
        assert.ok(output.includes(key), `names ${key}: ${output}`);
        assert.doesNotMatch(output, /listening on/);
      }
      failedStartExits = results.map((r) => r.exitCode);
    });

    it('... and the process exits with a non-zero code', () => {
      for (const code of failedStartExits) assert.ok(code !== null && code !== 0, `exit code ${code} (null: still running after 15 s)`);
    });
  });

  // ---- backpressure -----------------------------------------------------------------------------

  describe('backpressure', () => {
    it('a client that stops reading is closed with 1013; others receive everything; memory stays bounded', async () => {
      const healthy = await connect(pressure);
      let bigSeen = 0;
      healthy.ws.on('message', () => { bigSeen++; });
      // Warm-up, 40 MB to a client that reads: V8 sizes its young generation by the allocation rate,
      // so a server that started small grows its heap by tens of MB under this traffic whatever the
      // clients do. The growth measured below must be what dropped clients would hold, not that.
      for (let i = 0; i < 40; i++) assert.equal((await pressure.get(`/burst?n=${1000 + i}`)).status, 200);
      await eventually(() => bigSeen >= 40 * 20, 15_000, `the warm-up events (has ${bigSeen})`);
      healthy.frames.splice(0);
      const slow = await connect(pressure);
      // One event larger than the cap still reaches readers that keep up.
      assert.equal((await pressure.get('/burst?huge=1')).status, 200);
      const huge = await healthy.take((f) => f.event === 'huge', 'the 100 KB event');
      assert.equal(huge.data.pad.length, 100_000);
      await slow.take((f) => f.event === 'huge', 'the 100 KB event (second client)');
      bigSeen = 0;
      (slow.ws as unknown as { _socket: net.Socket })._socket.pause();
      // And a hand-made client that never reads a byte after its handshake.
      const raw = await rawUpgrade(pressure);
      raw.on('error', () => {});
      raw.pause();
      await eventually(async () => (await pressure.get('/health')).body.realtimeConnections === 3, 3000, 'three connections');
      const rssBefore = vmRssKb(pressure.proc.pid!);
      const counts = async () => (await pressure.get('/health')).body.realtimeConnections as number;

      // 1 MB of events per request: the slow client's buffers fill within a few requests.
      let requests = 0;
      const burst = async () => {
        const res = await pressure.get(`/burst?n=${requests++}`);
        assert.equal(res.status, 200, res.text);
      };
      for (let i = 0; i < 60 && (await counts()) > 1; i++) await burst();
      assert.equal(await counts(), 1, 'both slow clients were dropped');
      // Read what was buffered: the last frame is the close, with 1013.
      (slow.ws as unknown as { _socket: net.Socket })._socket.resume();
      const { code } = await Promise.race([slow.closed, sleep(5000).then(() => ({ code: -1 }))]);
      assert.equal(code, 1013);
      const rssAtDrop = vmRssKb(pressure.proc.pid!);

      // 40 MB more, which the dropped client would have had to hold.
      for (let i = 0; i < 40; i++) await burst();
      const expected = requests * 20;
      await eventually(() => bigSeen === expected, 15_000, `the healthy client to receive all ${expected} events (has ${bigSeen})`);
      const frames = healthy.frames.splice(0);
      assert.equal(frames.length, expected);
      for (let i = 0; i < frames.length; i++) assert.equal(frames[i].data.i, i % 20);
      assertIncreasing(frames);
      const rssAfter = vmRssKb(pressure.proc.pid!);
      raw.destroy();
      // Had the two dropped clients' buffers been kept, they would hold 2 × 40 MB: the bound sits well
      // below that, and well above what garbage not yet collected on a busy machine adds.
      if (process.env.SHOW_GROWTH) console.error("GROWTH", rssBefore, rssAtDrop, rssAfter, rssAfter - rssAtDrop);
      assert.ok(rssAfter - rssAtDrop < 64 * 1024, `RSS grew by ${rssAfter - rssAtDrop} kB after the drop (before ${rssBefore} kB)`);
      healthy.close();
    });
  });
});
