/**
 * One WebSocket client as the gateway keeps it: who it is, what it listens to, and the transport's
 * bookkeeping (heartbeat, rate limit, resume).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { WebSocket } from 'ws';
import type { LoggedEvent } from '../events/event-log.js';
import type { EventMessage } from '../events/messages.js';
import type { Caller } from '../hooks/protocol.js';

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

/** A caller as HTTP requests resolve it (src/auth/authenticator.ts's RequestIdentity). */
export interface ResolvedCaller {
  caller: Caller;
  session?: { id: string; uid: string; collection: string; rooms: string[] };
}

/** Resolves callers the way HTTP requests are (src/auth/authenticator.ts). */
export interface IdentityResolver {
  /** From the upgrade request's headers and `?token=`; rejects (401) for a wrong master key. */
  identify(headers: IncomingHttpHeaders, token?: string): Promise<ResolvedCaller>;
  /** From an `{"type":"auth","token"}` message: the master key or a session token; undefined when neither. */
  fromToken(token: string): Promise<ResolvedCaller | undefined>;
}

export const ANONYMOUS: Identity = { key: 'anonymous', caller: { isRoot: false, me: null } };

export function toIdentity(resolved: ResolvedCaller): Identity {
  if (resolved.caller.isRoot) return { key: 'root', caller: resolved.caller };
  if (!resolved.session) return ANONYMOUS;
  const { id, uid, rooms, collection } = resolved.session;
  // Connections of one user see the same documents: one Get evaluation per user, not per socket.
  return { key: `user:${uid}`, caller: resolved.caller, sessionId: id, userId: uid, usersCollection: collection, sessionRooms: rooms };
}

export interface Connection {
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
  /** Live events held back while a resume replays the log. */
  pending: LoggedEvent[] | null;
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

export function describe(connection: Connection): ConnectionInfo {
  return {
    id: connection.id,
    connectedAt: new Date(connection.connectedAt).toISOString(),
    identity: connection.identity.key,
    collections: connection.collections === null ? null : [...connection.collections],
    excluded: [...connection.excluded],
    rooms: [...new Set([...connection.rooms, ...connection.sessionRooms])],
  };
}

/** Whether the connection's subscriptions and rooms include this message (permissions aside). */
export function wants(connection: Connection, message: EventMessage): boolean {
  if (message.type === 'collection_change') {
    if (connection.excluded.has(message.collection)) return false;
    return connection.collections === null || connection.collections.has(message.collection);
  }
  if (message.type !== 'custom_event') return false;
  if (message.room !== undefined) return connection.rooms.has(message.room) || connection.sessionRooms.has(message.room);
  if (message.userIds) return connection.identity.userId !== undefined && message.userIds.includes(connection.identity.userId);
  return true;
}
