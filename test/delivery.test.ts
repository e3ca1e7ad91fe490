/**
 * Real-time delivery in one process: the gateway on a real HTTP server and real WebSocket
 * clients, reading a real in-process event log and asking a read policy written here (owners
 * read their documents, root reads all, `secret` is hidden from everyone but root) — no
 * collections, hooks or child processes. What a reader may see is the policy's answer only; the
 * gateway evaluates it once per identity, delivers in log order, and resumes from the log.
 */
import assert from 'node:assert/strict';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { LocalEventLog } from '../src/events/local-log.js';
import type { CollectionChange, EventMessage } from '../src/events/messages.js';
import type { Caller, JsonObject } from '../src/hooks/protocol.js';
import { DEFAULT_REALTIME } from '../src/realtime/config.js';
import type { IdentityResolver, ResolvedCaller } from '../src/realtime/connection.js';
import { RealtimeGateway } from '../src/realtime/gateway.js';
import type { ReadAccess } from '../src/realtime/read-access.js';
import { isEvent, Peer } from './helpers/ws-peer.js';
import type { TestServer } from './helpers/server.js';

const silent = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, fatal() {}, child: () => silent, level: 'silent' } as unknown as FastifyBaseLogger;

const ROOT_KEY = 'the-master-key';
const user = (uid: string): ResolvedCaller => ({ caller: { isRoot: false, me: { id: uid, username: uid } }, session: { id: `session-${uid}`, uid, collection: 'users', rooms: [] } });
const TOKENS: Record<string, ResolvedCaller> = { alice: user('alice'), bob: user('bob'), [ROOT_KEY]: { caller: { isRoot: true, me: { id: 'root' } } } };

/** Tokens as sessions; a wrong master key is refused, as HTTP requests are. */
const identities: IdentityResolver = {
  async identify(headers: IncomingHttpHeaders, token?: string) {
    if (headers['x-master-key'] !== undefined && headers['x-master-key'] !== ROOT_KEY) throw new Error('invalid master key');
    return (token && TOKENS[token]) || { caller: { isRoot: false, me: null } };
  },
  async fromToken(token: string) {
    return TOKENS[token];
  },
};

/** Owners read their own documents, root reads everything; `secret` is for root only. Counts its evaluations per reader. */
class OwnerPolicy implements ReadAccess {
  readonly asked: string[] = [];
  /** While set, answers wait for it (to make an earlier event's check finish after a later one's). */
  hold: Promise<void> | undefined;

  async viewOf(change: CollectionChange, caller: Caller): Promise<JsonObject | null> {
    this.asked.push(caller.isRoot ? 'root' : String(caller.me?.id ?? 'anonymous'));
    const held = this.hold;
    if (held && change.document.slow) await held;
    if (change.document.boom) throw new Error('the check failed');
    if (caller.isRoot) return change.document;
    if (!caller.me || change.document.owner !== caller.me.id) return null;
    const { secret: _secret, ...visible } = change.document;
    return visible;
  }
}

const doc = (n: number, owner: string, more: JsonObject = {}): CollectionChange => ({
  type: 'collection_change', collection: 'notes', action: 'created', document: { id: `n${n}`, n, owner, secret: 's', ...more }, timestamp: new Date().toISOString(), userId: owner,
});

describe('real-time delivery (in process)', { timeout: 60_000 }, () => {
  let server: http.Server | undefined;
  let log: LocalEventLog;
  let policy: OwnerPolicy;
  let gateway: RealtimeGateway | undefined;
  let url = '';
  const peers: Peer[] = [];

  const connect = async (query = '', label = 'peer') => {
    const peer = await Peer.connect({ url } as TestServer, label, { query });
    peers.push(peer);
    return peer;
  };
  const publish = (...messages: EventMessage[]) => { for (const m of messages) log.publish(m); };
  const marker = (name: string): EventMessage => ({ type: 'custom_event', event: name, data: null, timestamp: '' });
  const events = async (peer: Peer, until: string) => (await peer.eventsUntil((f) => f.event === until, until)).filter((f) => f.event !== until);

  before(async () => {
    server = http.createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, { timeout: 10_000 });

  // A fresh log, policy and gateway per test, so ids and counts start over.
  const fresh = () => {
    log = new LocalEventLog({ size: 100, maxAgeMs: 60_000 });
    policy = new OwnerPolicy();
    gateway = new RealtimeGateway({ ...DEFAULT_REALTIME }, log, policy, identities, silent);
    server!.removeAllListeners('upgrade');
    gateway.attach(server!);
  };

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.close();
    await gateway?.close();
    await log?.close();
  }, { timeout: 10_000 });

  after(async () => {
    await gateway?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }, { timeout: 10_000 });

  it('a change reaches only the readers the policy allows, as the policy shows it', async () => {
    fresh();
    const [alice, bob, anonymous, root] = [await connect('?token=alice'), await connect('?token=bob'), await connect(), await connect(`?token=${ROOT_KEY}`)];
    publish(doc(1, 'alice'), doc(2, 'bob'), marker('end'));
    assert.deepEqual((await events(alice, 'end')).map((f) => f.document), [{ id: 'n1', n: 1, owner: 'alice' }]);
    assert.deepEqual((await events(bob, 'end')).map((f) => f.document), [{ id: 'n2', n: 2, owner: 'bob' }]);
    assert.deepEqual(await events(anonymous, 'end'), []);
    assert.deepEqual((await events(root, 'end')).map((f) => f.document.secret), ['s', 's'], 'root sees the secret');
  });

  it('the policy is asked once per identity, not once per socket', async () => {
    fresh();
    const sockets = [await connect('?token=alice'), await connect('?token=alice'), await connect('?token=alice'), await connect('?token=bob')];
    publish(doc(1, 'alice'), marker('end'));
    for (const peer of sockets.slice(0, 3)) assert.deepEqual((await events(peer, 'end')).map((f) => f.document.n), [1], 'each alice socket gets it');
    assert.deepEqual(await events(sockets[3], 'end'), []);
    assert.deepEqual(policy.asked.sort(), ['alice', 'bob']);
  });

  it('frames go out in log order even when an earlier event\'s check answers last', async () => {
    fresh();
    const alice = await connect('?token=alice');
    let release!: () => void;
    policy.hold = new Promise((resolve) => { release = resolve; });
    publish(doc(1, 'alice', { slow: true }), doc(2, 'alice'), doc(3, 'alice'));
    // The later checks answer first; the first one only now.
    await new Promise((r) => setImmediate(r));
    release();
    publish(marker('end'));
    assert.deepEqual((await events(alice, 'end')).map((f) => f.document.n), [1, 2, 3]);
  });

  it('a check that fails delivers nothing to that reader (fails closed), and the next events still flow', async () => {
    fresh();
    const alice = await connect('?token=alice');
    publish(doc(1, 'alice', { boom: true }), doc(2, 'alice'), marker('end'));
    assert.deepEqual((await events(alice, 'end')).map((f) => f.document.n), [2]);
  });

  it('a custom event for some users reaches only their sockets, without saying whom it targeted', async () => {
    fresh();
    const [alice, bob] = [await connect('?token=alice'), await connect('?token=bob')];
    publish({ type: 'custom_event', event: 'note', data: { x: 1 }, timestamp: 't', userIds: ['bob'] }, marker('end'));
    assert.deepEqual(await events(alice, 'end'), []);
    const [note] = await events(bob, 'end');
    assert.equal(note.event, 'note');
    assert.equal('userIds' in note, false);
    assert.match(note.id, /^[0-9a-z]+:\d+$/);
  });

  it('session_ended turns that session\'s sockets anonymous at once; the user\'s documents stop arriving', async () => {
    fresh();
    const alice = await connect('?token=alice');
    publish({ type: 'session_ended', sessionIds: ['session-alice'] });
    await alice.take((f) => f.type === 'session_ended', 'session_ended');
    publish(doc(1, 'alice'), marker('end'));
    assert.deepEqual(await events(alice, 'end'), []);
  });

  it('?since=<id> replays what was missed, then live events, none twice; an unknown id answers resync_required', async () => {
    fresh();
    const first = await connect('?token=alice');
    const since = first.greeting!.id as string;
    first.close();
    publish(doc(1, 'alice'), doc(2, 'bob'), doc(3, 'alice'));
    const back = await connect(`?token=alice&since=${encodeURIComponent(since)}`);
    publish(doc(4, 'alice'), marker('end'));
    assert.deepEqual((await events(back, 'end')).map((f) => f.document.n), [1, 3, 4]);

    const lost = await connect('?token=alice&since=nope:1');
    await lost.take((f) => f.type === 'resync_required', 'resync_required');
    publish(doc(5, 'alice'), marker('end2'));
    assert.deepEqual((await events(lost, 'end2')).map((f) => f.document.n), [5], 'live events follow the resync');
  });

  it('the gateway reads only the log: what is published after close() reaches no one', async () => {
    fresh();
    const alice = await connect('?token=alice');
    await gateway!.close();
    publish(doc(1, 'alice'));
    await alice.closed;
    assert.equal(alice.closeInfo?.code, 1001);
    assert.deepEqual(alice.frames.filter(isEvent), []);
  });
});
