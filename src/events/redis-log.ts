/**
 * The event log shared by every instance through one Redis Stream (REDIS_URL; the stream and its
 * scripts are in ./redis-stream.ts). Each instance appends what it committed and hands its listeners every entry of the stream, its own
 * included, in stream order: so every client on every instance sees the same events in the same
 * order, each exactly once, and an id from one instance resumes on any other.
 *
 * When Redis is away nothing is lost silently:
 *  - writes still succeed; this instance's events go to its own clients at once (with ids that
 *    cannot be resumed from) and wait in a bounded queue;
 *  - when Redis is back (ioredis reconnects by itself) the queue is appended, idempotently, so the
 *    other instances catch up from the stream, and the reader goes on from where it stopped;
 *  - when the stream cannot say what was missed (Redis lost its data, entries were trimmed before
 *    they were read, an instance's queue overflowed), listeners get `gap`: clients resync.
 * `status()` is 'degraded' from the moment either connection drops until all of that is done.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { newEpoch, parseEventId, type EventLog, type LoggedEvent, type LogListener, type LogStats, type LogStatus } from './event-log.js';
import type { EventMessage } from './messages.js';
import { messageJson } from './message-json.js';
import { KEYS, openConnection, RedisStream, type StreamEntry } from './redis-stream.js';

/** An event committed here. */
interface Own {
  n: number;
  at: number;
  json: string;
  message: EventMessage;
}

export interface RedisLogOptions {
  url: string;
  /** Entries the stream keeps, and this instance's queue while Redis is away. */
  size: number;
  /** Message bytes the stream keeps (and the queue while Redis is away); default: no byte bound. */
  maxBytes?: number;
  /** Entries older than this are not replayed (the resume answers resync_required). */
  maxAgeMs: number;
  log: FastifyBaseLogger;
}

const READ_BATCH = 1000;
const READ_BLOCK_MS = 2000;
const RETRY_MS = 500;
/** Fewer kept than this would let a reader that blinks fall behind the trim. */
const MIN_STREAM_LENGTH = 1000;

/** A connection plus a promise that rejects when it drops: ioredis leaves a command in flight at that moment unsettled. */
class Link {
  private lostNow: (err: Error) => void = () => {};
  lost: Promise<never> = new Promise(() => {});

  constructor(readonly redis: Redis, onClose: () => void, onReady: () => void) {
    this.arm();
    redis.on('close', () => {
      this.lostNow(new Error('the Redis connection closed'));
      this.arm();
      onClose();
    });
    redis.on('ready', onReady);
    redis.on('error', () => {}); // reported through 'close' and the degraded status
  }

  get ready(): boolean {
    return this.redis.status === 'ready';
  }

  /** The command's answer, or a rejection as soon as the connection drops. */
  guard<T>(command: Promise<T>): Promise<T> {
    return Promise.race([command, this.lost]);
  }

  private arm(): void {
    this.lost = new Promise<never>((_, reject) => { this.lostNow = reject; });
    this.lost.catch(() => {});
  }
}

export class RedisEventLog implements EventLog {
  /** This process's name in the stream, and the epoch of the ids it gives while Redis is away. */
  private readonly origin = newEpoch();
  private readonly stream: RedisStream;
  private readonly writer: Link;
  private readonly reader: Link;
  private readonly listeners = new Set<LogListener>();

  private n = 0;
  private localSeq = 0;
  /** The stream's epoch and the seq of the last entry handed to listeners (undefined: never read yet). */
  private epoch: string | undefined;
  private position = 0;
  private headId: string;
  /** The highest seq this instance appended: a Redis whose seq is lower lost it. */
  private written = 0;
  /** Per origin, the last `n` read: the next must be n + 1, or something is missing. */
  private readonly lastByOrigin = new Map<string, number>();

  /** Appends whose answer has not come. */
  private readonly inflight = new Map<number, Own>();
  /** Own events delivered here already (while Redis was away): the reader skips them. */
  private readonly deliveredHere = new Set<number>();
  /** Own events waiting to be appended when Redis is back, oldest first. */
  private queue: Own[] = [];
  private dropped = 0;

  /** Appends go straight to the stream and the reader follows it. */
  private up = false;
  private synced = false;
  private recovering = false;
  private everSynced = false;
  private startedLate = false;
  private closed = false;
  private lastRecoverError: string | undefined;
  private readonly retry: NodeJS.Timeout;
  private wakeReader: () => void = () => {};

  constructor(private readonly options: RedisLogOptions) {
    this.stream = new RedisStream(Math.max(options.size, MIN_STREAM_LENGTH), options.maxBytes ?? Number.MAX_SAFE_INTEGER);
    this.headId = `${this.origin}:0`;
    this.writer = new Link(openConnection(options.url), () => this.lose('connection closed'), () => this.recover());
    this.reader = new Link(openConnection(options.url), () => this.lose('connection closed'), () => this.recover());
    this.retry = setInterval(() => this.recover(), RETRY_MS);
    this.retry.unref();
  }

  /** Connects and catches up with the stream; after `timeoutMs` starts degraded (and keeps trying). */
  async start(timeoutMs: number): Promise<void> {
    this.writer.redis.connect().catch(() => {});
    this.reader.redis.connect().catch(() => {});
    void this.readLoop();
    const deadline = Date.now() + timeoutMs;
    while (!this.up && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!this.up) {
      this.startedLate = true;
      this.options.log.warn('Redis (REDIS_URL) is unreachable: real-time runs on this instance only until it answers');
    }
  }

  publish(message: EventMessage): void {
    try {
      this.append(message);
    } catch (err) {
      // Runs inside the request that committed: a failure here must not fail that request.
      this.options.log.error({ err: (err as Error).message }, 'real-time publish failed');
    }
  }

  private append(message: EventMessage): void {
    const own: Own = { n: ++this.n, at: Date.now(), json: messageJson(message), message };
    if (!this.up) {
      this.deliverHere(own);
      this.enqueue(own);
      return;
    }
    this.inflight.set(own.n, own);
    this.writer.guard(this.stream.append(this.writer.redis, this.origin, own.n, own.at, own.json)).then((seq) => {
      if (!this.inflight.delete(own.n)) return; // already given up on (delivered here, queued)
      if (seq !== null) this.written = Math.max(this.written, seq);
    }, (err: Error) => {
      if (this.inflight.has(own.n)) this.lose(`append failed: ${err.message}`);
    });
  }

  head(): string {
    return this.headId;
  }

  async since(id: string): Promise<LoggedEvent[] | undefined> {
    const parsed = parseEventId(id);
    if (!parsed || parsed.epoch !== this.epoch) return undefined;
    if (!this.synced) throw new Error('the shared event log (Redis) is unavailable');
    const { state, entries } = await this.writer.guard(this.stream.range(this.writer.redis, parsed.seq, this.stream.maxLength * 2));
    if (state.epoch !== parsed.epoch || parsed.seq > state.seq || state.trimmedThrough > parsed.seq) return undefined;
    if (entries.length > 0 && Date.now() - entries[0].at > this.options.maxAgeMs) return undefined;
    if (entries.some((e) => e.message === undefined)) return undefined;
    if (this.epoch !== parsed.epoch) return undefined; // the stream started over while this was read
    // Only up to what this instance has handed out: later entries reach the client live.
    return entries.filter((e) => e.seq <= this.position).map((e) => ({ id: `${parsed.epoch}:${e.seq}`, message: e.message! }));
  }

  subscribe(listener: LogListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): LogStatus {
    return this.up ? 'ok' : 'degraded';
  }

  async stats(): Promise<LogStats> {
    if (!this.up) return { events: 0, bytes: 0 };
    try {
      const [events, bytes] = await this.writer.guard(Promise.all([
        this.writer.redis.xlen(KEYS.stream),
        this.writer.redis.call('MEMORY', 'USAGE', KEYS.stream) as Promise<number | null>,
      ]));
      return { events, bytes: bytes ?? 0 };
    } catch {
      return { events: 0, bytes: 0 };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.up = false;
    clearInterval(this.retry);
    this.wakeReader();
    this.listeners.clear();
    this.writer.redis.disconnect();
    this.reader.redis.disconnect();
  }

  // ---- while Redis is away ----------------------------------------------------------------------

  /** Either connection dropped (or an append failed): own events go to own clients directly. */
  private lose(reason: string): void {
    if (this.closed) return;
    if (this.up || this.synced) this.options.log.warn({ reason }, 'real-time bus degraded: Redis unavailable; events from other instances wait until it is back');
    this.up = false;
    this.synced = false;
    // Appends with no answer: maybe in the stream, maybe not. Delivered here now, and appended
    // again later (a no-op for those that made it); the reader skips them either way.
    const unanswered = [...this.inflight.values()];
    this.inflight.clear();
    for (const own of unanswered) this.deliverHere(own);
    this.queue = [...unanswered, ...this.queue].sort((a, b) => a.n - b.n);
    this.trimQueue();
    this.wakeReader();
  }

  private deliverHere(own: Own): void {
    this.deliveredHere.add(own.n);
    this.hand(`${this.origin}:${++this.localSeq}`, own.message);
  }

  private enqueue(own: Own): void {
    this.queue.push(own);
    this.trimQueue();
  }

  private trimQueue(): void {
    let over = Math.max(0, this.queue.length - Math.max(this.options.size, MIN_STREAM_LENGTH));
    let bytes = 0;
    for (const own of this.queue) bytes += own.json.length;
    for (let i = 0; i < over; i++) bytes -= this.queue[i].json.length;
    const maxBytes = this.options.maxBytes ?? Infinity;
    while (over < this.queue.length - 1 && bytes > maxBytes) bytes -= this.queue[over++].json.length;
    if (over <= 0) return;
    // The other instances will see the hole in this origin's numbering and resync their clients.
    this.queue.splice(0, over);
    this.dropped += over;
    this.options.log.warn({ dropped: this.dropped }, 'real-time queue full while Redis is away: other instances\' clients will resync');
  }

  /** Redis answers again: catch the reader up (or report a gap), then append the queue, then go direct. */
  private async recover(): Promise<void> {
    if (this.up || this.recovering || this.closed || !this.writer.ready || !this.reader.ready) return;
    this.recovering = true;
    try {
      await this.writer.guard(this.stream.prepare(this.writer.redis));
      if (!this.synced) await this.sync();
      while (this.queue.length > 0) {
        const batch = this.queue.slice();
        const added = await this.writer.guard(Promise.all(batch.map((own) => this.stream.append(this.writer.redis, this.origin, own.n, own.at, own.json))));
        for (const seq of added) if (seq !== null) this.written = Math.max(this.written, seq);
        this.queue.splice(0, batch.length);
      }
      if (!this.closed && this.writer.ready && this.reader.ready && this.synced) {
        this.up = true;
        this.lastRecoverError = undefined;
        this.options.log.info('real-time bus connected (Redis)');
      }
    } catch (err) {
      // Retried every RETRY_MS: say it once per distinct reason, not twice a second.
      const reason = (err as Error).message;
      if (reason !== this.lastRecoverError) this.options.log.warn({ err: reason }, 'real-time bus: cannot catch up with Redis yet; retrying');
      this.lastRecoverError = reason;
    } finally {
      this.recovering = false;
    }
  }

  /** Where the reader goes on from: where it stopped, unless the stream cannot vouch for what followed. */
  private async sync(): Promise<void> {
    let state = await this.writer.guard(this.stream.state(this.writer.redis, newEpoch()));
    let lost: string | undefined;
    if (this.epoch === undefined) {
      if (this.startedLate) lost = 'Redis was unreachable when this instance started';
    } else if (state.epoch !== this.epoch) {
      lost = 'Redis lost its data (the stream started over)';
    } else if (state.seq < Math.max(this.position, this.written)) {
      // An older copy of the data came back: entries this instance saw or wrote are gone. A new
      // epoch makes every instance (and every client id) start over.
      state = await this.writer.guard(this.stream.state(this.writer.redis, newEpoch(), this.epoch));
      lost = 'Redis came back with older data';
    } else if (state.trimmedThrough > this.position) {
      lost = 'entries were trimmed from the stream before this instance read them';
    }
    if (lost === undefined && this.epoch !== undefined) {
      this.synced = true;
      this.everSynced = true;
      this.wakeReader();
      return;
    }
    this.epoch = state.epoch;
    this.position = state.seq;
    this.written = 0; // what this instance wrote before belongs to the old stream
    this.headId = `${state.epoch}:${state.seq}`;
    this.lastByOrigin.clear();
    // Own events still queued will be appended after this position: keep skipping those only.
    this.deliveredHere.clear();
    for (const own of this.queue) this.deliveredHere.add(own.n);
    this.synced = true;
    if (lost !== undefined && this.everSynced) this.options.log.warn({ reason: lost }, 'real-time events may have been lost: clients will resync');
    if (lost !== undefined) this.gap();
    this.everSynced = true;
    this.wakeReader();
  }

  // ---- reading ----------------------------------------------------------------------------------

  private async readLoop(): Promise<void> {
    while (!this.closed) {
      if (!this.synced || !this.reader.ready) {
        await new Promise<void>((resolve) => {
          this.wakeReader = resolve;
          setTimeout(resolve, RETRY_MS).unref();
        });
        continue;
      }
      try {
        const from = this.position;
        const entries = await this.reader.guard(this.stream.read(this.reader.redis, from, READ_BATCH, READ_BLOCK_MS));
        if (!entries || this.closed || !this.synced || from !== this.position) continue;
        if (entries.length === READ_BATCH) {
          // A full batch: the reader is behind, maybe behind the trim.
          const state = await this.writer.guard(this.stream.state(this.writer.redis, newEpoch()));
          if (state.epoch === this.epoch && state.trimmedThrough > from) {
            this.options.log.warn('real-time reader fell behind the stream\'s trim: clients will resync');
            this.lastByOrigin.clear();
            this.gap();
          }
        }
        for (const entry of entries) this.take(entry);
      } catch (err) {
        if (!this.closed) this.lose(`read failed: ${(err as Error).message}`);
      }
    }
  }

  private take(entry: StreamEntry): void {
    if (entry.seq <= this.position) return;
    this.position = entry.seq;
    if (entry.message === undefined) {
      this.options.log.warn({ seq: entry.seq }, 'real-time stream entry is not readable: clients will resync');
      this.gap();
      return;
    }
    const last = this.lastByOrigin.get(entry.origin);
    if (last !== undefined && entry.n <= last) return; // cannot happen (appends are idempotent); never deliver twice
    this.lastByOrigin.set(entry.origin, entry.n);
    if (last !== undefined && entry.n > last + 1) {
      this.options.log.warn({ origin: entry.origin, missing: entry.n - last - 1 }, 'real-time events from another instance were lost: clients will resync');
      this.gap();
    }
    if (entry.origin === this.origin && this.deliveredHere.delete(entry.n)) {
      this.headId = `${this.epoch}:${entry.seq}`;
      return;
    }
    this.hand(`${this.epoch}:${entry.seq}`, entry.message);
  }

  private hand(id: string, message: EventMessage): void {
    this.headId = id;
    for (const listener of this.listeners) listener.event({ id, message });
  }

  private gap(): void {
    for (const listener of this.listeners) listener.gap();
  }
}
