/**
 * What goes into the event log once a request succeeds: committed changes, hook `emit()`s, and
 * control messages about login sessions. Every instance reads the same messages in the same order
 * (./event-log.ts); the real-time gateway turns them into client frames.
 */
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

export type EventMessage = CollectionChange | CustomEvent | SessionEnded | SessionRooms;
