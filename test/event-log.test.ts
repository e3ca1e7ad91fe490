/**
 * The event log (src/events/): one conformance suite that the in-process log and the Redis log
 * (a real redis-server) both pass — what publishing, subscribing and resuming (`since`) promise
 * whichever log a server runs on — then what only the shared log does: several instances read
 * each other's events in one order, and a Redis that goes away degrades without losing events.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { Redis } from 'ioredis';
import { parseEventId, type EventLog, type LoggedEvent, type LogStatus } from '../src/events/event-log.js';
import { LocalEventLog } from '../src/events/local-log.js';
import type { CollectionChange, EventMessage } from '../src/events/messages.js';
import { RedisEventLog } from '../src/events/redis-log.js';
import { RedisServer } from './helpers/redis.js';
import { eventually } from './helpers/server.js';

/** A logger that keeps what it is told, so a test can say what was reported. */
function recordingLogger(): FastifyBaseLogger & { lines: string[] } {
  const lines: string[] = [];
  const record = (_obj: unknown, message?: string) => void lines.push(String(message ?? _obj));
  const logger = { lines, level: 'info', info: record, warn: record, error: record, debug: record, trace: record, fatal: record, silent: () => {}, child: () => logger };
  return logger as unknown as FastifyBaseLogger & { lines: string[] };
}

const change = (n: number, text = ''): CollectionChange => ({
  type: 'collection_change', collection: 'todos', action: 'created', document: { id: `d${n}`, n, text }, timestamp: new Date().toISOString(), userId: null,
});

/** What a subscriber has been handed, in order, and the gaps it was told of. */
function record(log: EventLog) {
  const events: LoggedEvent[] = [];
  let gaps = 0;
  const unsubscribe = log.subscribe({ event: (e) => events.push(e), gap: () => void gaps++ });
  return {
    events,
    get gaps() { return gaps; },
    unsubscribe,
    until: (count: number, what = `${count} events`) => eventually(() => events.length >= count, 10_000, what),
  };
}

const ns = (events: LoggedEvent[]) => events.map((e) => (e.message as CollectionChange).document.n);

interface Flavour {
  name: string;
  status: LogStatus;
  /** A fresh, empty log; bounded to `maxBytes` of messages when given. */
  open(options?: { maxBytes?: number }): Promise<EventLog>;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  reset?(): Promise<void>;
}

const local: Flavour = {
  name: 'in-process (LocalEventLog)',
  status: 'in-process',
  async open(options = {}) {
    return new LocalEventLog({ size: 10_000, maxAgeMs: 60_000, maxBytes: options.maxBytes });
  },
};

let redis: RedisServer | undefined;
let admin: Redis | undefined;
const shared: Flavour = {
  name: 'shared (RedisEventLog on a real redis-server)',
  status: 'ok',
  async setup() {
    redis = await RedisServer.start();
    admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await admin.connect();
  },
  async teardown() {
    admin?.disconnect();
    await redis?.close();
  },
  async reset() {
    await admin!.flushall();
  },
  async open(options = {}) {
    const log = new RedisEventLog({ url: redis!.url, size: 1000, maxAgeMs: 60_000, maxBytes: options.maxBytes, log: recordingLogger() });
    await log.start(10_000);
    assert.equal(log.status(), 'ok', 'the log reached Redis');
    return log;
  },
};

for (const flavour of [local, shared]) {
  describe(`event log conformance: ${flavour.name}`, { timeout: 120_000 }, () => {
    const opened: EventLog[] = [];
    const open = async (options?: { maxBytes?: number }) => {
      const log = await flavour.open(options);
      opened.push(log);
      return log;
    };

    before(async () => { await flavour.setup?.(); }, { timeout: 30_000 });
    after(async () => {
      for (const log of opened.splice(0)) await log.close();
      await flavour.teardown?.();
    }, { timeout: 30_000 });
    afterEach(async () => {
      for (const log of opened.splice(0)) await log.close();
      await flavour.reset?.();
    }, { timeout: 30_000 });

    it('hands subscribers every published message once, in publish order, with increasing ids of one epoch', async () => {
      const log = await open();
      const seen = record(log);
      for (let n = 1; n <= 20; n++) log.publish(change(n));
      await seen.until(20);
      assert.deepEqual(ns(seen.events), Array.from({ length: 20 }, (_, i) => i + 1));
      const ids = seen.events.map((e) => parseEventId(e.id));
      assert.ok(ids.every((id) => id !== undefined), 'ids are <epoch>:<seq>');
      assert.equal(new Set(ids.map((id) => id!.epoch)).size, 1, 'one epoch');
      for (let i = 1; i < ids.length; i++) assert.ok(ids[i]!.seq > ids[i - 1]!.seq, 'seqs increase');
      assert.equal(log.head(), seen.events[19].id, 'head() is the last event handed out');
      assert.equal(seen.gaps, 0);
    });

    it('carries session control messages in order with the events around them', async () => {
      const log = await open();
      const seen = record(log);
      const messages: EventMessage[] = [
        change(1),
        { type: 'session_rooms', sessionId: 's1', rooms: ['team-a'] },
        { type: 'custom_event', event: 'ping', data: { x: 1 }, timestamp: '', room: 'team-a' },
        { type: 'session_ended', sessionIds: ['s1'] },
      ];
      for (const message of messages) log.publish(message);
      await seen.until(4);
      assert.deepEqual(seen.events.map((e) => e.message), messages);
    });

    it('since(id) answers the events after id, oldest first; since(head) answers none', async () => {
      const log = await open();
      const seen = record(log);
      for (let n = 1; n <= 5; n++) log.publish(change(n));
      await seen.until(5);
      const start = log.head();
      for (let n = 6; n <= 10; n++) log.publish(change(n));
      await seen.until(10);
      assert.deepEqual(ns((await log.since(start))!), [6, 7, 8, 9, 10]);
      assert.deepEqual(ns((await log.since(seen.events[7].id))!), [9, 10]);
      assert.deepEqual(await log.since(log.head()), []);
      assert.deepEqual((await log.since(start))!.map((e) => e.id), seen.events.slice(5).map((e) => e.id), 'the same ids subscribers got');
    });

    it('since() of an id it cannot vouch for answers undefined (the client resyncs): malformed, another epoch, ahead of head', async () => {
      const log = await open();
      const seen = record(log);
      log.publish(change(1));
      await seen.until(1);
      const { epoch, seq } = parseEventId(log.head())!;
      for (const id of ['', 'nonsense', `${epoch}:-1`, `${epoch}:01`, `zz${epoch}:${seq}`, `${epoch}:${seq + 5}`, `${epoch}:${seq}:1`]) {
        assert.equal(await log.since(id), undefined, `since(${JSON.stringify(id)})`);
      }
    });

    it('keeps at most maxBytes of messages: a resume from before what was dropped answers undefined', async () => {
      const event = change(0, 'x'.repeat(1000));
      const size = JSON.stringify(event).length;
      const log = await open({ maxBytes: size * 3 + 10 });
      const seen = record(log);
      const start = log.head();
      for (let n = 1; n <= 10; n++) log.publish(change(n, 'x'.repeat(1000)));
      // (The shared log may trim entries before its own reader gets to them: wait for the last only.)
      await eventually(() => ns(seen.events).includes(10), 10_000, 'the last event');
      assert.equal(await log.since(start), undefined, 'events after start were dropped');
      // One publisher's events have consecutive seqs: the 7th is three before the head.
      const { epoch, seq } = parseEventId(log.head())!;
      assert.deepEqual(ns((await log.since(`${epoch}:${seq - 3}`))!), [8, 9, 10], 'the newest that fit are kept');
      assert.equal(await log.since(`${epoch}:${seq - 4}`), undefined, 'a fourth would pass maxBytes');
    });

    it('an unsubscribed listener gets nothing more; the others go on', async () => {
      const log = await open();
      const first = record(log);
      const second = record(log);
      log.publish(change(1));
      await first.until(1);
      await second.until(1);
      first.unsubscribe();
      log.publish(change(2));
      await second.until(2);
      assert.deepEqual(ns(first.events), [1]);
      assert.deepEqual(ns(second.events), [1, 2]);
    });

    it(`reports its status (${flavour.status}) and what it keeps`, async () => {
      const log = await open();
      const seen = record(log);
      assert.equal(log.status(), flavour.status);
      for (let n = 1; n <= 3; n++) log.publish(change(n, 'y'.repeat(100)));
      await seen.until(3);
      const stats = await log.stats();
      assert.equal(stats.events, 3);
      assert.ok(stats.bytes > 300, `bytes (${stats.bytes}) count the messages`);
    });

    it('after close() listeners get nothing and publish() does not throw', async () => {
      const log = await open();
      const seen = record(log);
      await log.close();
      assert.doesNotThrow(() => log.publish(change(1)));
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(seen.events, []);
    });
  });
}

describe('the in-process log over many events', { timeout: 60_000 }, () => {
  it('keeps exactly the newest `size` events, in order, while thousands go by (and a byte bound too)', async () => {
    const log = new LocalEventLog({ size: 100, maxAgeMs: 60_000 });
    const ids: string[] = [];
    for (let n = 1; n <= 5000; n++) {
      log.publish(change(n));
      ids.push(log.head());
      if (n % 1000 === 0) assert.equal((await log.stats()).events, 100, `after ${n} events`);
    }
    // ids[k] is event k+1's id; kept are events 4901…5000, so resuming needs event 4900's id or later.
    assert.equal(await log.since(ids[4898]), undefined, 'an id whose successors were partly dropped cannot be resumed from');
    const resumed = await log.since(ids[4899]);
    assert.deepEqual(resumed!.map((e) => (e.message as CollectionChange).document.n), Array.from({ length: 100 }, (_, i) => 4901 + i));
    assert.deepEqual(await log.since(ids[4999]), []);

    const bounded = new LocalEventLog({ size: 10_000, maxAgeMs: 60_000, maxBytes: 20_000 });
    for (let n = 1; n <= 3000; n++) bounded.publish(change(n, 'x'.repeat(100)));
    const { events, bytes } = await bounded.stats();
    assert.ok(events > 50 && events < 3000, `${events} events kept`);
    assert.ok(bytes <= 20_000 * 1.1, `${bytes} bytes kept`);
    const all = await bounded.since(`${bounded.head().split(':')[0]}:${3000 - events}`);
    assert.equal(all!.length, events);
    assert.equal((all!.at(-1)!.message as CollectionChange).document.n, 3000);
  });
});

describe('the shared log across instances (RedisEventLog)', { timeout: 120_000 }, () => {
  let server: RedisServer | undefined;
  const opened: RedisEventLog[] = [];
  const open = async (url: string, startMs = 10_000) => {
    const log = new RedisEventLog({ url, size: 1000, maxAgeMs: 60_000, log: recordingLogger() });
    opened.push(log);
    await log.start(startMs);
    return log;
  };

  // Persistent: a Redis that restarts keeps the stream, as a production one with AOF does.
  before(async () => { server = await RedisServer.start({ persistent: true }); }, { timeout: 30_000 });
  afterEach(async () => {
    for (const log of opened.splice(0)) await log.close();
    if (!server?.running) await server?.launch();
  }, { timeout: 30_000 });
  after(async () => {
    for (const log of opened.splice(0)) await log.close();
    await server?.close();
  }, { timeout: 30_000 });

  it('two instances read both instances\' events in one order, and an id from one resumes on the other', async () => {
    const [a, b] = [await open(server!.url), await open(server!.url)];
    const [seenA, seenB] = [record(a), record(b)];
    const start = a.head();
    for (let n = 1; n <= 10; n++) (n % 2 ? a : b).publish(change(n));
    await seenA.until(10);
    await seenB.until(10);
    assert.deepEqual(seenA.events, seenB.events, 'the same events, ids and order on both');
    assert.deepEqual(new Set(ns(seenA.events)), new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    assert.deepEqual((await b.since(start))!.map((e) => e.id), seenA.events.map((e) => e.id), 'a\'s position resumes on b');
  });

  it('while Redis is away: status degraded, own events still reach own listeners; back, the other instance gets them too', async () => {
    const [a, b] = [await open(server!.url), await open(server!.url)];
    const [seenA, seenB] = [record(a), record(b)];
    await server!.stop('SIGTERM');
    await eventually(() => a.status() === 'degraded' && b.status() === 'degraded', 10_000, 'both degraded');
    a.publish(change(1));
    await seenA.until(1, 'a\'s own event while Redis is away');
    assert.equal(seenB.events.length, 0, 'b cannot see it yet');
    await server!.launch();
    await eventually(() => a.status() === 'ok' && b.status() === 'ok', 15_000, 'both ok again');
    await seenB.until(1, 'b catches up from the stream');
    assert.deepEqual(ns(seenB.events), [1]);
    assert.deepEqual(ns(seenA.events), [1], 'a does not get its own event twice');
  });

  it('an instance that starts while Redis is down serves its own events and joins once Redis answers', async () => {
    await server!.stop('SIGTERM');
    const late = await open(server!.url, 300);
    assert.equal(late.status(), 'degraded');
    const seen = record(late);
    late.publish(change(1));
    await seen.until(1);
    await server!.launch();
    await eventually(() => late.status() === 'ok', 15_000, 'ok once Redis answers');
  });
});
