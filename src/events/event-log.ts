/**
 * The event log: one ordered stream of everything committed (./messages.ts). Publishing appends
 * to it; subscribers (the real-time gateway, metrics) read every event from it in log order, each
 * exactly once; a client that reconnects resumes from it (`/ws?since=<id>`).
 *
 * Two implementations behave the same (test/event-log.test.ts runs one conformance suite on both):
 *  - ./local-log.ts: in this process, when there is no REDIS_URL;
 *  - ./redis-log.ts: one Redis Stream shared by every instance, so each reads every instance's
 *    events in the same order and an id from one instance resumes on any other.
 *
 * Ids are `<epoch>:<seq>`: the epoch changes whenever the log starts over (a server start for the
 * local log; a Redis that lost its data for the shared one), so an id from another run (or one
 * older than what is kept) asks the client to refetch instead of silently missing events.
 */
import { randomBytes } from 'node:crypto';
import { messageJson } from './message-json.js';
import type { EventMessage } from './messages.js';

export interface LoggedEvent {
  id: string;
  message: EventMessage;
}

export interface LogListener {
  /** The next event, in log order (each exactly once). */
  event(event: LoggedEvent): void;
  /** Events may have been lost (the shared stream lost data, or fell behind): clients must refetch. */
  gap(): void;
}

/** in-process: no REDIS_URL; ok / degraded: the shared stream is reachable, or not right now. */
export type LogStatus = 'in-process' | 'ok' | 'degraded';

export interface LogStats {
  events: number;
  /** Approximate: the serialized messages (in-process), or Redis's MEMORY USAGE of the stream. */
  bytes: number;
}

/** Where committed messages go: what the collections hold. */
export interface EventPublisher {
  /** Appends a message committed on this instance. Never throws: a request that committed stays committed. */
  publish(message: EventMessage): void;
}

export interface EventLog extends EventPublisher {
  /**
   * Events after `id` up to `head()`, oldest first; `undefined` when `id` is unknown, from another
   * epoch, or older than what is kept. Rejects when the log cannot be read right now.
   */
  since(id: string): Promise<LoggedEvent[] | undefined>;
  /** The position of the last event handed to listeners (where a client that saw nothing yet resumes). */
  head(): string;
  /** Listeners must not throw: a failure is theirs to report. */
  subscribe(listener: LogListener): () => void;
  status(): LogStatus;
  /** How much is kept for resuming (for /metrics); zeros when it cannot be read right now. */
  stats(): Promise<LogStats>;
  close(): Promise<void>;
}

/** `<epoch>:<seq>` with a base-36 epoch and a decimal seq; undefined for anything else. */
export function parseEventId(id: string): { epoch: string; seq: number } | undefined {
  const match = /^([0-9a-z]{1,40}):(0|[1-9][0-9]{0,15})$/.exec(id);
  return match ? { epoch: match[1], seq: Number(match[2]) } : undefined;
}

/** Whether `through` is at or after `id` in the same log (ids of different epochs never cover). */
export function covers(through: string, id: string): boolean {
  const a = parseEventId(through);
  const b = parseEventId(id);
  return a !== undefined && b !== undefined && a.epoch === b.epoch && b.seq <= a.seq;
}

/** An event's size as the log counts it: its JSON (made once, shared with the answer and frames). */
export function frameBytes(message: EventMessage): number {
  return Buffer.byteLength(messageJson(message));
}

/** Start time plus randomness: two runs (or instances) started in the same millisecond differ. */
export function newEpoch(): string {
  return Date.now().toString(36) + randomBytes(3).toString('hex');
}
