/**
 * Sessions and access rules on the real-time gateway (issue #7, spec/users-api.md "Real-time"),
 * with real `ws` clients against a real `bin/deployd`: how a connection proves who it is (cookie,
 * Bearer, `?token=`, the auth message), `collection_change` only for readers the read rule allows,
 * `emit(dpd.users, query, …)` to those users' sockets only, `session_ended` on logout and on a
 * password change (Deployd §7.2 #6), `session.joinRoom` & co. from hooks, rooms kept with the session
 * across reconnects, and the password never in an event.
 *
 * "Nothing arrived" is proven with a marker: events reach a socket in commit order, so once a
 * broadcast marker published after an event has arrived, that event would have arrived before it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createClient } from '../src/client/index.js';
import { eventually, makeApp, startServer, type TestServer } from './helpers/server.js';
import { bearer, cookie, hasKeyDeep, login, newUser, Peer, type Frame } from './helpers/users.js';

const CONFIGS = {
  users: { type: 'UserCollection', properties: { team: { type: 'string' } } },
  notes: { type: 'Collection', properties: { title: { type: 'string' } }, rules: { read: 'owner', create: 'owner', update: 'owner', delete: 'owner' } },
  members: { type: 'Collection', properties: { title: { type: 'string' } }, rules: { read: 'users' } },
  pings: {
    type: 'Collection',
    properties: {
      kind: { type: 'string' }, target: { type: 'string' }, room: { type: 'string' }, rooms: { type: 'array' }, n: { type: 'number' },
    },
  },
};

const FILES: Record<string, string> = {
  'resources/pings/post.js': `
if (this.kind === 'to-user') emit(dpd.users, { username: this.target }, 'ping', { x: 1, n: this.n });
if (this.kind === 'to-team') emit(dpd.users, { team: this.target }, 'team-ping', { n: this.n });
if (this.kind === 'join-team') session.joinRoom('team-' + me.team);
if (this.kind === 'join') session.joinRoom(this.room);
if (this.kind === 'join-many') session.joinRooms(this.rooms);
if (this.kind === 'leave') session.leaveRoom(this.room);
if (this.kind === 'leave-all') session.leaveAllRooms();
if (this.kind === 'room-emit') emit(this.room, 'room-msg', { room: this.room, n: this.n });
if (this.kind === 'marker') emit('marker', { n: this.n });`,
};

let server: TestServer;
const peers: Peer[] = [];
let counter = 0;
const nextN = () => ++counter;

before(async () => {
  server = await startServer(makeApp(CONFIGS, FILES), { args: ['--hook-workers', '1'] });
}, { timeout: 120_000 });

after(async () => {
  for (const peer of peers) peer.close();
  await server?.stop();
}, { timeout: 60_000 });

async function connect(label: string, options: { query?: string; headers?: Record<string, string> } = {}): Promise<Peer> {
  const peer = await Peer.connect(server, label, options);
  peers.push(peer);
  await peer.ask({ type: 'ping' }, 'pong'); // the connection is set up (identity included) before the test goes on
  return peer;
}

/** A socket that authenticates with the auth message; checks the answer's shape. */
async function connectWithAuthMessage(label: string, token: string, userId: string): Promise<Peer> {
  const peer = await connect(label);
  assert.deepEqual(await peer.ask({ type: 'auth', token }, 'authenticated'), { type: 'authenticated', isRoot: false, userId });
  return peer;
}

async function ping(body: Record<string, unknown>, headers?: Record<string, string>): Promise<void> {
  const res = await server.post('/pings', body, headers);
  assert.equal(res.status, 200, `POST /pings ${JSON.stringify(body)}: ${res.status} ${res.text}`);
}

/** Publishes a broadcast marker and returns, per peer, every frame that arrived before it. */
async function framesBeforeMarker(...targets: Peer[]): Promise<Frame[][]> {
  const n = nextN();
  await ping({ kind: 'marker', n });
  return Promise.all(targets.map(async (peer) => {
    const frames = await peer.until((f) => f.type === 'custom_event' && f.event === 'marker' && f.data?.n === n, `marker ${n}`);
    return frames.slice(0, -1);
  }));
}

const changesOf = (frames: Frame[], collection: string, title?: string) =>
  frames.filter((f) => f.type === 'collection_change' && f.collection === collection && (title === undefined || f.document?.title === title));
const customs = (frames: Frame[], event: string) => frames.filter((f) => f.type === 'custom_event' && f.event === event);

/** Emits to `room` (from an anonymous request) until `peer` receives one, at most 5 s; the rooms may be joined asynchronously. */
async function roomReaches(peer: Peer, room: string): Promise<Frame> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const n = nextN();
    await ping({ kind: 'room-emit', room, n });
    try {
      return await peer.take((f) => f.type === 'custom_event' && f.event === 'room-msg' && f.data?.n === n, `room-msg ${n} in ${room}`, 300);
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${peer.label} never received an emit to room "${room}" within 5 s: ${(err as Error).message}`);
    }
  }
}

// ---- identity ------------------------------------------------------------------------------------

describe('a connection\'s identity', () => {
  let alice: Awaited<ReturnType<typeof newUser>>;
  before(async () => {
    alice = await newUser(server, 'alice', 'alice-password', { team: 'red' });
  }, { timeout: 120_000 });

  it('a session token by cookie, Authorization: Bearer, ?token= or the auth message makes the socket that user', async () => {
    const viaCookie = await connect('cookie', { headers: cookie(alice.token) });
    const viaBearer = await connect('bearer', { headers: bearer(alice.token) });
    const viaQuery = await connect('?token=', { query: `?token=${encodeURIComponent(alice.token)}` });
    const viaMessage = await connectWithAuthMessage('auth message', alice.token, alice.uid);
    const all = [viaCookie, viaBearer, viaQuery, viaMessage];
    assert.equal((await server.post('/notes', { title: 'identity-check' }, alice.headers)).status, 200);
    for (const [i, frames] of (await framesBeforeMarker(...all)).entries()) {
      assert.equal(changesOf(frames, 'notes', 'identity-check').length, 1, `${all[i].label} receives alice's own note`);
    }
  });

  it('the auth message answers {"type":"authenticated","isRoot","userId"}; the master key makes root', async () => {
    const peer = await connect('auth answers');
    assert.deepEqual(await peer.ask({ type: 'auth', token: alice.token }, 'authenticated'), { type: 'authenticated', isRoot: false, userId: alice.uid });
    const root = await peer.ask({ type: 'auth', token: server.masterKey }, 'authenticated');
    assert.equal(root.isRoot, true);
    assert.equal(root.type, 'authenticated');
  });

  it('{"type":"auth","token":null} goes back to anonymous: owner documents stop arriving', async () => {
    const peer = await connectWithAuthMessage('back to anonymous', alice.token, alice.uid);
    assert.deepEqual(await peer.ask({ type: 'auth', token: null }, 'authenticated'), { type: 'authenticated', isRoot: false, userId: null });
    assert.equal((await server.post('/notes', { title: 'after-null-auth' }, alice.headers)).status, 200);
    const [frames] = await framesBeforeMarker(peer);
    assert.deepEqual(changesOf(frames, 'notes'), [], 'an anonymous socket gets no owner document');
  });

  it('an unknown token at the upgrade (?token=, Bearer, cookie) opens an anonymous socket', async () => {
    const bogus = 'b'.repeat(64);
    const all = [
      await connect('bogus ?token=', { query: `?token=${bogus}` }),
      await connect('bogus bearer', { headers: bearer(bogus) }),
      await connect('bogus cookie', { headers: cookie(bogus) }),
    ];
    assert.equal((await server.post('/notes', { title: 'bogus-upgrade-check' }, alice.headers)).status, 200);
    for (const [i, frames] of (await framesBeforeMarker(...all)).entries()) {
      assert.deepEqual(changesOf(frames, 'notes'), [], `${all[i].label}: no owner document`);
    }
  });

  it('an auth message with an unknown token leaves the socket anonymous, even one that was a user before', async () => {
    const switched = await connectWithAuthMessage('switched to a bogus token', alice.token, alice.uid);
    switched.send({ type: 'auth', token: 'b'.repeat(64) });
    const reply = await switched.take((f) => f.type === 'authenticated' || f.type === 'error', 'an answer to the bogus auth message');
    if (reply.type === 'authenticated') assert.deepEqual(reply, { type: 'authenticated', isRoot: false, userId: null });
    assert.equal((await server.post('/notes', { title: 'bogus-message-check' }, alice.headers)).status, 200);
    const [frames] = await framesBeforeMarker(switched);
    assert.deepEqual(changesOf(frames, 'notes'), [], 'spec: "Invalid → anonymous"; the socket still receives alice\'s owner-only note');
  });
});

// ---- collection_change and read rules ------------------------------------------------------------

describe('collection_change respects the read rule', () => {
  let owner: Awaited<ReturnType<typeof newUser>>;
  let other: Awaited<ReturnType<typeof newUser>>;
  before(async () => {
    owner = await newUser(server, 'olive', 'olive-password', { team: 'blue' });
    other = await newUser(server, 'otto', 'otto-password', { team: 'blue' });
  }, { timeout: 120_000 });

  it('an owner-only document (created, updated, deleted) reaches its owner\'s sockets and root\'s, not another user\'s or anonymous ones', async () => {
    const mine = await connect('owner', { headers: bearer(owner.token) });
    const theirs = await connect('other user', { headers: cookie(other.token) });
    const anonymous = await connect('anonymous');
    const root = await connect('root', { headers: server.root });
    const doc = (await server.post('/notes', { title: 'olive-private' }, owner.headers)).body;
    assert.equal((await server.put(`/notes/${doc.id}`, { title: 'olive-private' }, owner.headers)).status, 200);
    assert.equal((await server.del(`/notes/${doc.id}`, owner.headers)).status, 200);
    const [ownerFrames, otherFrames, anonymousFrames, rootFrames] = await framesBeforeMarker(mine, theirs, anonymous, root);
    for (const frames of [ownerFrames, rootFrames]) {
      assert.deepEqual(changesOf(frames, 'notes', 'olive-private').map((f) => f.action), ['created', 'updated', 'deleted']);
      assert.equal(changesOf(frames, 'notes', 'olive-private')[0].document.owner, owner.uid);
    }
    assert.deepEqual(changesOf(otherFrames, 'notes'), [], 'another user gets nothing of it');
    assert.deepEqual(changesOf(anonymousFrames, 'notes'), [], 'an anonymous socket gets nothing of it');
  });

  it('a "users" read rule: anonymous sockets get nothing, logged-in sockets get the change', async () => {
    const user = await connect('user', { headers: bearer(other.token) });
    const anonymous = await connect('anonymous');
    assert.equal((await server.post('/members', { title: 'members-only' }, server.root)).status, 200);
    const [userFrames, anonymousFrames] = await framesBeforeMarker(user, anonymous);
    assert.equal(changesOf(userFrames, 'members', 'members-only').length, 1);
    assert.deepEqual(changesOf(anonymousFrames, 'members'), []);
  });

  it('a socket that logs in by auth message starts receiving what the rule now allows', async () => {
    const peer = await connect('upgraded later');
    assert.equal((await server.post('/members', { title: 'before-auth' }, server.root)).status, 200);
    const [before] = await framesBeforeMarker(peer);
    assert.deepEqual(changesOf(before, 'members'), []);
    assert.deepEqual(await peer.ask({ type: 'auth', token: other.token }, 'authenticated'), { type: 'authenticated', isRoot: false, userId: other.uid });
    assert.equal((await server.post('/members', { title: 'after-auth' }, server.root)).status, 200);
    const [after] = await framesBeforeMarker(peer);
    assert.equal(changesOf(after, 'members', 'after-auth').length, 1);
  });

  it('go-deployd §5: the password hash is in no real-time event (sign-up, password change), for anyone or root', async () => {
    const root = await connect('root', { headers: server.root });
    const anonymous = await connect('anonymous');
    const user = await newUser(server, 'hashless', 'hashless-password');
    assert.equal((await server.put(`/users/${user.uid}`, { password: 'hashless-password-2' }, user.headers)).status, 200);
    assert.equal((await server.put(`/users/${user.uid}`, { team: 'x' }, server.root)).status, 200);
    for (const [i, frames] of (await framesBeforeMarker(root, anonymous)).entries()) {
      const userEvents = frames.filter((f) => f.type === 'collection_change' && f.collection === 'users' && f.document?.id === user.uid);
      if (i === 0) assert.deepEqual(userEvents.map((f) => f.action), ['created', 'updated', 'updated'], 'root sees every change');
      for (const f of userEvents) {
        assert.equal(hasKeyDeep(f, 'password'), false, `no password in ${JSON.stringify(f)}`);
        assert.equal(f.document.username, 'hashless');
      }
    }
  });
});

// ---- user-targeted events ------------------------------------------------------------------------

describe('emit(dpd.users, query, event, data)', () => {
  let bob: Awaited<ReturnType<typeof newUser>>;
  let rita: Awaited<ReturnType<typeof newUser>>;
  let rick: Awaited<ReturnType<typeof newUser>>;
  before(async () => {
    bob = await newUser(server, 'bob', 'bob-password', { team: 'blue' });
    rita = await newUser(server, 'rita', 'rita-password', { team: 'red' });
    rick = await newUser(server, 'rick', 'rick-password', { team: 'red' });
  }, { timeout: 120_000 });

  it('reaches every socket of the matching user, and no one else\'s (not anonymous, not root, not other users)', async () => {
    const bob1 = await connect('bob via header', { headers: bearer(bob.token) });
    const bobSecondSession = await login(server, 'bob', 'bob-password');
    const bob2 = await connectWithAuthMessage('bob via auth message (another session)', bobSecondSession.token, bob.uid);
    const ritaPeer = await connect('rita', { headers: bearer(rita.token) });
    const anonymous = await connect('anonymous');
    const root = await connect('root', { headers: server.root });
    const n = nextN();
    await ping({ kind: 'to-user', target: 'bob', n }, rita.headers);
    for (const peer of [bob1, bob2]) {
      const frame = await peer.take((f) => f.type === 'custom_event' && f.event === 'ping' && f.data?.n === n, 'the ping for bob');
      assert.deepEqual(frame.data, { x: 1, n });
      assert.equal('users' in frame, false, `the targeting is not sent: ${JSON.stringify(frame)}`);
    }
    for (const [i, frames] of (await framesBeforeMarker(ritaPeer, anonymous, root)).entries()) {
      assert.deepEqual(customs(frames, 'ping'), [], `${[ritaPeer, anonymous, root][i].label} gets no ping for bob`);
    }
  });

  it('a query matching several users reaches each of them', async () => {
    const ritaPeer = await connect('rita', { headers: bearer(rita.token) });
    const rickPeer = await connect('rick', { headers: cookie(rick.token) });
    const bobPeer = await connect('bob', { headers: bearer(bob.token) });
    const n = nextN();
    await ping({ kind: 'to-team', target: 'red', n });
    for (const peer of [ritaPeer, rickPeer]) {
      await peer.take((f) => f.type === 'custom_event' && f.event === 'team-ping' && f.data?.n === n, 'the team ping');
    }
    const [bobFrames] = await framesBeforeMarker(bobPeer);
    assert.deepEqual(customs(bobFrames, 'team-ping'), []);
  });
});

// ---- sessions ending -------------------------------------------------------------------------------

describe('sessions ending on open sockets', () => {
  it('Deployd §7.2 #6: after logout the socket gets session_ended, becomes anonymous, and no longer receives user-targeted events or owner documents', async () => {
    const cleo = await newUser(server, 'cleo', 'cleo-password');
    const second = await login(server, 'cleo', 'cleo-password');
    const endedSocket = await connect('socket of the session that logs out', { headers: bearer(cleo.token) });
    const otherSocket = await connect('socket of cleo\'s other session', { headers: bearer(second.token) });
    // Before: the user-targeted event arrives.
    const before = nextN();
    await ping({ kind: 'to-user', target: 'cleo', n: before });
    await endedSocket.take((f) => f.event === 'ping' && f.data?.n === before, 'the ping before logout');

    const res = await server.post('/users/logout', {}, cleo.headers);
    assert.deepEqual(res.body, { count: 1 });
    assert.deepEqual(await endedSocket.take((f) => f.type === 'session_ended', 'session_ended'), { type: 'session_ended' });

    const afterN = nextN();
    await ping({ kind: 'to-user', target: 'cleo', n: afterN });
    assert.equal((await server.post('/notes', { title: 'cleo-after-logout' }, bearer(second.token))).status, 200);
    const [ended, other] = await framesBeforeMarker(endedSocket, otherSocket);
    assert.deepEqual(customs(ended, 'ping'), [], 'no user-targeted event after logout');
    assert.deepEqual(changesOf(ended, 'notes'), [], 'no owner document after logout');
    assert.equal(ended.filter((f) => f.type === 'session_ended').length, 0, 'session_ended is sent once');
    // The user's other session is untouched: it got both, and no session_ended.
    assert.equal(customs(other, 'ping').filter((f) => f.data.n === afterN).length, 1);
    assert.equal(changesOf(other, 'notes', 'cleo-after-logout').length, 1);
    assert.equal(other.filter((f) => f.type === 'session_ended').length, 0);
    assert.equal(endedSocket.closeInfo, undefined, 'the socket stays open (it received the marker)');
  });

  it('a password change sends session_ended to sockets of the user\'s other sessions; the changing session\'s socket keeps its events', async () => {
    const dora = await newUser(server, 'dora', 'dora-password-1');
    const other = await login(server, 'dora', 'dora-password-1');
    const current = await connect('the session that changes the password', { headers: bearer(dora.token) });
    const ended = await connectWithAuthMessage('another session (auth message)', other.token, dora.uid);
    assert.equal((await server.put(`/users/${dora.uid}`, { password: 'dora-password-2' }, dora.headers)).status, 200);
    assert.deepEqual(await ended.take((f) => f.type === 'session_ended', 'session_ended'), { type: 'session_ended' });

    const n = nextN();
    await ping({ kind: 'to-user', target: 'dora', n });
    const [currentFrames, endedFrames] = await framesBeforeMarker(current, ended);
    assert.equal(currentFrames.filter((f) => f.type === 'session_ended').length, 0, 'the current session did not end');
    assert.equal(customs(currentFrames, 'ping').filter((f) => f.data.n === n).length, 1, 'the current session still receives user-targeted events');
    assert.deepEqual(customs(endedFrames, 'ping'), [], 'the ended session receives none');

    // Owner-only documents: the current session's socket gets them, the ended one does not.
    assert.equal((await server.post('/notes', { title: 'dora-after-change' }, dora.headers)).status, 200);
    const [currentNotes, endedNotes] = await framesBeforeMarker(current, ended);
    assert.equal(changesOf(currentNotes, 'notes', 'dora-after-change').length, 1);
    assert.deepEqual(changesOf(endedNotes, 'notes'), []);
  });
});

// ---- rooms from hooks -------------------------------------------------------------------------------

describe('session rooms from hooks', () => {
  it('session.joinRoom("team-" + me.team) in a hook: a room emit reaches every socket of that session, no one else', async () => {
    const erin = await newUser(server, 'erin', 'erin-password', { team: 'green' });
    const frank = await newUser(server, 'frank', 'frank-password', { team: 'green' });
    const erinOtherSession = await login(server, 'erin', 'erin-password');
    const e1 = await connect('erin, header', { headers: bearer(erin.token) });
    const e2 = await connectWithAuthMessage('erin, same session by auth message', erin.token, erin.uid);
    const e3 = await connect('erin, another session', { headers: bearer(erinOtherSession.token) });
    const f = await connect('frank', { headers: bearer(frank.token) });
    const anonymous = await connect('anonymous');
    await ping({ kind: 'join-team' }, erin.headers);
    const first = await roomReaches(e1, 'team-green');
    assert.equal(first.room, 'team-green');
    assert.deepEqual(first.data, { room: 'team-green', n: first.data.n });
    const n = nextN();
    await ping({ kind: 'room-emit', room: 'team-green', n });
    const all = [e1, e2, e3, f, anonymous];
    const frames = await framesBeforeMarker(...all);
    const got = frames.map((list) => customs(list, 'room-msg').some((m) => m.data.n === n));
    assert.deepEqual(got, [true, true, false, false, false], `who got the room emit: ${all.map((p) => p.label).join(', ')}`);
  });

  it('session.joinRooms([...]), leaveRoom and leaveAllRooms', async () => {
    const gina = await newUser(server, 'gina', 'gina-password');
    const peer = await connect('gina', { headers: bearer(gina.token) });
    await ping({ kind: 'join-many', rooms: ['gina-a', 'gina-b', 'gina-c'] }, gina.headers);
    await roomReaches(peer, 'gina-a');
    await roomReaches(peer, 'gina-b');
    await roomReaches(peer, 'gina-c');

    await ping({ kind: 'leave', room: 'gina-a' }, gina.headers);
    const n1 = nextN();
    await ping({ kind: 'room-emit', room: 'gina-a', n: n1 });
    await ping({ kind: 'room-emit', room: 'gina-b', n: n1 });
    const [afterLeave] = await framesBeforeMarker(peer);
    assert.deepEqual(customs(afterLeave, 'room-msg').filter((m) => m.data.n === n1).map((m) => m.room), ['gina-b']);

    await ping({ kind: 'leave-all' }, gina.headers);
    const n2 = nextN();
    for (const room of ['gina-a', 'gina-b', 'gina-c']) await ping({ kind: 'room-emit', room, n: n2 });
    const [afterLeaveAll] = await framesBeforeMarker(peer);
    assert.deepEqual(customs(afterLeaveAll, 'room-msg').filter((m) => m.data.n === n2), []);
  });

  it('rooms are stored with the session: a reconnect with the same session is in them again', async () => {
    const hal = await newUser(server, 'hal', 'hal-password');
    const first = await connect('hal, first connection', { headers: bearer(hal.token) });
    await ping({ kind: 'join', room: 'hal-room' }, hal.headers);
    await roomReaches(first, 'hal-room');
    first.ws.close();
    await first.closed;
    const again = await connect('hal, reconnected with ?token=', { query: `?token=${encodeURIComponent(hal.token)}` });
    await roomReaches(again, 'hal-room');
    // A session that joined while no socket was open has the room on its first connection.
    const ivan = await newUser(server, 'ivan', 'ivan-password');
    await ping({ kind: 'join', room: 'ivan-room' }, ivan.headers);
    const late = await connectWithAuthMessage('ivan, connected after the join', ivan.token, ivan.uid);
    await roomReaches(late, 'ivan-room');
  });

  it('session.joinRoom from an anonymous request has no effect (and does not fail the request)', async () => {
    const anonymous = await connect('anonymous');
    const root = await connect('root', { headers: server.root });
    await ping({ kind: 'join', room: 'anon-room' });
    const n = nextN();
    await ping({ kind: 'room-emit', room: 'anon-room', n });
    for (const frames of await framesBeforeMarker(anonymous, root)) {
      assert.deepEqual(customs(frames, 'room-msg'), []);
    }
  });
});

// ---- the client library ----------------------------------------------------------------------------

describe('deployd-ts/client keeps the socket\'s session in step', () => {
  it('after dpd.users.login the socket receives the user\'s owner documents; after dpd.users.logout it is anonymous again', async () => {
    await newUser(server, 'kim', 'kim-password');
    const dpd = createClient({ baseUrl: server.url, WebSocket, collections: ['users', 'notes'], reconnect: { minDelayMs: 50, maxDelayMs: 300 } });
    const notes: string[] = [];
    const markers: number[] = [];
    dpd.notes.on('created', (doc: { title: string }) => notes.push(doc.title));
    dpd.on('marker', (data: { n: number }) => markers.push(data.n));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the client socket did not open in 5 s')), 5000);
        dpd.socketReady(() => { clearTimeout(timer); resolve(); });
      });
      const session = await dpd.users.login({ username: 'kim', password: 'kim-password' });
      assert.equal(typeof session.id, 'string');
      // The client authenticates its socket after the login answer: the first own note may race it.
      let i = 0;
      await eventually(async () => {
        await dpd.notes.post({ title: `kim-${i++}` });
        const n = nextN();
        await ping({ kind: 'marker', n });
        await eventually(() => markers.includes(n), 5000, `marker ${n} through the client`);
        return notes.length > 0;
      }, 5000, 'an own note over the client\'s socket after login');

      assert.deepEqual(await dpd.users.logout(), { count: 1 });
      const again = await login(server, 'kim', 'kim-password');
      const before = notes.length;
      assert.equal((await server.post('/notes', { title: 'kim-after-logout' }, bearer(again.token))).status, 200);
      const n = nextN();
      await ping({ kind: 'marker', n });
      await eventually(() => markers.includes(n), 5000, `marker ${n} through the client`);
      assert.deepEqual(notes.slice(before), [], 'no owner document after logout');
    } finally {
      dpd.close();
    }
  });
});

// ---- last: restarts the server ---------------------------------------------------------------------

describe('rooms and sessions after a restart', () => {
  it('a session\'s rooms are in the store: after a server restart a socket with that session is in them again', async () => {
    const lia = await newUser(server, 'lia', 'lia-password');
    const first = await connect('lia before the restart', { headers: bearer(lia.token) });
    await ping({ kind: 'join', room: 'lia-room' }, lia.headers);
    await roomReaches(first, 'lia-room');
    const { appDir, masterKey } = server;
    assert.equal(await server.stop(), 0);
    await first.closed;
    server = await startServer(appDir, { masterKey, args: ['--hook-workers', '1'] });
    const again = await connect('lia after the restart', { headers: bearer(lia.token) });
    const reconnected = await connectWithAuthMessage('lia after the restart, auth message', lia.token, lia.uid);
    await roomReaches(again, 'lia-room');
    await roomReaches(reconnected, 'lia-room');
  });
});
