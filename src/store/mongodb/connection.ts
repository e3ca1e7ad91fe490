/**
 * What the MongoDB store needs to know about URLs, names and connection errors.
 */
import { MongoError, MongoNetworkError, MongoNotConnectedError, MongoServerSelectionError, MongoTopologyClosedError } from 'mongodb';

/** Driver defaults this store changes, unless the URL sets them: fail and recover in seconds, not 30 s. */
const DEFAULTS: Record<string, number> = { serverSelectionTimeoutMS: 5000, connectTimeoutMS: 5000, heartbeatFrequencyMS: 1000 };

/** The driver options to pass beside the URL: only our defaults that the URL does not set (pool size, timeouts... come from the URL). */
export function driverDefaults(url: string): Record<string, number> {
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const given = new Set([...new URLSearchParams(query).keys()].map((k) => k.toLowerCase()));
  return Object.fromEntries(Object.entries(DEFAULTS).filter(([key]) => !given.has(key.toLowerCase())));
}

/** The URL without user and password, for the start-up line and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/, '$1');
}

/**
 * An app collection's MongoDB collection name: `shop/orders` → `shop.orders` (folders become
 * MongoDB's usual dotted namespaces; app names never contain dots, so this cannot collide),
 * anything MongoDB could refuse percent-encoded, and `system.*` (MongoDB's own) escaped.
 */
export function mongoCollectionName(name: string): string {
  const mapped = name
    .split('/')
    .map((segment) => segment.replace(/[^A-Za-z0-9_-]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')))
    .join('.');
  return mapped.startsWith('system.') ? `%73${mapped.slice(1)}` : mapped;
}

/** Server shutting down, not primary, interrupted: MongoDB's codes for "try again elsewhere/later". */
const UNAVAILABLE_CODES = new Set([6, 7, 89, 91, 189, 10107, 11600, 11602, 13435, 13436]);

/** Every sign that the server cannot be reached now (as opposed to a refused operation). */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof MongoNetworkError || err instanceof MongoServerSelectionError) return true;
  if (err instanceof MongoNotConnectedError || err instanceof MongoTopologyClosedError) return true;
  if (err instanceof MongoError) {
    if (err.name === 'MongoPoolClearedError') return true;
    if (typeof err.code === 'number' && UNAVAILABLE_CODES.has(err.code)) return true;
  }
  return false;
}
