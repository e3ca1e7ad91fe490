/**
 * The dashboard's live event monitor: every event the real-time gateway fans out on this instance
 * (collection changes, custom events — with Redis, those committed on any instance), with who got
 * it here: sockets per identity, and identities a permission check refused. Kept as a short
 * history (for a dashboard that opens late) and streamed as Server-Sent Events.
 */
import type { ServerResponse } from 'node:http';
import type { LoggedEvent } from '../events/event-log.js';
import type { Audience } from '../realtime/delivery.js';
import type { RealtimeGateway } from '../realtime/gateway.js';
import type { ClusterPresence, RemoteAudience } from './presence.js';

export interface MonitorEntry {
  /** The event's stream id (the `id` clients see). */
  id: string;
  /** The instance whose sockets the audience counts. */
  instance: string;
  type: 'collection_change' | 'custom_event';
  /** `todos created`, or the custom event's name. */
  summary: string;
  collection?: string;
  action?: string;
  event?: string;
  room?: string;
  /** Targeted users, for `emit(dpd.users, query, …)`. */
  userIds?: string[];
  timestamp: string;
  /**
   * The document or the event's data, cut when large; null for an event that happened while no
   * dashboard was watching (nothing is serialized or kept for the monitor then).
   */
  payload: unknown;
  /** Who got it on `instance`. */
  audience: Audience;
  /** With Redis, while a dashboard watches: who got it on each other instance. */
  others: Record<string, Audience>;
}

/** The recent events kept for a dashboard that opens late. */
const KEEP = 200;
/** Larger payloads are shown as their first characters. */
const MAX_PAYLOAD_CHARS = 8000;
/** A comment line keeps proxies (HAProxy's `timeout server`) from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

export class EventMonitor {
  private readonly recent: MonitorEntry[] = [];
  private readonly streams = new Set<ServerResponse>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unobserve: () => void;
  private cluster?: ClusterPresence;
  /** Other instances' audiences for events this instance has not fanned out yet. */
  private readonly early = new Map<string, RemoteAudience[]>();

  constructor(gateway: RealtimeGateway, private readonly instance: () => string) {
    this.unobserve = gateway.observe((event, audience) => this.add(event, audience));
    this.heartbeat = setInterval(() => this.broadcast(': heartbeat\n\n'), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  entries(): MonitorEntry[] {
    return [...this.recent];
  }

  /** Whether a dashboard is following the stream here now. */
  get watching(): boolean {
    return this.streams.size > 0;
  }

  /** Shares this instance's audiences and shows the other instances' (Redis). */
  joinCluster(cluster: ClusterPresence): void {
    this.cluster = cluster;
    cluster.onAudience((remote) => this.addRemote(remote));
  }

  /** Takes over `res` as an event stream: what is kept first, then each event as it happens. */
  stream(res: ServerResponse): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write(`: ${this.instance()}\n\n`);
    for (const entry of this.recent) res.write(frame(entry));
    this.streams.add(res);
    const drop = () => this.streams.delete(res);
    res.on('close', drop);
    res.on('error', drop);
  }

  private add(event: LoggedEvent, audience: Audience): void {
    const { message } = event;
    const watched = this.watching;
    if (message.type !== 'collection_change' && message.type !== 'custom_event') return;
    const entry: MonitorEntry = message.type === 'collection_change'
      ? {
        id: event.id, instance: this.instance(), type: message.type, summary: `${message.collection} ${message.action}`,
        collection: message.collection, action: message.action, timestamp: message.timestamp, payload: watched ? cut(message.document) : null, audience, others: {},
      }
      : {
        id: event.id, instance: this.instance(), type: message.type, summary: message.event, event: message.event,
        ...(message.room !== undefined ? { room: message.room } : {}), ...(message.userIds ? { userIds: message.userIds } : {}),
        timestamp: message.timestamp, payload: watched ? cut(message.data) : null, audience, others: {},
      };
    for (const remote of this.early.get(event.id) ?? []) entry.others[remote.instance] = remote.audience;
    this.early.delete(event.id);
    this.cluster?.shareAudience({ id: event.id, instance: entry.instance, audience });
    this.recent.push(entry);
    if (this.recent.length > KEEP) this.recent.shift();
    // Nobody watching: the entry is kept for the next dashboard, not serialized for no one.
    if (this.streams.size > 0) this.broadcast(frame(entry));
  }

  private addRemote(remote: RemoteAudience): void {
    const entry = this.recent.find((e) => e.id === remote.id);
    if (!entry) {
      this.early.set(remote.id, [...(this.early.get(remote.id) ?? []), remote]);
      // Bounded: audiences of events this instance never sees (trimmed history) must not pile up.
      if (this.early.size > KEEP) this.early.delete(this.early.keys().next().value!);
      return;
    }
    entry.others[remote.instance] = remote.audience;
    this.broadcast(`event: audience\ndata: ${JSON.stringify(remote)}\n\n`);
  }

  private broadcast(text: string): void {
    for (const res of this.streams) {
      // A dashboard that stopped reading is dropped rather than buffered without bound.
      if (res.writableLength > 1024 * 1024) {
        this.streams.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }

  /** Ends every stream (before the server closes, so they do not hold the shutdown). */
  close(): void {
    clearInterval(this.heartbeat);
    this.unobserve();
    for (const res of this.streams) res.end();
    this.streams.clear();
  }
}

function frame(entry: MonitorEntry): string {
  return `id: ${entry.id}\ndata: ${JSON.stringify(entry)}\n\n`;
}

function cut(value: unknown): unknown {
  const text = JSON.stringify(value) ?? 'null';
  return text.length > MAX_PAYLOAD_CHARS ? { truncated: `${text.slice(0, MAX_PAYLOAD_CHARS)}…` } : value;
}
