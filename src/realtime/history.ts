/**
 * The stream of real-time events a client can resume from (`/ws?since=<id>`). Ids are
 * `<epoch>:<seq>`: the epoch changes whenever the stream starts over (a server start for the
 * in-process history; a Redis that lost its data for the shared one), so an id from another run
 * (or one older than what is kept) asks the client to refetch instead of silently missing events.
 *
 * The gateway appends what this instance committed and delivers what the history hands its
 * listeners, in history order: for the in-process history that is the same event, at once; for the
 * Redis history (./redis-history.ts) it is every instance's events, in the shared stream's order.
 */
import { randomBytes } from 'node:crypto';
import type { BusMessage } from '../bus/event-bus.js';
import { jsonSize } from '../util/json-size.js';

export interface StreamEvent {
  id: string;
  message: BusMessage;
}

export interface HistoryListener {
  /** The next event, in history order (each exactly once). */
  event(event: StreamEvent): void;
  /** Events may have been lost (the shared stream lost data, or fell behind): clients must refetch. */
  gap(): void;
}

/** in-process: no REDIS_URL; ok / degraded: the shared stream is reachable, or not right now. */
export type BusStatus = 'in-process' | 'ok' | 'degraded';

export interface EventHistory {
  /** Records a message committed on this instance; listeners get it once it is in the history. Never throws. */
  append(message: BusMessage): void;
  /**
   * Events after `id` up to `head()`, oldest first; `undefined` when `id` is unknown, from another
   * epoch, or older than what is kept. Rejects when the history cannot be read right now.
   */
  since(id: string): Promise<StreamEvent[] | undefined>;
  /** The position of the last event handed to listeners (where a client that saw nothing yet resumes). */
  head(): string;
  subscribe(listener: HistoryListener): () => void;
  status(): BusStatus;
  /** How much is kept for resuming (for /metrics); zeros when it cannot be read right now. */
  stats(): Promise<HistoryStats>;
  close(): Promise<void>;
}

export interface HistoryStats {
  events: number;
  /** Approximate: the serialized messages (in-process), or Redis's MEMORY USAGE of the stream. */
  bytes: number;
}

/** `<epoch>:<seq>` with a base-36 epoch and a decimal seq; undefined for anything else. */
export function parseStreamId(id: string): { epoch: string; seq: number } | undefined {
  const match = /^([0-9a-z]{1,40}):(0|[1-9][0-9]{0,15})$/.exec(id);
  return match ? { epoch: match[1], seq: Number(match[2]) } : undefined;
}

/** An event's size as the history counts it: its JSON, about what a client frame carries. */
export function frameBytes(message: BusMessage): number {
  return jsonSize(message);
}

/** Start time plus randomness: two runs (or instances) started in the same millisecond differ. */
export function newEpoch(): string {
  return Date.now().toString(36) + randomBytes(3).toString('hex');
}

export class MemoryHistory implements EventHistory {
  private readonly epoch = newEpoch();
  private seq = 0;
  private readonly events: Array<StreamEvent & { at: number; seq: number; bytes: number }> = [];
  private readonly listeners = new Set<HistoryListener>();
  /** The kept events' size, each counted as its JSON. */
  private bytes = 0;

  /** Keeps at most `size` events, none older than `maxAgeMs`, at most `maxBytes` in all. */
  constructor(private readonly size: number, private readonly maxAgeMs: number, private readonly maxBytes = Infinity) {}

  append(message: BusMessage): void {
    const seq = ++this.seq;
    const event = { id: `${this.epoch}:${seq}`, message, at: Date.now(), seq, bytes: 0 };
    if (this.size > 0 && this.maxBytes > 0) {
      event.bytes = frameBytes(message);
      this.events.push(event);
      this.bytes += event.bytes;
      this.prune(event.at);
    }
    for (const listener of this.listeners) listener.event({ id: event.id, message });
  }

  head(): string {
    return `${this.epoch}:${this.seq}`;
  }

  async since(id: string): Promise<StreamEvent[] | undefined> {
    const parsed = parseStreamId(id);
    if (!parsed || parsed.epoch !== this.epoch) return undefined;
    const { seq } = parsed;
    if (seq > this.seq) return undefined;
    this.prune(Date.now());
    const oldest = this.events.length > 0 ? this.events[0].seq : this.seq + 1;
    if (seq < oldest - 1) return undefined; // some events after `id` are gone
    return this.events.filter((e) => e.seq > seq).map(({ id: eventId, message }) => ({ id: eventId, message }));
  }

  subscribe(listener: HistoryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): BusStatus {
    return 'in-process';
  }

  async stats(): Promise<HistoryStats> {
    this.prune(Date.now());
    let bytes = 0;
    for (const event of this.events) bytes += JSON.stringify(event.message).length + event.id.length;
    return { events: this.events.length, bytes };
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private prune(now: number): void {
    let drop = Math.max(0, this.events.length - this.size);
    let bytes = this.bytes;
    for (let i = 0; i < drop; i++) bytes -= this.events[i].bytes;
    while (drop < this.events.length && (now - this.events[drop].at > this.maxAgeMs || bytes > this.maxBytes)) bytes -= this.events[drop++].bytes;
    if (drop > 0) this.events.splice(0, drop);
    this.bytes = bytes;
  }
}
