/**
 * The stream of real-time events a client can resume from (`/ws?since=<id>`). Ids are
 * `<epoch>:<seq>`: the epoch changes with every server start, so an id from another run (or one
 * older than what is kept) asks the client to refetch instead of silently missing events.
 * Behind an interface so a Redis-backed history can share one stream across instances.
 */
import { randomBytes } from 'node:crypto';
import type { BusMessage } from '../bus/event-bus.js';

export interface StreamEvent {
  id: string;
  message: BusMessage;
}

export interface EventHistory {
  append(message: BusMessage): StreamEvent;
  /** Events after `id`, oldest first; `undefined` when `id` is unknown or older than what is kept. */
  since(id: string): StreamEvent[] | undefined;
  /** The position of the latest event (what a client that saw nothing yet can resume from). */
  head(): string;
}

export class MemoryHistory implements EventHistory {
  /** Start time plus randomness: two runs (or instances) started in the same millisecond differ. */
  private readonly epoch = Date.now().toString(36) + randomBytes(3).toString('hex');
  private seq = 0;
  private readonly events: Array<StreamEvent & { at: number; seq: number }> = [];

  constructor(private readonly size: number, private readonly maxAgeMs: number) {}

  append(message: BusMessage): StreamEvent {
    const seq = ++this.seq;
    const event = { id: `${this.epoch}:${seq}`, message, at: Date.now(), seq };
    if (this.size > 0) {
      this.events.push(event);
      this.prune(event.at);
    }
    return event;
  }

  head(): string {
    return `${this.epoch}:${this.seq}`;
  }

  since(id: string): StreamEvent[] | undefined {
    const match = /^([0-9a-z]+):(0|[1-9][0-9]{0,15})$/.exec(id);
    if (!match || match[1] !== this.epoch) return undefined;
    const seq = Number(match[2]);
    if (seq > this.seq) return undefined;
    this.prune(Date.now());
    const oldest = this.events.length > 0 ? this.events[0].seq : this.seq + 1;
    if (seq < oldest - 1) return undefined; // some events after `id` are gone
    return this.events.filter((e) => e.seq > seq).map(({ id: eventId, message }) => ({ id: eventId, message }));
  }

  private prune(now: number): void {
    let drop = Math.max(0, this.events.length - this.size);
    while (drop < this.events.length && now - this.events[drop].at > this.maxAgeMs) drop++;
    if (drop > 0) this.events.splice(0, drop);
  }
}
