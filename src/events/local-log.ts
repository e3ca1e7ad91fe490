/**
 * The event log of a single instance (no REDIS_URL): kept in memory, bounded by count, age and
 * bytes (each event counted as its JSON), whichever is reached first. A published message goes
 * to the listeners at once, in the same call.
 */
import type { FastifyBaseLogger } from 'fastify';
import { frameBytes, newEpoch, parseEventId, type EventLog, type LoggedEvent, type LogListener, type LogStats, type LogStatus } from './event-log.js';
import type { EventMessage } from './messages.js';

export interface LocalLogOptions {
  /** Events kept at most (0: none; listeners still get every event). */
  size: number;
  /** Events older than this are not replayed. */
  maxAgeMs: number;
  /** Message bytes kept at most; default: no byte bound. */
  maxBytes?: number;
  /** Where a failed publish is reported (it never fails the publisher). */
  log?: Pick<FastifyBaseLogger, 'error'>;
}

type Kept = LoggedEvent & { at: number; seq: number; bytes: number };

export class LocalEventLog implements EventLog {
  private readonly epoch = newEpoch();
  private seq = 0;
  /** Kept events are `events[first…]`: dropping the oldest moves `first`, not every element. */
  private readonly events: Array<Kept | null> = [];
  private first = 0;
  private readonly listeners = new Set<LogListener>();
  /** The kept events' size, each counted as its JSON. */
  private bytes = 0;
  private readonly size: number;
  private readonly maxAgeMs: number;
  private readonly maxBytes: number;

  constructor(private readonly options: LocalLogOptions) {
    this.size = options.size;
    this.maxAgeMs = options.maxAgeMs;
    this.maxBytes = options.maxBytes ?? Infinity;
  }

  publish(message: EventMessage): void {
    try {
      const seq = ++this.seq;
      const event = { id: `${this.epoch}:${seq}`, message, at: Date.now(), seq, bytes: 0 };
      if (this.size > 0 && this.maxBytes > 0) {
        event.bytes = frameBytes(message);
        this.events.push(event);
        this.bytes += event.bytes;
        this.prune(event.at);
      }
      for (const listener of this.listeners) listener.event({ id: event.id, message });
    } catch (err) {
      // Runs inside the request that committed: a failure here must not fail that request.
      this.options.log?.error({ err: (err as Error).message }, 'real-time publish failed');
    }
  }

  head(): string {
    return `${this.epoch}:${this.seq}`;
  }

  async since(id: string): Promise<LoggedEvent[] | undefined> {
    const parsed = parseEventId(id);
    if (!parsed || parsed.epoch !== this.epoch) return undefined;
    const { seq } = parsed;
    if (seq > this.seq) return undefined;
    this.prune(Date.now());
    const oldest = this.events.length > this.first ? this.events[this.first]!.seq : this.seq + 1;
    if (seq < oldest - 1) return undefined; // some events after `id` are gone
    const out: LoggedEvent[] = [];
    for (let i = this.first; i < this.events.length; i++) {
      const event = this.events[i]!;
      if (event.seq > seq) out.push({ id: event.id, message: event.message });
    }
    return out;
  }

  subscribe(listener: LogListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): LogStatus {
    return 'in-process';
  }

  async stats(): Promise<LogStats> {
    this.prune(Date.now());
    let bytes = 0;
    for (let i = this.first; i < this.events.length; i++) {
      const event = this.events[i]!;
      bytes += event.bytes + event.id.length;
    }
    return { events: this.events.length - this.first, bytes };
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private prune(now: number): void {
    const { events } = this;
    let first = this.first;
    let bytes = this.bytes;
    // Dropped entries are cleared at once (their memory goes now, not at the next compaction).
    while (first < events.length) {
      const oldest = events[first]!;
      const over = events.length - first > this.size || now - oldest.at > this.maxAgeMs || bytes > this.maxBytes;
      if (!over) break;
      bytes -= oldest.bytes;
      events[first++] = null;
    }
    this.bytes = bytes;
    // Compacted once the dropped part is the larger half: amortised O(1) per event.
    if (first > 1024 && first * 2 > events.length) {
      events.splice(0, first);
      first = 0;
    }
    this.first = first;
  }
}
