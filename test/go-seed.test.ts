/**
 * The seed's Go example end to end (seed-websocket-realtime.md, "Go Events"): its aftercommit.go,
 * exactly as the page writes it (a type and a variable both named EventHandler, `time` used
 * without an import: the build renames the type and adds the import, keeping every line), runs in a Go sidecar of a real
 * bin/deployd, and a WebSocket client on /ws receives the `custom_event`s it emits. A second
 * collection's aftercommit.go in the same form calls ctx.SetResponseData: the HTTP client gets
 * that response, and the WebSocket client its emit. And ctx.JoinRoom / LeaveRoom, like
 * JavaScript's session.joinRoom, put a logged-in caller's sockets in a room and take them out.
 *
 * The page's code block is read from the page when shared/ lies beside the repository, else from
 * the verbatim copy in hooks-go/examples/seed/testdata (and both must agree when both exist).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { goBuilt, goRun, sidecarPids, useGo } from './helpers/go.js';
import { makeApp, ROOT, startServer, TODOS, type TestServer } from './helpers/server.js';
import { newUser } from './helpers/users.js';
import { Peer } from './helpers/ws-peer.js';

const SEED_BLOCK = /#### Go Events\s+```go\n([\s\S]*?)```/;
const PAGE = [path.join(ROOT, '..', 'shared', 'reference', 'seed-websocket-realtime.md'), path.join(ROOT, '..', '..', 'shared', 'reference', 'seed-websocket-realtime.md')].find((f) => fs.existsSync(f));
const COPY = path.join(ROOT, 'hooks-go', 'examples', 'seed', 'testdata', 'aftercommit.go.txt');
const copy = fs.readFileSync(COPY, 'utf8');
const seedCode = PAGE ? SEED_BLOCK.exec(fs.readFileSync(PAGE, 'utf8'))![1]! : copy;

// The same form, shaping the HTTP response and emitting.
const SHAPED_AFTERCOMMIT = `// aftercommit.go - shape the response from Go
package main

type eventHandler struct{}

func (h *eventHandler) Run(ctx interface{}) error {
    eventCtx := ctx.(*EventContext)
    if eventCtx.Method == "POST" {
        eventCtx.SetResponseData(map[string]interface{}{
            "id":      eventCtx.Data["id"],
            "summary": "created " + eventCtx.Data["title"].(string),
        })
        eventCtx.AddResponseMessage("shaped in Go")
        eventCtx.Emit("note_shaped", map[string]interface{}{"id": eventCtx.Data["id"]})
    }
    return nil
}

var EventHandler = &eventHandler{}
`;


describe("the seed's Go example, end to end", () => {
  let app: string;
  let server: TestServer;
  let peer: Peer | undefined;

  before(async () => {
    useGo();
    app = makeApp({ todos: TODOS, notes: TODOS }, {
      'resources/todos/aftercommit.go': seedCode, // verbatim
      'resources/notes/aftercommit.go': SHAPED_AFTERCOMMIT,
    });
    server = await startServer(app);
    await Promise.all([goBuilt(() => server.post('/todos', { title: 'warm-up' })), goBuilt(() => server.post('/notes', { title: 'warm-up' }))]);
  }, { timeout: 600_000 });

  after(async () => {
    peer?.close();
    await server?.stop();
    if (app) fs.rmSync(app, { recursive: true, force: true });
  }, { timeout: 60_000 });

  it('hooks-go/examples/seed/testdata carries the page\'s block verbatim (checked when the page is beside the repo)', (t) => {
    if (!PAGE) return t.diagnostic('no seed-websocket-realtime.md beside the repository: compared nothing');
    assert.equal(copy, seedCode);
  });

  it('a WebSocket client receives urgent_task_created from a root POST, and task_completed from the PUT', async () => {
    peer = await Peer.connect(server);
    const posted = await server.post('/todos', { title: 'Critical system maintenance', priority: 9, assignedTo: 'admin' }, server.root);
    assert.equal(posted.status, 200, posted.text);
    const urgent = await peer.custom('urgent_task_created');
    assert.equal(typeof urgent.timestamp, 'string');
    assert.deepEqual({ ...urgent.data, timestamp: typeof urgent.data.timestamp }, {
      taskId: posted.body.id,
      title: 'Critical system maintenance',
      priority: 9,
      createdBy: 'root',
      timestamp: 'string', // time.Now() as JSON
    });
    assert.ok(!Number.isNaN(Date.parse(urgent.data.timestamp)));

    const low = await server.post('/todos', { title: 'later', priority: 2 });
    assert.equal(low.status, 200, low.text);
    const done = await server.put(`/todos/${low.body.id}`, { status: 'completed' });
    assert.equal(done.status, 200, done.text);
    const completed = await peer.custom('task_completed');
    assert.deepEqual({ ...completed.data, completionTime: typeof completed.data.completionTime }, {
      taskId: low.body.id,
      title: 'later',
      completedBy: null, // anonymous: Me is nil, Me["username"] is nil
      completionTime: 'string',
    });
    // The low-priority POST emitted nothing: the next custom event is the PUT's.
    assert.equal(peer.frames.some((f) => f.type === 'custom_event' && f.event === 'urgent_task_created'), false);
  });

  it('ctx.SetResponseData in aftercommit.go replaces the HTTP response; its emit reaches the WebSocket client', async () => {
    peer ??= await Peer.connect(server);
    const res = await server.post('/notes', { title: 'groceries' });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { id: res.body.id, summary: 'created groceries', messages: ['shaped in Go'] });
    const stored = await server.get(`/notes/${res.body.id}`);
    assert.equal(stored.body.title, 'groceries');
    const shaped = await peer.custom('note_shaped');
    assert.deepEqual(shaped.data, { id: res.body.id });
    assert.equal(sidecarPids(app).size, 2);
  });
});

describe('Go hooks and login sessions: ctx.JoinRoom / LeaveRoom', () => {
  let app: string;
  let server: TestServer;
  const peers: Peer[] = [];

  before(async () => {
    useGo();
    app = makeApp(
      {
        users: { type: 'UserCollection', properties: {} },
        pings: { type: 'Collection', properties: { kind: { type: 'string' }, room: { type: 'string' }, n: { type: 'number' } } },
      },
      {
        'resources/pings/post.go': goRun(`	room, _ := ctx.Data["room"].(string)
	switch ctx.Data["kind"] {
	case "join":
		ctx.JoinRoom(room)
	case "leave":
		ctx.LeaveRoom(room)
	case "emit":
		ctx.Emit("room-msg", map[string]interface{}{"n": ctx.Data["n"]}, room)
	case "marker":
		ctx.Emit("marker", map[string]interface{}{"n": ctx.Data["n"]})
	}`),
      },
    );
    server = await startServer(app);
    await goBuilt(() => server.post('/pings', { kind: 'warm-up' }));
  }, { timeout: 600_000 });

  after(async () => {
    for (const p of peers) p.close();
    await server?.stop();
    if (app) fs.rmSync(app, { recursive: true, force: true });
  }, { timeout: 60_000 });

  /** Whether `peer` got room-msg n, proven either way by a broadcast marker sent after it. */
  async function gotRoomMessage(peer: Peer, n: number): Promise<boolean> {
    const marker = 1000 + n;
    assert.equal((await server.post('/pings', { kind: 'marker', n: marker })).status, 200);
    for (;;) {
      const m = await peer.custom('marker');
      if (m.data.n === marker) break;
    }
    return peer.frames.some((f) => f.type === 'custom_event' && f.event === 'room-msg' && f.data.n === n);
  }

  it("a room a Go hook joins for the caller's session gets that session's sockets its emits; leaving stops them", async () => {
    const alice = await newUser(server, 'alice', 'alice-password');
    const mine = await Peer.connect(server, { headers: alice.headers });
    const anonymous = await Peer.connect(server);
    peers.push(mine, anonymous);
    assert.equal((await server.post('/pings', { kind: 'join', room: 'r1' }, alice.headers)).status, 200);
    assert.equal((await server.post('/pings', { kind: 'emit', room: 'r1', n: 1 })).status, 200);
    assert.equal(await gotRoomMessage(mine, 1), true);
    assert.equal(await gotRoomMessage(anonymous, 1), false);
    assert.equal((await server.post('/pings', { kind: 'leave', room: 'r1' }, alice.headers)).status, 200);
    assert.equal((await server.post('/pings', { kind: 'emit', room: 'r1', n: 2 })).status, 200);
    assert.equal(await gotRoomMessage(mine, 2), false);
  });
});
