/**
 * Where committed changes and hook `emit()`s go once a request succeeds. In-process for now; the
 * WebSocket gateway subscribes to it, and a Redis-backed bus will carry it between instances.
 */
import { EventEmitter } from 'node:events';
import type { Json, JsonObject } from '../hooks/protocol.js';

export interface CollectionChange {
  type: 'collection_change';
  collection: string;
  action: 'created' | 'updated' | 'deleted';
  document: JsonObject;
  timestamp: string;
  /** The caller's user id (`"root"` for the master key), null when anonymous. */
  userId: string | null;
}

export interface CustomEvent {
  type: 'custom_event';
  event: string;
  data: Json;
  timestamp: string;
  /** Only members of this room. */
  room?: string;
  /** Only these users' connections (resolved from `emit(dpd.users, query, …)` when it was emitted). */
  userIds?: string[];
}

/**
 * Control messages about login sessions: not delivered to clients as such, but they change what
 * the connections holding those sessions receive, on every instance.
 */
export interface SessionEnded {
  type: 'session_ended';
  /** Hashed session ids (never the tokens). */
  sessionIds: string[];
}

export interface SessionRooms {
  type: 'session_rooms';
  sessionId: string;
  /** The session's rooms after the change. */
  rooms: string[];
}

export type BusMessage = CollectionChange | CustomEvent | SessionEnded | SessionRooms;

export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(message: BusMessage): void {
    this.emitter.emit('message', message);
  }

  subscribe(listener: (message: BusMessage) => void): () => void {
    this.emitter.on('message', listener);
    return () => this.emitter.off('message', listener);
  }
}
