/**
 * The `/ws` message protocol (docs: shared seed-websocket-realtime contract): client frames parsed
 * and checked into requests, and the server's frames built, each as the JSON text sent.
 *
 *   client: ping · subscribe/unsubscribe {collections} · join/leave {room} · auth {token|null}
 *   server: {"type":"collection_change","collection","action","document","timestamp","userId","id"}
 *           {"type":"custom_event","event","data","timestamp","room"?,"id"}
 *           connected {id} · resync_required · session_ended · pong · subscribed/unsubscribed
 *           {collections} · joined/left {room} · authenticated {isRoot,userId} · error {message}
 */
import type { CollectionChange, CustomEvent } from '../events/messages.js';
import type { JsonObject } from '../hooks/protocol.js';

export type ClientRequest =
  | { type: 'ping' }
  | { type: 'subscribe' | 'unsubscribe'; collections: string[] }
  | { type: 'join' | 'leave'; room: string }
  /** null: log out of this connection (dpd.js after `users.logout()`). */
  | { type: 'auth'; token: string | null };

/** A client frame as a request, or the error message to answer it with. */
export function parseClientFrame(text: string, isBinary: boolean): ClientRequest | { error: string } {
  let message: Record<string, unknown>;
  try {
    if (isBinary) throw new Error('binary');
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    message = parsed as Record<string, unknown>;
  } catch {
    return { error: 'messages must be JSON objects like {"type":"ping"}' };
  }
  switch (message.type) {
    case 'ping':
      return { type: 'ping' };
    case 'subscribe':
    case 'unsubscribe': {
      const names = message.collections;
      if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string' && n.length > 0 && n.length <= 200)) {
        return { error: `${message.type} needs "collections": a non-empty list of collection names` };
      }
      return { type: message.type, collections: names as string[] };
    }
    case 'join':
    case 'leave': {
      const room = message.room;
      if (typeof room !== 'string' || room.length === 0 || room.length > 200) return { error: `${message.type} needs "room": a room name` };
      return { type: message.type, room };
    }
    case 'auth': {
      const token = message.token;
      if (token !== null && (typeof token !== 'string' || token.length === 0 || token.length > 500)) {
        return { error: 'auth needs "token": a session token, the master key, or null' };
      }
      return { type: 'auth', token };
    }
    default:
      return { error: typeof message.type === 'string' ? `unknown message type "${message.type.slice(0, 50)}"` : 'messages need a "type"' };
  }
}

/** The server's frames, serialized. */
export const serverFrames = {
  /** Where the log stands, so a client that sees no event before it disconnects can still resume. */
  connected: (id: string) => JSON.stringify({ type: 'connected', id }),
  resyncRequired: () => JSON.stringify({ type: 'resync_required' }),
  sessionEnded: () => JSON.stringify({ type: 'session_ended' }),
  pong: () => JSON.stringify({ type: 'pong' }),
  subscription: (type: 'subscribe' | 'unsubscribe', collections: string[]) => JSON.stringify({ type: `${type}d`, collections }),
  joined: (room: string) => JSON.stringify({ type: 'joined', room }),
  left: (room: string) => JSON.stringify({ type: 'left', room }),
  authenticated: (isRoot: boolean, userId: string | null) => JSON.stringify({ type: 'authenticated', isRoot, userId }),
  error: (message: string) => JSON.stringify({ type: 'error', message }),
  /** A change as one reader may see it: `document` is that reader's view. */
  change: (change: CollectionChange, document: JsonObject, id: string) => JSON.stringify({ ...change, document, id }),
  /** Whom a custom event targets stays on the server. */
  custom: (event: CustomEvent, id: string) => JSON.stringify({ ...event, userIds: undefined, id }),
};
