/**
 * Which connections each instance of a cluster holds, for the dashboard: every instance writes
 * its list to Redis every few seconds under a key that expires soon after (an instance that stops
 * drops out by itself), and the admin API reads every instance's list. Keys:
 *
 *   dpd:admin:presence:<instance>   JSON {instance, at, connections}, expires after 3 periods
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { openConnection } from '../bus/redis-stream.js';
import type { ConnectionInfo } from '../realtime/gateway.js';

export interface InstanceConnections {
  instance: string;
  /** When the instance wrote this list. */
  at: string;
  connections: ConnectionInfo[];
}

const PREFIX = 'dpd:admin:presence:';
const PERIOD_MS = 2000;
/** Lists are cut to this many connections per instance (the count stays exact). */
const MAX_LISTED = 500;

export class ClusterPresence {
  private readonly redis: Redis;
  private readonly timer: NodeJS.Timeout;
  private warned = false;

  constructor(url: string, private readonly local: () => InstanceConnections, private readonly log: FastifyBaseLogger) {
    this.redis = openConnection(url);
    this.redis.on('error', () => {}); // reported once by publish(); Redis' own retry continues
    this.redis.connect().catch(() => {});
    this.timer = setInterval(() => void this.publish(), PERIOD_MS);
    this.timer.unref();
    void this.publish();
  }

  private async publish(): Promise<void> {
    const mine = this.local();
    try {
      await this.redis.set(PREFIX + mine.instance, JSON.stringify({ ...mine, total: mine.connections.length, connections: mine.connections.slice(0, MAX_LISTED) }), 'PX', PERIOD_MS * 3);
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
  }
}
