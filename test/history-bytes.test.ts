/**
 * The real-time history is bounded in bytes as well as in count and age (`history.maxBytes`,
 * each event counted as its JSON), in process and in Redis; an emit larger than
 * `limits.maxEventBytes` fails its hook with a clear error instead of reaching every subscriber.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { frameBytes } from '../src/events/event-log.js';
import { LocalEventLog } from '../src/events/local-log.js';
import { KEYS, RedisStream } from '../src/events/redis-stream.js';
import { jsonSize } from '../src/util/json-size.js';
import { RedisServer } from './helpers/redis.js';
import { makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';
import { Peer } from './helpers/ws-peer.js';

const MB = 1024 * 1024;

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match, 'VmRSS in /proc/<pid>/status');
  return Number(match[1]) * 1024;
}

const change = (n: number, text: string) => ({ type: 'collection_change' as const, collection: 'c', action: 'created' as const, document: { id: String(n).padStart(2, '0'), text }, timestamp: '', userId: null });

describe('history bounded in bytes', () => {
  it('an event is sized as its JSON without building it (exact for text JSON does not escape)', () => {
    const samples = [change(1, 'x'.repeat(5000)), { type: 'custom_event', event: 'e', data: { a: [1, 2.5, true, null, { b: 'é' }], c: {} }, timestamp: 't' }, [], {}, 'plain'];
    for (const sample of samples) assert.equal(jsonSize(sample), Buffer.byteLength(JSON.stringify(sample)), JSON.stringify(sample).slice(0, 80));
  });

  it('in process: the oldest events go once the kept JSON passes maxBytes; a resume from before them resyncs', async () => {
    const history = new LocalEventLog({ size: 10_000, maxAgeMs: 60_000, maxBytes: 10_000 });
    const first = history.head();
    for (let n = 0; n < 50; n++) history.publish(change(n, 'x'.repeat(1000)));
    assert.equal(await history.since(first), undefined, 'events after the first position were dropped: resync');
    const [epoch, last] = history.head().split(':');
    const kept = await history.since(`${epoch}:${Number(last) - 5}`);
    assert.ok(kept, 'a recent position resumes');
    assert.deepEqual(kept.map((e) => (e.message as unknown as { document: { id: string } }).document.id), ['45', '46', '47', '48', '49']);
    // What is kept is as many of the newest as fit in 10 000 bytes.
    const fit = Math.floor(10_000 / frameBytes(change(0, 'x'.repeat(1000))));
    const oldest = Number(last) - fit;
    assert.ok(await history.since(`${epoch}:${oldest}`), `the last ${fit} are kept`);
    assert.equal(await history.since(`${epoch}:${oldest - 1}`), undefined, `${fit + 1} would pass 10 000 bytes`);
    await history.close();
  });

  it('300 POSTs of 0.9 MB: the server\'s memory stays bounded, a subscriber gets every change', { timeout: 600_000 }, async () => {
    const app = makeApp({ blobs: { type: 'Collection', properties: { text: { type: 'string' } } } }, {
      '.deployd/realtime.json': JSON.stringify({ history: { maxBytes: 32 * MB } }),
    });
    let server: TestServer | undefined;
    let peer: Peer | undefined;
    try {
      // A 192 MB heap: an unbounded history (270 MB of documents) would crash the server (heap OOM).
      server = await startServer(app, { env: { NODE_OPTIONS: '--max-old-space-size=192' } });
      peer = await Peer.connect(server);
      const text = 'x'.repeat(Math.floor(0.9 * MB));
      assert.equal((await server.post('/blobs', { text })).status, 200); // warm: workers, SQLite, parsers
      const baseline = rssBytes(server.proc.pid!);
      let peak = baseline;
      for (let i = 0; i < 300; i++) {
        const res: { status: number; text: string } = await server.post('/blobs', { text });
        assert.equal(res.status, 200, res.text.slice(0, 200));
        await peer.take((f) => f.type === 'collection_change', `change ${i}`, 15_000);
        if (i % 20 === 0) peak = Math.max(peak, rssBytes(server.proc.pid!));
      }
      peak = Math.max(peak, rssBytes(server.proc.pid!));
      assert.equal(server.proc.exitCode, null, 'the server is still running');
      assert.ok(peak < 400 * MB, `RSS peaked at ${(peak / MB).toFixed(0)} MB (baseline ${(baseline / MB).toFixed(0)} MB)`);
      console.log(`# RSS baseline ${(baseline / MB).toFixed(0)} MB, peak ${(peak / MB).toFixed(0)} MB over 300 × 0.9 MB writes`);
    } finally {
      peer?.close();
      await server?.stop();
      fs.rmSync(app, { recursive: true, force: true });
    }
  });
});

describe('maxEventBytes', () => {
  let app: string;
  let server: TestServer | undefined;

  before(async () => {
    app = makeApp({ todos: TODOS }, {
      '.deployd/realtime.json': JSON.stringify({ limits: { maxEventBytes: 4096 } }),
      'resources/todos/post.js': `emit('big', { text: 'x'.repeat(this.n) });`,
      'resources/todos/aftercommit.js': `if (this.title === 'after') emit('after-big', { text: 'y'.repeat(10000) });`,
    });
    server = await startServer(app);
  }, { timeout: 120_000 });

  after(async () => {
    await server?.stop();
    if (app) fs.rmSync(app, { recursive: true, force: true });
  }, { timeout: 60_000 });

  it('an emit over the limit fails its hook with a 500 naming the event and the limit; nothing is stored', async () => {
    const res = await server!.post('/todos', { title: 'big', n: 5000 });
    assert.equal(res.status, 500, res.text);
    assert.equal(res.body.code, 'DPD_ERR_HOOK_FAILED');
    assert.match(res.body.message, /^todos\/post\.js: emit\("big"\) carries 50\d\d bytes; real-time events are limited to 4096 \(limits\.maxEventBytes in \.deployd\/realtime\.json\)$/);
    assert.deepEqual((await server!.get('/todos?$skipEvents=true', server!.root)).body, []);
    assert.equal((await server!.post('/todos', { title: 'small', n: 100 })).status, 200);
  });

  it('in AfterCommit the write stands and the over-large emit is dropped', async () => {
    const peer = await Peer.connect(server!);
    try {
      const res = await server!.post('/todos', { title: 'after', n: 1 });
      assert.equal(res.status, 200, res.text);
      const marker = await server!.post('/todos', { title: 'marker', n: 1 });
      assert.equal(marker.status, 200);
      const events = await peer.eventsUntil((f) => f.document?.title === 'marker');
      assert.deepEqual(events.map((f) => f.event ?? `${f.action}:${f.document.title}`), ['big', 'created:after', 'big', 'created:marker']);
    } finally {
      peer.close();
    }
  });
});

describe('Redis history bounded in bytes', () => {
  let redis: RedisServer | undefined;
  let client: Redis | undefined;

  before(async () => {
    RedisServer.assertInstalled();
    redis = await RedisServer.start();
    client = new Redis(redis.url);
  }, { timeout: 120_000 });

  after(async () => {
    client?.disconnect();
    await redis?.close();
  }, { timeout: 60_000 });

  it('appends trim the oldest entries past maxBytes, exactly, and readers see what was trimmed', async () => {
    const stream = new RedisStream(1000, 10_000);
    await stream.prepare(client!);
    await stream.state(client!, 'epoch1');
    const json = JSON.stringify(change(0, 'z'.repeat(1000)));
    for (let n = 1; n <= 50; n++) await stream.append(client!, 'origin', n, Date.now(), json);
    const length = await client!.xlen(KEYS.stream);
    assert.equal(length, Math.floor(10_000 / json.length));
    assert.equal(Number(await client!.get(KEYS.bytes)), length * json.length);
    const state = await stream.state(client!, 'unused');
    assert.equal(state.trimmedThrough, 50 - length, 'the highest trimmed seq');
    // The count bound still holds with a generous byte bound.
    await client!.flushdb();
    const counted = new RedisStream(5, 1e12);
    await counted.prepare(client!);
    for (let n = 1; n <= 20; n++) await counted.append(client!, 'origin', n, Date.now(), json);
    assert.equal(await client!.xlen(KEYS.stream), 5);
    assert.equal(Number(await client!.get(KEYS.bytes)), 5 * json.length);
  });
});

