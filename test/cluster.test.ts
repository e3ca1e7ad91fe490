/**
 * Many instances as one (REDIS_URL): real `bin/deployd` processes sharing one app folder and one
 * SQLite database, a real redis-server on a free port, real WebSocket clients. What is asserted is
 * what a client can observe: every event it may see arrives exactly once, in the same order on
 * every instance, whichever instance committed it — through a burst, an instance killed with
 * SIGKILL, Redis stopped and started again (with and without its data), and a client that stops
 * reading.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import type { RedisServer } from './helpers/redis.js';
import { eventually, makeApp, TODOS, type TestServer } from './helpers/server.js';
import { Stack } from './helpers/stack.js';
import { bearer, newUser } from './helpers/users.js';

type Frame = Record<string, any>;

const SECRETS = { type: 'Collection', properties: { title: { type: 'string' }, secret: { type: 'boolean' }, n: { type: 'number' } } };
const BURST = { type: 'Collection', noStore: true, properties: { w: { type: 'string' } } };
const SHOUT = { type: 'Collection', noStore: true, properties: {} };

const APP_FILES: Record<string, string> = {
  // The receiving instance decides who may see a document: anonymous clients never see secrets.
  'resources/secrets/get.js': `if (this.secret && !isRoot) cancel('no', 401);`,
  // One GET publishes 1000 custom events (the most one hook event may emit).
  'resources/burst/get.js': `for (var i = 0; i < 1000; i++) emit('b', { w: query.w, i: i });`,
  // A room emit: reaches the room's members on every instance.
  'resources/shout/get.js': `emit(query.room, 'shout', { n: Number(query.n) });`,
};

/** Same master key for every instance, as a real cluster has. */
const MASTER_KEY = 'cluster-test-master-key-0123456789abcdef';

const isEvent = (f: Frame) => f.type === 'collection_change' || f.type === 'custom_event';
const keyOf = (f: Frame) => {
  if (f.type === 'custom_event') return `${f.event}:${f.data.w}:${f.data.i}`;
  return `${f.collection}:${f.action}:${f.document.title}${f.action === 'updated' ? `#${f.document.n}` : ''}`;
};
const seqOf = (id: string) => Number(id.split(':')[1]);

/**
 * Everything this file starts: the tests stop what they started themselves, and this stops whatever
 * a failed start or a failed test left running, so the file always ends.
 */
const stack = new Stack();
after(() => stack.stop(), { timeout: 60_000 });

async function startCluster(count: number, redis: RedisServer, realtime: Record<string, unknown> = {}): Promise<TestServer[]> {
  const app = makeApp({ todos: TODOS, secrets: SECRETS, burst: BURST, shout: SHOUT }, { ...APP_FILES, '.deployd/realtime.json': JSON.stringify({ rooms: ['lobby', 'team-*'], ...realtime }) });
  // One at a time: the first creates the database, the others open it.
  const first = await stack.server(app, { env: { REDIS_URL: redis.url }, masterKey: MASTER_KEY, args: ['--hook-workers', '1'] });
  const rest = await Stack.all(Array.from({ length: count - 1 }, () => stack.server(app, { env: { REDIS_URL: redis.url }, masterKey: MASTER_KEY, args: ['--hook-workers', '1'] })));
  return [first, ...rest];
}

/**
 * A WebSocket client that records every event and, when its connection drops, reconnects with
 * `?since=<last id>` to the server `failover()` names — what the dpd client does behind a balancer.
 */
class Listener {
  readonly events: Frame[] = [];
  /** Other frames (joined, error, ...). */
  readonly controls: Frame[] = [];
  resyncs = 0;
  reconnects = 0;
  closeCodes: number[] = [];
  lastId: string | null = null;
  ws!: WebSocket;
  private done = false;
  private waiters: Array<() => void> = [];

  constructor(readonly name: string, private server: TestServer, private readonly options: { root?: boolean; failover?: () => TestServer } = {}) {}

  async open(since?: string): Promise<void> {
    const query = since ? `?since=${encodeURIComponent(since)}` : '';
    const headers = this.options.root ? { 'x-master-key': MASTER_KEY } : undefined;
    const ws = new WebSocket(`${this.server.url.replace('http', 'ws')}/ws${query}`, { headers });
    this.ws = ws;
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'connected' && this.lastId === null) this.lastId = frame.id;
      if (frame.type === 'resync_required') this.resyncs++;
      if (isEvent(frame)) {
        this.events.push(frame);
        this.lastId = frame.id;
      } else {
        this.controls.push(frame);
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    ws.on('error', () => {});
    ws.on('close', (code) => {
      this.closeCodes.push(code);
      if (!this.done && ws === this.ws && this.options.failover) void this.reconnect();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('close', (code) => reject(new Error(`${this.name}: closed (${code}) before opening`)));
    });
    if (since === undefined) await this.until(() => this.lastId !== null, 'the connected greeting');
  }

  private async reconnect(): Promise<void> {
    this.server = this.options.failover!();
    for (let attempt = 0; attempt < 50 && !this.done; attempt++) {
      try {
        await this.open(this.lastId ?? undefined);
        this.reconnects++;
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  get isRoot(): boolean {
    return this.options.root === true;
  }

  keys(): string[] {
    return this.events.map(keyOf);
  }

  /** Waits (bounded) until `check` holds. */
  async until(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out waiting for ${what} (has ${this.events.length} events)`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  async untilHas(keys: Iterable<string>, timeoutMs?: number): Promise<void> {
    const wanted = [...keys];
    await this.until(() => { const have = new Set(this.keys()); return wanted.every((k) => have.has(k)); }, `${wanted.length} events`, timeoutMs);
  }

  close(): void {
    this.done = true;
    this.ws?.close();
  }
}

/** No event twice (by id and by content), ids in stream order. */
function assertExactlyOnceInOrder(listener: Listener): void {
  const ids = listener.events.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, `${listener.name}: an event id arrived twice`);
  const keys = listener.keys();
  assert.equal(new Set(keys).size, keys.length, `${listener.name}: an event arrived twice`);
  for (let i = 1; i < ids.length; i++) {
    if (ids[i - 1].split(':')[0] === ids[i].split(':')[0]) assert.ok(seqOf(ids[i]) > seqOf(ids[i - 1]), `${listener.name}: ${ids[i]} after ${ids[i - 1]}`);
  }
}

async function health(server: TestServer): Promise<Frame> {
  return (await server.get('/health')).body;
}

describe('cluster: instances sharing real-time through Redis', { timeout: 240_000 }, () => {
  let redis: RedisServer;
  let cluster: TestServer[];
  const listeners: Listener[] = [];
  const listen = async (name: string, server: TestServer, options?: ConstructorParameters<typeof Listener>[2]) => {
    const listener = new Listener(name, server, options);
    listeners.push(listener);
    await listener.open();
    return listener;
  };

  before(async () => {
    redis = await stack.redis();
    cluster = await startCluster(3, redis, { limits: { maxBufferedBytes: 64 * 1024 * 1024 }, history: { size: 100_000 } });
  }, { timeout: 120_000 });

  after(async () => {
    for (const listener of listeners) listener.close();
    await Promise.all((cluster ?? []).map((s) => s.stop()));
    await redis?.close();
  }, { timeout: 60_000 });

  it('/health reports the bus as ok on every instance', async () => {
    for (const server of cluster) assert.equal((await health(server)).bus, 'ok');
  });

  it('clients on each instance get every write of every instance exactly once, in the same order, filtered by the receiving instance', async () => {
    const root = await Promise.all(cluster.map((s, i) => listen(`root@${i}`, s, { root: true })));
    const anonymous = await Promise.all(cluster.map((s, i) => listen(`anonymous@${i}`, s)));
    const shared = (await cluster[0].post('/todos', { title: 'shared', n: 0 })).body;
    const expectedAll: string[] = ['todos:created:shared'];
    // Concurrent writes on every instance: 20 todos and 10 secrets (half of them secret) each.
    await Promise.all(cluster.map(async (server, i) => {
      for (let k = 0; k < 20; k++) assert.equal((await server.post('/todos', { title: `t${i}-${k}`, n: k })).status, 200);
      for (let k = 0; k < 10; k++) assert.equal((await server.post('/secrets', { title: `s${i}-${k}`, secret: k % 2 === 0, n: k }, server.root)).status, 200);
    }));
    // The same document updated in turn through each instance: commit order is the order of n.
    for (let n = 1; n <= 15; n++) {
      const res = await cluster[n % 3].put(`/todos/${shared.id}`, { title: 'shared', n });
      assert.equal(res.status, 200);
    }
    for (let i = 0; i < 3; i++) {
      for (let k = 0; k < 20; k++) expectedAll.push(`todos:created:t${i}-${k}`);
      for (let k = 0; k < 10; k++) expectedAll.push(`secrets:created:s${i}-${k}`);
    }
    const hidden = new Set(expectedAll.filter((k) => /^secrets:created:s\d-\d*[02468]$/.test(k)));
    const lastUpdate = (l: Listener) => l.events.some((e) => e.action === 'updated' && e.document.n === 15);
    for (const listener of [...root, ...anonymous]) {
      await listener.untilHas(expectedAll.filter((k) => listener.isRoot || !hidden.has(k)));
      await listener.until(() => lastUpdate(listener), 'the last update');
    }
    await new Promise((r) => setTimeout(r, 300)); // anything extra (a duplicate) would land now
    for (const listener of [...root, ...anonymous]) {
      assertExactlyOnceInOrder(listener);
      const visible = expectedAll.filter((k) => listener.isRoot || !hidden.has(k));
      const creates = listener.keys().filter((k) => k.includes(':created:'));
      assert.deepEqual([...creates].sort(), [...visible].sort(), `${listener.name} got exactly the creates it may see`);
      // Per collection and per writer, commit order is kept.
      for (let i = 0; i < 3; i++) {
        const mine = creates.filter((k) => k.startsWith(`todos:created:t${i}-`));
        assert.deepEqual(mine, Array.from({ length: 20 }, (_, k) => `todos:created:t${i}-${k}`), `${listener.name}: instance ${i}'s todos in order`);
      }
      const updates = listener.events.filter((e) => e.action === 'updated').map((e) => e.document.n);
      assert.deepEqual(updates, Array.from({ length: 15 }, (_, k) => k + 1), `${listener.name}: updates of one document in commit order`);
      assert.equal(listener.resyncs, 0);
    }
    // Every client, whatever its instance, saw the one shared order (the ids are the stream's).
    const order = (l: Listener) => l.events.map((e) => e.id);
    for (const listener of root.slice(1)) assert.deepEqual(order(listener), order(root[0]), `${listener.name} saw the same order as ${root[0].name}`);
    for (const listener of anonymous.slice(1)) assert.deepEqual(order(listener), order(anonymous[0]));
    // Each event was published once: a root client's ids are consecutive stream positions.
    const seqs = order(root[0]).map(seqOf);
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, 'no event was published twice (or by a non-committing instance)');
    for (const listener of [...root, ...anonymous]) listener.close();
  });

  it('a client that was on one instance resumes on another with ?since= and gets exactly what it missed', async () => {
    const first = await listen('resumer@0', cluster[0]);
    for (let k = 0; k < 5; k++) assert.equal((await cluster[2].post('/todos', { title: `seen${k}` })).status, 200);
    await first.untilHas(Array.from({ length: 5 }, (_, k) => `todos:created:seen${k}`));
    const lastSeen = first.lastId!;
    first.close();
    for (let k = 0; k < 7; k++) assert.equal((await cluster[k % 3].post('/todos', { title: `missed${k}` })).status, 200);
    const back = new Listener('resumer@1', cluster[1]);
    listeners.push(back);
    await back.open(lastSeen);
    const missed = Array.from({ length: 7 }, (_, k) => `todos:created:missed${k}`);
    await back.untilHas(missed);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(back.keys(), missed, 'exactly the missed events, in commit order');
    assert.equal(back.resyncs, 0);
    // An id this stream never gave out (another epoch) cannot be resumed from: resync.
    const stranger = new Listener('stranger@2', cluster[2]);
    listeners.push(stranger);
    await stranger.open(`zz${lastSeen.split(':')[0]}:${seqOf(lastSeen)}`);
    await stranger.until(() => stranger.resyncs === 1, 'resync_required');
    back.close();
    stranger.close();
  });

  it('a room emit on one instance reaches the room\'s members on every instance, and only them', async () => {
    const members = await Promise.all([1, 2].map((i) => listen(`member@${i}`, cluster[i])));
    const outsider = await listen('outsider@2', cluster[2]);
    for (const member of members) {
      member.ws.send(JSON.stringify({ type: 'join', room: 'lobby' }));
      await member.until(() => member.controls.some((f) => f.type === 'joined' && f.room === 'lobby'), 'joined');
    }
    for (let n = 0; n < 5; n++) assert.equal((await cluster[0].get(`/shout?room=lobby&n=${n}`)).status, 200);
    assert.equal((await cluster[0].get('/shout?room=team-blue&n=99')).status, 200);
    const expected = 5;
    for (const member of members) {
      await member.until(() => member.events.filter((e) => e.event === 'shout').length >= expected, 'the room events');
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const member of members) {
      const shouts = member.events.filter((e) => e.event === 'shout');
      assert.deepEqual(shouts.map((e) => [e.room, e.data.n]), [0, 1, 2, 3, 4].map((n) => ['lobby', n]), `${member.name}: the lobby's events, once, in order`);
    }
    assert.equal(outsider.events.filter((e) => e.event === 'shout').length, 0, 'not a member: nothing');
    for (const l of [...members, outsider]) l.close();
  });

  it('a burst of 50,000 events across instances: none lost, none duplicated, for every client', async () => {
    const clients = await Promise.all([0, 1, 2, 0].map((i, k) => listen(`burst${k}@${i}`, cluster[i])));
    // 50 requests, each emitting 1000 events, spread over the instances (5 at a time per instance).
    const writers = Array.from({ length: 50 }, (_, w) => `w${w}`);
    await Promise.all(cluster.map(async (server, i) => {
      const mine = writers.filter((_, w) => w % 3 === i);
      for (let k = 0; k < mine.length; k += 5) {
        await Promise.all(mine.slice(k, k + 5).map(async (w) => assert.equal((await server.get(`/burst?w=${w}`)).status, 200)));
      }
    }));
    for (const client of clients) {
      await client.until(() => client.events.filter((e) => e.event === 'b').length >= 50_000, '50,000 burst events', 120_000);
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const client of clients) {
      const burst = client.events.filter((e) => e.event === 'b');
      assert.equal(burst.length, 50_000, `${client.name}: exactly 50,000 events`);
      assertExactlyOnceInOrder(client);
      // Each writer's 1000 events in emit order.
      const byWriter = new Map<string, number[]>();
      for (const e of burst) byWriter.set(e.data.w, [...(byWriter.get(e.data.w) ?? []), e.data.i]);
      assert.equal(byWriter.size, 50);
      for (const [w, is] of byWriter) assert.deepEqual(is, Array.from({ length: 1000 }, (_, i) => i), `${client.name}: ${w} in order`);
      assert.equal(client.resyncs, 0);
      client.close();
    }
  });

  it('a client that stops reading on one instance does not hold up the others', async () => {
    const slow = await listen('slow@0', cluster[0]);
    const fastSame = await listen('fast@0', cluster[0]);
    const fastOther = await listen('fast@1', cluster[1]);
    const socket = (slow.ws as any)._socket as import('node:net').Socket;
    socket.pause(); // reads nothing from now on
    const seenBefore = slow.events.length;
    // 20 requests x 1000 events, about 1.5 MB per client: far more than the slow client's socket holds.
    await Promise.all(Array.from({ length: 20 }, (_, w) => cluster[w % 2 === 0 ? 0 : 2].get(`/burst?w=slow${w}`)));
    const expected = Array.from({ length: 20 }, (_, w) => Array.from({ length: 1000 }, (_, i) => `b:slow${w}:${i}`)).flat();
    await fastSame.untilHas(expected);
    await fastOther.untilHas(expected);
    // Everyone else has every event while the slow client has taken none of them.
    assert.equal(slow.events.length, seenBefore, 'the slow client read nothing');
    assertExactlyOnceInOrder(fastSame);
    assertExactlyOnceInOrder(fastOther);
    socket.resume();
    // Once it reads again it catches up (its buffer is 64 MiB in this app, so it was not dropped).
    await slow.untilHas(expected);
    assertExactlyOnceInOrder(slow);
    for (const l of [slow, fastSame, fastOther]) l.close();
  });

  it('an unreadable entry in the stream makes every client resync, then events go on', async () => {
    const clients = await Promise.all(cluster.map((s, i) => listen(`garbled@${i}`, s)));
    const raw = new Redis(redis.url);
    try {
      const seq = await raw.incr('dpd:rt:seq');
      await raw.xadd('dpd:rt:events', `${seq}-0`, 'o', 'intruder', 'n', '1', 't', String(Date.now()), 'm', '{not json');
    } finally {
      raw.disconnect();
    }
    for (const c of clients) await c.until(() => c.resyncs === 1, 'resync_required');
    assert.equal((await cluster[1].post('/todos', { title: 'after garbage' })).status, 200);
    for (const c of clients) {
      await c.untilHas(['todos:created:after garbage']);
      assert.equal(c.resyncs, 1);
      assertExactlyOnceInOrder(c);
      c.close();
    }
  });
});

describe('cluster: an instance killed with SIGKILL under load', { timeout: 180_000 }, () => {
  let redis: RedisServer;
  let cluster: TestServer[];
  const listeners: Listener[] = [];

  before(async () => {
    redis = await stack.redis();
    cluster = await startCluster(3, redis);
  }, { timeout: 120_000 });

  after(async () => {
    for (const listener of listeners) listener.close();
    await Promise.all((cluster ?? []).map((s) => s.stop()));
    await redis?.close();
  }, { timeout: 60_000 });

  it('its clients reconnect to another instance and resume with no gap and no duplicate', async () => {
    const [a, b, c] = cluster;
    const onA = [0, 1, 2].map((k) => new Listener(`a${k}`, a, { root: true, failover: () => (k === 0 ? c : b) }));
    const reference = new Listener('c', c, { root: true });
    listeners.push(...onA, reference);
    await Promise.all([...onA, reference].map((l) => l.open()));
    const acknowledged: string[] = [];
    const unacknowledged: string[] = [];
    let killed = false;
    // Every instance writes; after 60 acknowledged writes, A is killed mid-stream.
    await Promise.all(cluster.map(async (server, i) => {
      for (let k = 0; k < 150; k++) {
        if (server === a && killed) break;
        const title = `k${i}-${k}`;
        try {
          const res = await server.post('/todos', { title, n: k });
          if (res.status === 200) acknowledged.push(`todos:created:${title}`);
        } catch {
          unacknowledged.push(`todos:created:${title}`); // in flight when A died
        }
        if (!killed && acknowledged.length >= 60) {
          killed = true;
          a.proc.kill('SIGKILL');
        }
      }
    }));
    assert.ok(killed);
    for (const listener of [...onA, reference]) await listener.untilHas(acknowledged);
    await new Promise((r) => setTimeout(r, 500));
    for (const listener of onA) {
      assert.ok(listener.reconnects >= 1, `${listener.name} reconnected`);
      assert.equal(listener.resyncs, 0, `${listener.name} resumed without resync`);
      assertExactlyOnceInOrder(listener);
      // The same events as a client that never moved, in the same order: no gap, no duplicate.
      assert.deepEqual(listener.events.map((e) => e.id), reference.events.map((e) => e.id), `${listener.name} matches the reference`);
    }
    assertExactlyOnceInOrder(reference);
    const got = new Set(reference.keys());
    for (const key of acknowledged) assert.ok(got.has(key), `acknowledged ${key} was delivered`);
  });
});

describe('cluster: Redis stopped and started again', { timeout: 180_000 }, () => {
  for (const scenario of [
    { name: 'with its data (append-only file): every event arrives exactly once, no resync', persistent: true },
    { name: 'without its data: clients are told to resync, none silently misses an event', persistent: false },
  ]) {
    it(scenario.name, async () => {
      const redis = await stack.redis({ persistent: scenario.persistent });
      const cluster = await startCluster(3, redis);
      const clients = cluster.map((s, i) => new Listener(`r${i}`, s, { root: true }));
      try {
        await Promise.all(clients.map((l) => l.open()));
        const expected: string[] = [];
        const writeRound = async (round: string) => {
          await Promise.all(cluster.map(async (server, i) => {
            for (let k = 0; k < 10; k++) {
              const title = `${round}${i}-${k}`;
              assert.equal((await server.post('/todos', { title, n: k })).status, 200, 'writes succeed whatever Redis does');
              expected.push(`todos:created:${title}`);
            }
          }));
        };
        await writeRound('before');
        for (const l of clients) await l.untilHas(expected);

        await redis.stop(scenario.persistent ? 'SIGTERM' : 'SIGKILL');
        for (const server of cluster) {
          await eventually(async () => (await health(server)).bus === 'degraded', 10_000, '/health bus degraded');
          assert.equal((await health(server)).status, 'degraded');
        }
        await writeRound('during');
        // The committing instance's own clients still get its events.
        for (let i = 0; i < 3; i++) {
          await clients[i].untilHas(Array.from({ length: 10 }, (_, k) => `todos:created:during${i}-${k}`), 10_000);
        }

        const restartedAt = Date.now();
        await redis.launch();
        for (const server of cluster) await eventually(async () => (await health(server)).bus === 'ok', 15_000, '/health bus ok again');
        process.stdout.write(`# bus ok on all 3 instances ${Date.now() - restartedAt} ms after redis-server answered again\n`);
        await writeRound('after');

        for (const l of clients) {
          await l.untilHas(expected.filter((k) => !k.includes(':during') || scenario.persistent || l.resyncs === 0));
          await new Promise((r) => setTimeout(r, 300));
          const keys = l.keys();
          assert.equal(new Set(keys).size, keys.length, `${l.name}: no event twice`);
          if (scenario.persistent) {
            assert.equal(l.resyncs, 0, `${l.name}: recovered without resync`);
            assert.deepEqual([...keys].sort(), [...expected].sort(), `${l.name}: every event once`);
          } else {
            // The stream started over: old ids cannot be resumed, so every client was told to refetch.
            assert.equal(l.resyncs, 1, `${l.name}: got resync_required, once`);
            const have = new Set(keys);
            for (const key of expected.filter((k) => !k.includes(':during'))) assert.ok(have.has(key), `${l.name}: ${key}`);
          }
        }
      } finally {
        for (const l of clients) l.close();
        await Promise.all(cluster.map((s) => s.stop()));
        await redis.close();
      }
    });
  }
});

describe('cluster: an instance started while Redis is down', { timeout: 120_000 }, () => {
  it('serves with real-time on its own, then joins the others when Redis answers', async () => {
    const redis = await stack.redis({}, false); // a port with nothing on it yet
    const app = makeApp({ todos: TODOS }, { '.deployd/realtime.json': '{}' });
    const servers: TestServer[] = [];
    const clients: Listener[] = [];
    try {
      const a = await stack.server(app, { env: { REDIS_URL: redis.url }, masterKey: MASTER_KEY, args: ['--hook-workers', '1'] });
      servers.push(a);
      assert.deepEqual(await health(a).then((h) => [h.status, h.bus]), ['degraded', 'degraded']);
      const onA = new Listener('onA', a, { root: true });
      clients.push(onA);
      await onA.open();
      assert.equal((await a.post('/todos', { title: 'alone' })).status, 200);
      await onA.untilHas(['todos:created:alone'], 10_000);

      await redis.launch();
      await eventually(async () => (await health(a)).bus === 'ok', 15_000, 'bus ok once Redis answers');
      // It could not know what the others did meanwhile: its clients refetch, once.
      await onA.until(() => onA.resyncs === 1, 'resync_required');
      const b = await stack.server(app, { env: { REDIS_URL: redis.url }, masterKey: MASTER_KEY, args: ['--hook-workers', '1'] });
      servers.push(b);
      assert.equal((await b.post('/todos', { title: 'from b' })).status, 200);
      assert.equal((await a.post('/todos', { title: 'from a' })).status, 200);
      await onA.untilHas(['todos:created:from b', 'todos:created:from a']);
      assertExactlyOnceInOrder(onA);
      assert.equal(onA.resyncs, 1);
    } finally {
      for (const l of clients) l.close();
      await Promise.all(servers.map((s) => s.stop()));
      await redis.close();
    }
  });
});

describe('cluster: sessions across instances', { timeout: 120_000 }, () => {
  it('a logout on one instance ends that session\'s sockets on the others at once, in order with the events around it', async () => {
    const redis = await stack.redis();
    const app = makeApp({ users: { type: 'UserCollection', properties: {} }, todos: TODOS }, {
      'resources/shout/get.js': `emit(dpd.users, { username: query.to }, 'dm', { n: Number(query.n) });`,
      'resources/shout/config.json': JSON.stringify({ type: 'Collection', noStore: true, properties: {} }),
    });
    const a = await stack.server(app, { env: { REDIS_URL: redis.url }, masterKey: MASTER_KEY, args: ['--hook-workers', '1'] });
    const b = await stack.server(app, { env: { REDIS_URL: redis.url }, masterKey: MASTER_KEY, args: ['--hook-workers', '1'] });
    const frames: Frame[] = [];
    let ws: WebSocket | undefined;
    try {
      const cleo = await newUser(a, 'cleo', 'cleo-password');
      ws = new WebSocket(`${b.url.replace('http', 'ws')}/ws`, { headers: bearer(cleo.token) });
      ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
      await new Promise((resolve) => ws!.once('open', resolve));
      const waitFor = async (check: () => boolean, what: string) => {
        const deadline = Date.now() + 10_000;
        while (!check()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(frames)}`);
          await new Promise((r) => setTimeout(r, 25));
        }
      };
      // A user-targeted emit on A reaches cleo's socket on B.
      assert.equal((await a.get('/shout?to=cleo&n=1')).status, 200);
      await waitFor(() => frames.some((f) => f.event === 'dm' && f.data.n === 1), 'the dm before logout');
      // Logout on A: B's socket hears session_ended, and nothing user-targeted after it.
      assert.equal((await a.post('/users/logout', {}, cleo.headers)).status, 200);
      await waitFor(() => frames.some((f) => f.type === 'session_ended'), 'session_ended');
      assert.equal((await a.get('/shout?to=cleo&n=2')).status, 200);
      assert.equal((await a.post('/todos', { title: 'marker' })).status, 200);
      await waitFor(() => frames.some((f) => f.document?.title === 'marker'), 'the marker');
      assert.deepEqual(frames.filter((f) => f.event === 'dm').map((f) => f.data.n), [1], 'no user-targeted event after logout');
      assert.equal(frames.filter((f) => f.type === 'session_ended').length, 1);
    } finally {
      ws?.close();
      await Promise.all([a.stop(), b.stop()]);
      await redis.close();
    }
  });
});
