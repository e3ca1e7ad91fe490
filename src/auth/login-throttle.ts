/**
 * Login throttling: too many failed logins for one username, or from one client address, within
 * a window → 429 with Retry-After until the oldest failure leaves the window. Kept in memory per
 * instance (bounded by an LRU), so a cluster of n instances allows at most n times the limit.
 */
import { LRUCache } from 'lru-cache';
import { Errors } from '../errors.js';
import type { UserSettings } from '../collections/schema.js';

type Throttle = UserSettings['throttle'];

export class LoginThrottle {
  private readonly failures = new LRUCache<string, number[]>({ max: 100_000 });

  /** Throws 429 when `username` or `address` has used up its failures. */
  check(settings: Throttle, username: string, address: string): void {
    const now = Date.now();
    const wait = Math.max(
      this.waitFor(`u:${username}`, settings.maxFailuresPerUser, settings.windowMs, now),
      this.waitFor(`a:${address}`, settings.maxFailuresPerAddress, settings.windowMs, now),
    );
    if (wait > 0) {
      throw Errors.tooManyAttempts(Math.ceil(wait / 1000));
    }
  }

  fail(settings: Throttle, username: string, address: string): void {
    const now = Date.now();
    for (const key of [`u:${username}`, `a:${address}`]) {
      const recent = (this.failures.get(key) ?? []).filter((t) => now - t < settings.windowMs);
      recent.push(now);
      this.failures.set(key, recent.slice(-1000));
    }
  }

  /** A successful login clears that username's failures (not the address's). */
  succeed(username: string): void {
    this.failures.delete(`u:${username}`);
  }

  private waitFor(key: string, max: number, windowMs: number, now: number): number {
    const recent = (this.failures.get(key) ?? []).filter((t) => now - t < windowMs);
    if (recent.length < max) return 0;
    return recent[recent.length - max] + windowMs - now;
  }
}
