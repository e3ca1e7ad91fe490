/**
 * The WebSocket at `/ws`: every committed change and every hook `emit()` reaches the connected
 * clients allowed to see it, in the seed page's message formats:
 *
 *   {"type":"collection_change","collection","action","document","timestamp","userId","id"}
 *   {"type":"custom_event","event","data","timestamp","room"?,"id"}
 *
 * A collection change goes to a client only if it could GET that document: the collection's Get
 * hook runs once per distinct identity among the recipients (not once per socket), its hidden
 * fields are removed and a cancel means "not delivered"; each audience's frame is serialized once.
 * Events are delivered in the order they were committed. `id` is the event's stream position:
 * reconnecting with `/ws?since=<id>` replays what was missed, or answers `resync_required`.
 */
import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import type { RequestIdentity } from '../auth/authenticator.js';
import type { Duplex } from 'node:stream';
import { DeploydError, Errors } from '../errors.js';
import type { FastifyBaseLogger } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import type { BusMessage, CollectionChange, CustomEvent, EventBus } from '../bus/event-bus.js';
import type { Registry } from '../collections/registry.js';
import type { Caller, JsonObject } from '../hooks/protocol.js';
import { isJoinable, type RealtimeConfig } from './config.js';
import { parseStreamId, type EventHistory, type StreamEvent } from './history.js';

/** Who a connection is; `key` groups connections that see the same things. */
export interface Identity {
  key: string;
  caller: Caller;
  /** The login session behind it (hashed id), its user and the users collection it belongs to. */
  sessionId?: string;
  userId?: string;
  usersCollection?: string;
  /** Rooms the session joined through hooks' `session.joinRoom`. */
  sessionRooms?: string[];
}

/** Resolves callers the way HTTP requests are (src/auth/authenticator.ts). */
export interface IdentityResolver {
  /** From the upgrade request's headers and `?token=`; rejects (401) for a wrong master key. */
  identify(headers: IncomingHttpHeaders, token?: string): Promise<RequestIdentity>;
  /** From an `{"type":"auth","token"}` message: the master key or a session token; undefined when neither. */
  fromToken(token: string): Promise<RequestIdentity | undefined>;
}

const ANONYMOUS: Identity = { key: 'anonymous', caller: { isRoot: false, me: null } };

function toIdentity(resolved: RequestIdentity): Identity {
  if (resolved.caller.isRoot) return { key: 'root', caller: resolved.caller };
  if (!resolved.session) return ANONYMOUS;
  const { id, uid, rooms, collection } = resolved.session;
  // Connections of one user see the same documents: one Get evaluation per user, not per socket.
  return { key: `user:${uid}`, caller: resolved.caller, sessionId: id, userId: uid, usersCollection: collection, sessionRooms: rooms };
}

interface Client {
  ws: WebSocket;
  /** This instance's number for the connection, and when it connected (admin API). */
  id: number;
  connectedAt: number;
  identity: Identity;
  /** null: every collection (the default, "no additional configuration required"). */
  collections: Set<string> | null;
  excluded: Set<string>;
  /** Rooms joined by the client (`{"type":"join"}`). */
  rooms: Set<string>;
  /** Rooms its session joined through hooks (`session.joinRoom`). */
  sessionRooms: Set<string>;
  lastSeen: number;
  pingedAt: number;
  tokens: number;
  tokensAt: number;
  /** Live events held back while a resume replays history. */
  pending: StreamEvent[] | null;
  /** The last event a resume replayed: live deliveries up to it were already sent. */
  replayedThrough: string | null;
}

/** One connection as the admin API lists it. */
export interface ConnectionInfo {
  id: number;
  connectedAt: string;
  /** `root`, `anonymous` or `user:<id>`. */
  identity: string;
  /** null: every collection. */
  collections: string[] | null;
  excluded: string[];
  rooms: string[];
}

/** Who an event reached on this instance: sockets per identity, and identities refused by permissions. */
export interface Audience {
  delivered: Record<string, number>;
  refused: string[];
}

export type DeliveryObserver = (event: StreamEvent, audience: Audience) => void;

/** Per connection: subscribed plus excluded collection names, and joined rooms. */
const MAX_LISTED_COLLECTIONS = 1000;
const MAX_ROOMS = 100;

export class RealtimeGateway {
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  private readonly heartbeat: NodeJS.Timeout;
  private delivery: Promise<void> = Promise.resolve();
  /** Frames sent, frames not sent (client gone or too slow), 1013 closes: read by /metrics. */
  readonly stats = { delivered: 0, dropped: 0, slowClosed: 0 };
  private readonly unsubscribe: () => void;
  private readonly unlisten: () => void;
  private readonly observers = new Set<DeliveryObserver>();
  private nextClientId = 0;

  constructor(
    private readonly config: RealtimeConfig,
    bus: EventBus,
    private readonly history: EventHistory,
    private readonly registry: Registry,
    private readonly identities: IdentityResolver,
    private readonly log: FastifyBaseLogger,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes, perMessageDeflate: false });
    // What this instance commits goes into the history; what the history hands back (this
    // instance's events and, with Redis, every other instance's) is delivered to local sockets.
    this.unsubscribe = bus.subscribe((message) => this.publish(message));
    this.unlisten = history.subscribe({ event: (event) => this.deliver(event), gap: () => this.resyncAll() });
    // Checked four times per ping interval, so a ping goes out at most a quarter late.
    this.heartbeat = setInterval(() => this.beat(), Math.max(10, this.pingEveryMs / 4));
    this.heartbeat.unref();
  }

  get connections(): number {
    return this.clients.size;
  }

  /** The connected clients (the admin API's list). */
  snapshot(): ConnectionInfo[] {
    return [...this.clients].map((c) => ({
      id: c.id,
      connectedAt: new Date(c.connectedAt).toISOString(),
      identity: c.identity.key,
      collections: c.collections === null ? null : [...c.collections],
      excluded: [...c.excluded],
      rooms: [...new Set([...c.rooms, ...c.sessionRooms])],
    }));
  }

  /** Calls `observer` with every event fanned out here and who got it (the dashboard's monitor). */
  observe(observer: DeliveryObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Takes over `upgrade` requests for `/ws` on the HTTP server. */
  attach(server: Server): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      if (url.pathname !== '/ws') return refuse(socket, Errors.resourceNotFound());
      if (this.clients.size >= this.config.maxConnections) {
        return refuse(socket, Errors.tooManyConnections(this.config.maxConnections));
      }
      // Node removed its own error listener before 'upgrade': a reset during the lookup must not crash.
      const onError = () => socket.destroy();
      socket.on('error', onError);
      this.identities.identify(request.headers, url.searchParams.get('token') ?? undefined).then(
        (resolved) => {
          socket.off('error', onError);
          if (socket.destroyed) return;
          this.wss.handleUpgrade(request, socket, head, (ws) => this.connect(ws, toIdentity(resolved), url.searchParams.get('since')));
        },
        (err: Error) => refuse(socket, Errors.unauthorized(err.message)),
      );
    });
  }

  private connect(ws: WebSocket, identity: Identity, since: string | null): void {
    const client: Client = {
      ws, id: ++this.nextClientId, connectedAt: Date.now(), identity, collections: null, excluded: new Set(), rooms: new Set(), sessionRooms: new Set(identity.sessionRooms), lastSeen: Date.now(), pingedAt: 0,
      tokens: this.config.messageRateLimit, tokensAt: Date.now(), pending: null, replayedThrough: null,
    };
    this.clients.add(client);
    ws.on('message', (data, isBinary) => this.onMessage(client, data.toString(), isBinary));
    ws.on('pong', () => { client.lastSeen = Date.now(); });
    ws.on('close', () => this.clients.delete(client));
    ws.on('error', () => this.clients.delete(client));
    // Where the stream stands, so a client that sees no event before it disconnects can still resume.
    if (since === null) this.sendControl(client, { type: 'connected', id: this.history.head() });
    else {
      this.resume(client, since).catch((err: Error) => {
        this.log.error({ err: err.message }, 'real-time resume failed');
        client.pending = null;
        this.clients.delete(client);
        ws.close(1011, 'resume failed');
      });
    }
  }

  /** Replays what a reconnecting client missed, then lets live events through, in order. */
  private async resume(client: Client, since: string): Promise<void> {
    // Live events are held from now on: the history answers asynchronously, and whatever is
    // delivered meanwhile is either in its answer or in `pending` (duplicates are skipped below).
    const pending: StreamEvent[] = [];
    client.pending = pending;
    try {
      const missed = await this.history.since(since).catch((err: Error) => {
        this.log.warn({ err: err.message }, 'real-time history unavailable for a resume: asking the client to resync');
        return undefined;
      });
      if (!missed) this.sendControl(client, { type: 'resync_required' }); // live events still follow
      // Live events up to here were replayed, or were seen elsewhere: a client coming from another
      // instance may be ahead of this one's reader.
      else client.replayedThrough = missed.length > 0 ? missed[missed.length - 1].id : since;
      for (const event of missed ?? []) {
        if (!this.clients.has(client)) return; // gone (or dropped as too slow) mid-replay
        const frame = await this.frameFor(event, client.identity);
        if (frame && this.wants(client, event.message)) this.send(client, frame);
      }
      // Live events that arrived during the replay (and while these are sent), skipping any the
      // replay already covered; only then does the client take live events directly.
      const replayed = new Set((missed ?? []).map((e) => e.id));
      while (pending.length > 0) {
        const event = pending.shift()!;
        if (!this.clients.has(client)) return;
        if (replayed.has(event.id) || (client.replayedThrough !== null && covers(client.replayedThrough, event.id))) continue;
        const frame = await this.frameFor(event, client.identity);
        if (frame && this.wants(client, event.message)) this.send(client, frame);
      }
    } finally {
      client.pending = null;
    }
  }

  // ---- fan-out ----------------------------------------------------------------------------------

  private publish(message: BusMessage): void {
    // Runs inside the request that committed: a failure here must not fail that request.
    try {
      // Every message goes through the history: with Redis that is how the other instances get it,
      // session messages included, in order with the events around them.
      this.history.append(message);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'real-time publish failed');
    }
  }

  /** A message from the history (committed here or, with Redis, on any instance): to local sockets. */
  private deliver(event: StreamEvent): void {
    try {
      const { message } = event;
      if (message.type === 'session_ended') return this.endSessions(new Set(message.sessionIds));
      if (message.type === 'session_rooms') return this.setSessionRooms(message.sessionId, message.rooms);
      if (message.type === 'collection_change' && message.action === 'updated') this.refreshUser(message);
      this.fanOut(event, message);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'real-time delivery failed');
    }
  }

  /** The history may have lost events: every client refetches (`resync_required`), then live events go on. */
  private resyncAll(): void {
    this.delivery = this.delivery.then(() => {
      for (const client of this.clients) this.sendControl(client, { type: 'resync_required' });
    });
  }

  /** Logout or new credentials: those connections become anonymous at once (Deployd §7.2 #6 closed). */
  private endSessions(ended: Set<string>): void {
    for (const client of this.clients) {
      if (!client.identity.sessionId || !ended.has(client.identity.sessionId)) continue;
      client.identity = ANONYMOUS;
      client.sessionRooms.clear();
      this.sendControl(client, { type: 'session_ended' });
    }
  }

  /**
   * A user record changed (a role, a team): the connections logged in as that user read as the new
   * record from this event on, on every instance — not as the user was when they connected.
   */
  private refreshUser(change: CollectionChange): void {
    const me = change.document;
    for (const client of this.clients) {
      const { identity } = client;
      if (identity.userId !== me.id || identity.usersCollection !== change.collection) continue;
      client.identity = { ...identity, caller: { isRoot: false, me } };
    }
  }

  private setSessionRooms(sessionId: string, rooms: string[]): void {
    for (const client of this.clients) {
      if (client.identity.sessionId === sessionId) client.sessionRooms = new Set(rooms);
    }
  }

  private fanOut(event: StreamEvent, message: CollectionChange | CustomEvent): void {
    const recipients = [...this.clients].filter((c) => c.pending !== null || this.wants(c, message));
    // Who each recipient was when the event was committed: an `auth` that lands while the
    // permissions are evaluated must not make the client miss the event.
    const keys = recipients.map((c) => c.identity.key);
    // Evaluate permissions now (concurrently with earlier events), deliver in commit order.
    const frames = this.audienceFrames(event, recipients);
    frames.catch(() => {}); // awaited (and reported) in the delivery chain; never an unhandled rejection
    this.delivery = this.delivery.then(async () => {
      const byIdentity = await frames;
      const audience: Audience = { delivered: {}, refused: [] };
      recipients.forEach((client, i) => {
        if (client.pending) {
          client.pending.push(event);
          return;
        }
        if (!this.clients.has(client) || !this.wants(client, message)) return;
        if (client.replayedThrough !== null) {
          if (covers(client.replayedThrough, event.id)) return; // the resume already sent it
          client.replayedThrough = null;
        }
        const frame = byIdentity.get(keys[i]);
        if (frame) this.send(client, frame);
        if (frame) audience.delivered[keys[i]] = (audience.delivered[keys[i]] ?? 0) + 1;
        else if (!audience.refused.includes(keys[i])) audience.refused.push(keys[i]);
      });
      for (const observer of this.observers) observer(event, audience);
    }).catch((err: Error) => this.log.error({ err: err.message }, 'real-time delivery failed'));
  }

  /** One serialized frame per distinct identity among the recipients (null: not allowed). */
  private async audienceFrames(event: StreamEvent, recipients: Client[]): Promise<Map<string, string | null>> {
    const identities = new Map<string, Identity>();
    for (const client of recipients) identities.set(client.identity.key, client.identity);
    const frames = new Map<string, string | null>();
    const message = event.message;
    if (message.type !== 'collection_change') {
      const frame = message.type === 'custom_event' ? JSON.stringify({ ...message, userIds: undefined, id: event.id }) : null;
      for (const key of identities.keys()) frames.set(key, frame);
      return frames;
    }
    const collection = this.registry.get(message.collection)?.collection;
    const byDocument = new Map<string, string>(); // serialize once per distinct visible document
    await Promise.all([...identities.values()].map(async (identity) => {
      let document: JsonObject | null;
      try {
        document = collection ? await collection.readableBy(identity.caller, message.document) : null;
      } catch {
        document = null; // a failing Get hook fails closed
      }
      if (!document) return frames.set(identity.key, null);
      const key = JSON.stringify(document);
      let frame = byDocument.get(key);
      if (!frame) {
        frame = JSON.stringify({ ...event.message, document, id: event.id });
        byDocument.set(key, frame);
      }
      frames.set(identity.key, frame);
    }));
    return frames;
  }

  private async frameFor(event: StreamEvent, identity: Identity): Promise<string | null> {
    const frames = await this.audienceFrames(event, [{ identity } as Client]);
    return frames.get(identity.key) ?? null;
  }

  /** Whether the client's subscriptions and rooms include this message (permissions aside). */
  private wants(client: Client, message: BusMessage): boolean {
    if (message.type === 'collection_change') {
      if (client.excluded.has(message.collection)) return false;
      return client.collections === null || client.collections.has(message.collection);
    }
    if (message.type !== 'custom_event') return false;
    if (message.room !== undefined) return client.rooms.has(message.room) || client.sessionRooms.has(message.room);
    if (message.userIds) return client.identity.userId !== undefined && message.userIds.includes(client.identity.userId);
    return true;
  }

  /** Sends unless the client stopped reading: past the buffer cap it is closed with 1013 (it may resume). */
  private send(client: Client, frame: string): void {
    const { ws } = client;
    if (ws.readyState !== ws.OPEN) return void this.stats.dropped++;
    // What is still waiting for this client, plus this frame, over the cap. A frame larger than the
    // cap still goes to a client that has read everything (the cap is about readers falling behind).
    const waiting = ws.bufferedAmount;
    if (waiting > 0 && waiting + Buffer.byteLength(frame) > this.config.maxBufferedBytes) {
      this.clients.delete(client);
      this.stats.slowClosed++; this.stats.dropped++;
      ws.close(1013, 'too slow: reconnect with ?since= to resume');
      // Enough time for a reader that is only slow to get the 1013; the bytes it holds stay capped.
      setTimeout(() => ws.terminate(), 5000).unref();
      return;
    }
    ws.send(frame);
    this.stats.delivered++;
  }

  private sendControl(client: Client, message: Record<string, unknown>): void {
    this.send(client, JSON.stringify(message));
  }

  // ---- client messages --------------------------------------------------------------------------

  private onMessage(client: Client, text: string, isBinary: boolean): void {
    if (!this.clients.has(client)) return; // being closed (rate limit, too slow): ignore what is still arriving
    client.lastSeen = Date.now();
    if (!this.allow(client)) {
      this.clients.delete(client);
      client.ws.close(1008, 'message rate limit exceeded');
      return;
    }
    let message: Record<string, unknown>;
    try {
      if (isBinary) throw new Error('binary');
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      message = parsed as Record<string, unknown>;
    } catch {
      return this.error(client, 'messages must be JSON objects like {"type":"ping"}');
    }
    switch (message.type) {
      case 'ping':
        return this.sendControl(client, { type: 'pong' });
      case 'subscribe':
      case 'unsubscribe': {
        const names = message.collections;
        if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string' && n.length > 0 && n.length <= 200)) {
          return this.error(client, `${message.type} needs "collections": a non-empty list of collection names`);
        }
        const grows = message.type === 'subscribe' || client.collections === null;
        const listed = (client.collections?.size ?? 0) + client.excluded.size;
        if (grows && listed + names.length > MAX_LISTED_COLLECTIONS) {
          return this.error(client, `a connection can list at most ${MAX_LISTED_COLLECTIONS} collections`);
        }
        if (message.type === 'subscribe') {
          if (client.collections === null) client.collections = new Set();
          for (const name of names) {
            client.collections.add(name);
            client.excluded.delete(name);
          }
        } else {
          for (const name of names) {
            if (client.collections === null) client.excluded.add(name);
            else client.collections.delete(name);
          }
        }
        return this.sendControl(client, { type: `${message.type}d`, collections: names });
      }
      case 'join':
      case 'leave': {
        const room = message.room;
        if (typeof room !== 'string' || room.length === 0 || room.length > 200) return this.error(client, `${message.type} needs "room": a room name`);
        if (message.type === 'join') {
          if (!isJoinable(this.config, room)) return this.error(client, `room "${room}" cannot be joined (see "rooms" in .deployd/realtime.json)`);
          if (client.rooms.size >= MAX_ROOMS && !client.rooms.has(room)) return this.error(client, `a connection can be in at most ${MAX_ROOMS} rooms`);
          client.rooms.add(room);
          return this.sendControl(client, { type: 'joined', room });
        }
        client.rooms.delete(room);
        return this.sendControl(client, { type: 'left', room });
      }
      case 'auth': {
        const token = message.token;
        const answer = (identity: Identity) => {
          client.identity = identity;
          client.sessionRooms = new Set(identity.sessionRooms);
          this.sendControl(client, { type: 'authenticated', isRoot: identity.caller.isRoot, userId: identity.userId ?? null });
        };
        // `null`: log out of this connection (dpd.js after `users.logout()`).
        if (token === null) return answer(ANONYMOUS);
        if (typeof token !== 'string' || token.length === 0 || token.length > 500) return this.error(client, 'auth needs "token": a session token, the master key, or null');
        this.identities.fromToken(token).then(
          (resolved) => {
            if (!this.clients.has(client)) return;
            if (!resolved) {
              // Fail closed: whoever the connection was, a bad token leaves it anonymous.
              client.identity = ANONYMOUS;
              client.sessionRooms = new Set();
              return this.error(client, 'invalid token: the connection is now anonymous');
            }
            answer(toIdentity(resolved));
          },
          () => this.error(client, 'could not check the token; try again'),
        );
        return;
      }
      default:
        return this.error(client, typeof message.type === 'string' ? `unknown message type "${message.type.slice(0, 50)}"` : 'messages need a "type"');
    }
  }

  private error(client: Client, message: string): void {
    this.sendControl(client, { type: 'error', message });
  }

  /** Token bucket: `messageRateLimit` messages per second, with as much burst. */
  private allow(client: Client): boolean {
    const now = Date.now();
    const rate = this.config.messageRateLimit;
    client.tokens = Math.min(rate, client.tokens + ((now - client.tokensAt) / 1000) * rate);
    client.tokensAt = now;
    if (client.tokens < 1) return false;
    client.tokens -= 1;
    return true;
  }

  /** How often a silent peer is pinged: at least twice per idle timeout, so a live peer always has time to answer. */
  private get pingEveryMs(): number {
    return Math.min(this.config.pingIntervalMs, this.config.idleTimeoutMs / 2);
  }

  /** Pings everyone; closes peers silent for longer than the idle timeout. */
  private beat(): void {
    const now = Date.now();
    for (const client of this.clients) {
      if (now - client.lastSeen > this.config.idleTimeoutMs) {
        this.clients.delete(client);
        client.ws.terminate();
        continue;
      }
      if (now - client.lastSeen >= this.pingEveryMs && now - client.pingedAt >= this.pingEveryMs) {
        client.pingedAt = now;
        client.ws.ping();
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.unsubscribe();
    this.unlisten();
    for (const client of this.clients) client.ws.close(1001, 'server shutting down');
    this.clients.clear();
    // Peers that do not answer the close (or stopped reading) must not hold the shutdown for ws's 30 s.
    const stragglers = setTimeout(() => {
      for (const ws of this.wss.clients) ws.terminate();
    }, 1000);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    clearTimeout(stragglers);
  }
}

/** Whether `through` is at or after `id` in the same stream (ids of different epochs never cover). */
function covers(through: string, id: string): boolean {
  const a = parseStreamId(through);
  const b = parseStreamId(id);
  return a !== undefined && b !== undefined && a.epoch === b.epoch && b.seq <= a.seq;
}

/** Answers an upgrade we will not accept with a JSON error, then closes the socket. */
function refuse(socket: Duplex, error: DeploydError): void {
  const status = error.statusCode;
  const body = JSON.stringify(error.toJSON());
  const reason = { 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' }[status] ?? 'Error';
  // Node removed its own error listener before 'upgrade': a peer that resets now must not crash the process.
  socket.on('error', () => socket.destroy());
  const timer = setTimeout(() => socket.destroy(), 5000); // a peer that never reads the answer
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

