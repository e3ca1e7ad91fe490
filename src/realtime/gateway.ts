/**
 * The WebSocket at `/ws`: every event of the log (src/events/) reaches the connected clients
 * allowed to see it, in the seed page's message formats. The gateway only subscribes to the log
 * and asks the injected ReadAccess who may read; it is three parts wired together here:
 *
 *   ./transport.ts   upgrade, heartbeat, rate limit, backpressure
 *   ./protocol.ts    client frames parsed and checked, server frames built
 *   ./delivery.ts    fan-out to who may read, session control messages, resume (`?since=`)
 *
 * and this file holds each connection's conversation: what its requests change.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Server } from 'node:http';
import type { WebSocket } from 'ws';
import type { EventLog } from '../events/event-log.js';
import { isJoinable, type RealtimeConfig } from './config.js';
import { ANONYMOUS, describe, toIdentity, type Connection, type ConnectionInfo, type Identity, type IdentityResolver } from './connection.js';
import { Delivery, type DeliveryObserver } from './delivery.js';
import { parseClientFrame, serverFrames, type ClientRequest } from './protocol.js';
import type { ReadAccess } from './read-access.js';
import { Transport } from './transport.js';

/** Per connection: subscribed plus excluded collection names, and joined rooms. */
const MAX_LISTED_COLLECTIONS = 1000;
const MAX_ROOMS = 100;

export class RealtimeGateway {
  private readonly transport: Transport;
  private readonly delivery: Delivery;
  private readonly unsubscribe: () => void;
  private nextConnectionId = 0;

  constructor(
    private readonly config: RealtimeConfig,
    private readonly events: EventLog,
    readAccess: ReadAccess,
    private readonly identities: IdentityResolver,
    private readonly log: FastifyBaseLogger,
  ) {
    this.transport = new Transport(config);
    this.delivery = new Delivery(this.transport, events, readAccess, log);
    // Every instance's events (this one's included) come back from the log, in log order.
    this.unsubscribe = events.subscribe(this.delivery);
  }

  /** Frames sent, frames not sent (client gone or too slow), 1013 closes: read by /metrics. */
  get stats(): { delivered: number; dropped: number; slowClosed: number } {
    return this.transport.stats;
  }

  get connections(): number {
    return this.transport.connections.size;
  }

  /** The connected clients (the admin API's list). */
  snapshot(): ConnectionInfo[] {
    return [...this.transport.connections].map(describe);
  }

  /** Calls `observer` with every event fanned out here and who got it (the dashboard's monitor). */
  observe(observer: DeliveryObserver): () => void {
    return this.delivery.observe(observer);
  }

  /** Takes over `upgrade` requests for `/ws` on the HTTP server. */
  attach(server: Server): void {
    this.transport.attach(
      server,
      (request, url) => this.identities.identify(request.headers, url.searchParams.get('token') ?? undefined),
      (ws, resolved, url) => this.connect(ws, toIdentity(resolved), url.searchParams.get('since')),
    );
  }

  async close(): Promise<void> {
    this.unsubscribe();
    await this.transport.close();
  }

  private connect(ws: WebSocket, identity: Identity, since: string | null): void {
    const connection: Connection = {
      ws, id: ++this.nextConnectionId, connectedAt: Date.now(), identity, collections: null, excluded: new Set(), rooms: new Set(), sessionRooms: new Set(identity.sessionRooms), lastSeen: Date.now(), pingedAt: 0,
      tokens: this.config.messageRateLimit, tokensAt: Date.now(), pending: null, replayedThrough: null,
    };
    this.transport.track(connection);
    ws.on('message', (data, isBinary) => this.onFrame(connection, data.toString(), isBinary));
    if (since === null) this.transport.send(connection, serverFrames.connected(this.events.head()));
    else {
      this.delivery.resume(connection, since).catch((err: Error) => {
        this.log.error({ err: err.message }, 'real-time resume failed');
        connection.pending = null;
        this.transport.drop(connection, 1011, 'resume failed');
      });
    }
  }

  private onFrame(connection: Connection, text: string, isBinary: boolean): void {
    if (!this.transport.isOpen(connection)) return; // being closed (rate limit, too slow): ignore what is still arriving
    connection.lastSeen = Date.now();
    if (!this.transport.allow(connection)) return this.transport.drop(connection, 1008, 'message rate limit exceeded');
    const request = parseClientFrame(text, isBinary);
    if ('error' in request) return this.error(connection, request.error);
    this.handle(connection, request);
  }

  private handle(connection: Connection, request: ClientRequest): void {
    const reply = (frame: string) => this.transport.send(connection, frame);
    switch (request.type) {
      case 'ping':
        return reply(serverFrames.pong());
      case 'subscribe':
      case 'unsubscribe': {
        const names = request.collections;
        const grows = request.type === 'subscribe' || connection.collections === null;
        const listed = (connection.collections?.size ?? 0) + connection.excluded.size;
        if (grows && listed + names.length > MAX_LISTED_COLLECTIONS) {
          return this.error(connection, `a connection can list at most ${MAX_LISTED_COLLECTIONS} collections`);
        }
        if (request.type === 'subscribe') {
          if (connection.collections === null) connection.collections = new Set();
          for (const name of names) {
            connection.collections.add(name);
            connection.excluded.delete(name);
          }
        } else {
          for (const name of names) {
            if (connection.collections === null) connection.excluded.add(name);
            else connection.collections.delete(name);
          }
        }
        return reply(serverFrames.subscription(request.type, names));
      }
      case 'join': {
        const { room } = request;
        if (!isJoinable(this.config, room)) return this.error(connection, `room "${room}" cannot be joined (see "rooms" in .deployd/realtime.json)`);
        if (connection.rooms.size >= MAX_ROOMS && !connection.rooms.has(room)) return this.error(connection, `a connection can be in at most ${MAX_ROOMS} rooms`);
        connection.rooms.add(room);
        return reply(serverFrames.joined(room));
      }
      case 'leave':
        connection.rooms.delete(request.room);
        return reply(serverFrames.left(request.room));
      case 'auth':
        return this.authenticate(connection, request.token);
    }
  }

  /** `auth`: the connection becomes who the token says, or anonymous (null, or a bad token: fail closed). */
  private authenticate(connection: Connection, token: string | null): void {
    const become = (identity: Identity) => {
      connection.identity = identity;
      connection.sessionRooms = new Set(identity.sessionRooms);
      this.transport.send(connection, serverFrames.authenticated(identity.caller.isRoot, identity.userId ?? null));
    };
    if (token === null) return become(ANONYMOUS);
    this.identities.fromToken(token).then(
      (resolved) => {
        if (!this.transport.isOpen(connection)) return;
        if (!resolved) {
          // Fail closed: whoever the connection was, a bad token leaves it anonymous.
          connection.identity = ANONYMOUS;
          connection.sessionRooms = new Set();
          return this.error(connection, 'invalid token: the connection is now anonymous');
        }
        become(toIdentity(resolved));
      },
      () => this.error(connection, 'could not check the token; try again'),
    );
  }

  private error(connection: Connection, message: string): void {
    this.transport.send(connection, serverFrames.error(message));
  }
}
