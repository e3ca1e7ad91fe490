/**
 * The dashboard's view of a cluster, through the Redis of REDIS_URL:
 *
 *   dpd:admin:presence:<instance>   JSON {instance, at, connections}: every instance writes its
 *                                   connection list every 2 s; it expires after 3 periods, so an
 *                                   instance that stops drops out by itself
 *   dpd:admin:watching              set (expiring likewise) while any instance streams its monitor
 *   dpd:admin:audience (channel)    while someone watches, every instance publishes who got each
 *                                   event on it, so the monitor shows the whole cluster's audience
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { openConnection } from '../events/redis-stream.js';
import type { ConnectionInfo } from '../realtime/connection.js';
import type { Audience } from '../realtime/delivery.js';

export interface InstanceConnections {
  instance: string;
  /** When the instance wrote this list. */
  at: string;
  connections: ConnectionInfo[];
}

const PREFIX = 'dpd:admin:presence:';
const WATCHING = 'dpd:admin:watching';
const AUDIENCE = 'dpd:admin:audience';

/** Who got an event on one instance. */
export interface RemoteAudience {
  id: string;
  instance: string;
  audience: Audience;
}
const PERIOD_MS = 2000;
/** Lists are cut to this many connections per instance (the count stays exact). */
const MAX_LISTED = 500;

export class ClusterPresence {
  private readonly redis: Redis;
  /** Subscribed to the audience channel (a subscribing connection can do nothing else). */
  private readonly subscriber: Redis;
  private readonly timer: NodeJS.Timeout;
  private warned = false;
  /** Whether some instance's dashboard is watching the monitor: only then are audiences shared. */
  private watched = false;
  private readonly listeners = new Set<(remote: RemoteAudience) => void>();

  /**
   * @param local this instance's connections now
   * @param watching whether this instance streams its monitor to a dashboard now
   */
  constructor(url: string, private readonly local: () => InstanceConnections, private readonly watching: () => boolean, private readonly log: FastifyBaseLogger) {
    this.redis = openConnection(url);
    this.redis.on('error', () => {}); // reported once by publish(); Redis' own retry continues
    this.redis.connect().catch(() => {});
    this.subscriber = openConnection(url);
    this.subscriber.on('error', () => {});
    // On every (re)connection: a first connection that failed never subscribed.
    this.subscriber.on('ready', () => void this.subscriber.subscribe(AUDIENCE).catch(() => {}));
    this.subscriber.on('message', (_channel: string, text: string) => this.received(text));
    this.subscriber.connect().catch(() => {});
    this.timer = setInterval(() => void this.publish(), PERIOD_MS);
    this.timer.unref();
    void this.publish();
  }

  /** Calls `listener` with the audiences other instances publish. */
  onAudience(listener: (remote: RemoteAudience) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Publishes who got an event here, when some dashboard in the cluster is watching. */
  shareAudience(remote: RemoteAudience): void {
    if (!this.watched && !this.watching()) return;
    this.redis.publish(AUDIENCE, JSON.stringify(remote)).catch(() => {});
  }

  private received(text: string): void {
    let remote: RemoteAudience;
    try {
      remote = JSON.parse(text) as RemoteAudience;
    } catch {
      return;
    }
    if (remote.instance === this.local().instance) return;
    for (const listener of this.listeners) listener(remote);
  }

  private async publish(): Promise<void> {
    const mine = this.local();
    try {
      await this.redis.set(PREFIX + mine.instance, JSON.stringify({ ...mine, total: mine.connections.length, connections: mine.connections.slice(0, MAX_LISTED) }), 'PX', PERIOD_MS * 3);
      if (this.watching()) await this.redis.set(WATCHING, mine.instance, 'PX', PERIOD_MS * 3);
      this.watched = (await this.redis.exists(WATCHING)) === 1;
      this.warned = false;
    } catch (err) {
      if (!this.warned) this.log.warn({ err: (err as Error).message }, 'cannot share this instance\'s connections through Redis; the dashboard shows this instance only');
      this.warned = true;
    }
  }

  /** Every instance's connections, this one's current; only this one's when Redis does not answer. */
  async all(): Promise<{ instances: InstanceConnections[]; complete: boolean }> {
    const mine = this.local();
    try {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, found] = await this.redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 200);
        keys.push(...found);
        cursor = next;
      } while (cursor !== '0');
      const values = keys.length > 0 ? await this.redis.mget(...keys) : [];
      const others = values
        .map((value) => (value ? (JSON.parse(value) as InstanceConnections) : undefined))
        .filter((v): v is InstanceConnections => v !== undefined && v.instance !== mine.instance);
      return { instances: [mine, ...others].sort((a, b) => a.instance.localeCompare(b.instance)), complete: true };
    } catch {
      return { instances: [mine], complete: false };
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    try {
      await this.redis.del(PREFIX + this.local().instance);
    } catch {
      // it expires by itself
    }
    this.redis.disconnect();
    this.subscriber.disconnect();
  }
}
