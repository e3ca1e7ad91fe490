/**
 * Login throttling. Every attempt is counted *before* the password is checked, in one atomic step
 * for its username and its client address, so no number of concurrent requests gets more passwords
 * checked than the limit: within the window at most `maxFailuresPerUser` attempts per username and
 * `maxFailuresPerAddress` per address are let through; the rest answer 429 with Retry-After until
 * the oldest counted attempt leaves the window. A right password gives its attempt back (the
 * username's count is cleared, the address's attempt released); a wrong one stays counted.
 *
 * The counts live in a ledger: in memory for one instance, or in Redis (REDIS_URL) so that the
 * limit holds across every instance. When Redis does not answer, the instance counts in memory
 * meanwhile (still throttled, per instance) rather than refusing every login.
 */
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Redis } from 'ioredis';
import { Errors } from '../errors.js';
import type { UserSettings } from '../core/schema.js';

type Throttle = UserSettings['throttle'];

export interface Limit {
  key: string;
  max: number;
}

/** Where attempts are counted. */
export interface AttemptLedger {
  /**
   * Counts `attempt` under every key if each has fewer than its `max` attempts within the window,
   * atomically; answers 0 when counted, else the milliseconds until one leaves the window.
   */
  reserve(limits: Limit[], windowMs: number, attempt: string): Promise<number>;
  /** Forgets attempts: every one under the `clear` keys, and `attempt` under the `release` keys. */
  settle(clear: string[], release: string[], attempt: string): Promise<void>;
}

/** One login attempt that passed the throttle. */
export interface LoginAttempt {
  /** The password was right: the username starts afresh, and the address gets its attempt back. */
  succeeded(): Promise<void>;
  /** The attempt proved nothing about the password (a hook refused a right one, or a fault): not counted. */
  release(): Promise<void>;
}

export class LoginThrottle {
  private readonly local = new MemoryLedger();
  private warnedAt = 0;

  constructor(
    private readonly shared?: AttemptLedger,
    private readonly log?: { warn(obj: object, msg: string): void },
  ) {}

  /** Counts an attempt for `username` from `address`, or throws 429 when either has none left. */
  async begin(settings: Throttle, username: string, address: string): Promise<LoginAttempt> {
    const user = `u:${username}`;
    const from = `a:${address}`;
    const attempt = randomUUID();
    const limits = [{ key: user, max: settings.maxFailuresPerUser }, { key: from, max: settings.maxFailuresPerAddress }];
    const ledger = await this.ledgerFor((l) => l.reserve(limits, settings.windowMs, attempt));
    const wait = ledger.result;
    if (wait > 0) throw Errors.tooManyAttempts(Math.max(1, Math.ceil(wait / 1000)));
    const settle = (clear: string[], release: string[]) => ledger.used.settle(clear, release, attempt).catch(() => {});
    return {
      succeeded: () => settle([user], [from]),
      release: () => settle([], [user, from]),
    };
  }

  /** Runs `op` on the shared ledger, or on this instance's when there is none or it fails. */
  private async ledgerFor<T>(op: (ledger: AttemptLedger) => Promise<T>): Promise<{ result: T; used: AttemptLedger }> {
    if (this.shared) {
      try {
        return { result: await op(this.shared), used: this.shared };
      } catch (err) {
        if (Date.now() - this.warnedAt > 10_000) {
          this.warnedAt = Date.now();
          this.log?.warn({ err: (err as Error).message }, 'login throttle: Redis did not answer, counting attempts on this instance meanwhile');
        }
      }
    }
    return { result: await op(this.local), used: this.local };
  }
}

/** Attempts counted in this process (bounded by an LRU). */
export class MemoryLedger implements AttemptLedger {
  // Bounded by maxSize (one per key) rather than max, which would allocate 100,000 slots (~1.9 MiB) up front.
  private readonly attempts = new LRUCache<string, Array<{ at: number; id: string }>>({ maxSize: 100_000, sizeCalculation: () => 1 });

  async reserve(limits: Limit[], windowMs: number, attempt: string): Promise<number> {
    const now = Date.now();
    let wait = 0;
    const current = limits.map(({ key, max }) => {
      const recent = (this.attempts.get(key) ?? []).filter((a) => now - a.at < windowMs);
      if (recent.length >= max) wait = Math.max(wait, recent[recent.length - max].at + windowMs - now);
      return recent;
    });
    if (wait > 0) return wait;
    limits.forEach(({ key }, i) => this.attempts.set(key, [...current[i], { at: now, id: attempt }]));
    return 0;
  }

  async settle(clear: string[], release: string[], attempt: string): Promise<void> {
    for (const key of clear) this.attempts.delete(key);
    for (const key of release) {
      const left = (this.attempts.get(key) ?? []).filter((a) => a.id !== attempt);
      if (left.length > 0) this.attempts.set(key, left);
      else this.attempts.delete(key);
    }
  }
}

// KEYS: one sorted set of attempts (score: ms) per limit; ARGV: window ms, attempt id, then each
// key's max. Redis's own clock, so instances with skewed clocks agree.
const RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local max = tonumber(ARGV[2 + i])
  local count = redis.call('ZCARD', key)
  if count >= max then
    local oldest = redis.call('ZRANGE', key, count - max, count - max, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, window)
end
return 0
`;

/** Attempts counted in Redis: one limit for every instance. */
export class RedisLedger implements AttemptLedger {
  constructor(private readonly redis: Redis, private readonly prefix = 'dpd:login:') {}

  async reserve(limits: Limit[], windowMs: number, attempt: string): Promise<number> {
    const keys = limits.map((l) => this.prefix + l.key);
    const wait = await this.redis.eval(RESERVE, keys.length, ...keys, String(Math.ceil(windowMs)), attempt, ...limits.map((l) => String(l.max)));
    return Number(wait);
  }

  async settle(clear: string[], release: string[], attempt: string): Promise<void> {
    const pipeline = this.redis.pipeline();
    for (const key of clear) pipeline.del(this.prefix + key);
    for (const key of release) pipeline.zrem(this.prefix + key, attempt);
    await pipeline.exec();
  }
}
