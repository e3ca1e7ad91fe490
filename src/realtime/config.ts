/**
 * Real-time settings from `.deployd/realtime.json` (go-deployd's file; it only ever read `enabled`,
 * we read these keys):
 *
 *   {
 *     "enabled": true,
 *     "rooms": ["lobby", "team-*"],            // rooms clients may join ("*" suffix: any suffix)
 *     "limits": {
 *       "maxConnections": 10000,               // further upgrades answer 503
 *       "messageRateLimit": 50,                // client messages per second per connection
 *       "pingInterval": 25,                    // seconds between server pings
 *       "idleTimeout": 60,                     // seconds of silence before a peer is closed
 *       "maxBufferedBytes": 1048576,           // unsent bytes before a slow reader is closed (1013)
 *       "maxFrameBytes": 65536,                // largest client frame (larger: close 1009)
 *       "maxEventBytes": 1048576               // largest hook emit() (its data as JSON); larger fails the hook
 *     },
 *     "history": { "size": 10000, "maxAgeSeconds": 300, "maxBytes": 67108864 }   // what `?since=` can resume from
 *   }
 *
 * The history is bounded by count, age and bytes (each event counted as its JSON), whichever is
 * reached first: large documents cannot make it hold more than `maxBytes`.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface RealtimeConfig {
  enabled: boolean;
  rooms: string[];
  maxConnections: number;
  messageRateLimit: number;
  pingIntervalMs: number;
  idleTimeoutMs: number;
  maxBufferedBytes: number;
  maxFrameBytes: number;
  historySize: number;
  historyMaxAgeMs: number;
  historyMaxBytes: number;
  maxEventBytes: number;
}

export const DEFAULT_REALTIME: RealtimeConfig = {
  enabled: true,
  rooms: [],
  maxConnections: 10_000,
  messageRateLimit: 50,
  pingIntervalMs: 25_000,
  idleTimeoutMs: 60_000,
  maxBufferedBytes: 1024 * 1024,
  maxFrameBytes: 64 * 1024,
  historySize: 10_000,
  historyMaxAgeMs: 5 * 60_000,
  historyMaxBytes: 64 * 1024 * 1024,
  maxEventBytes: 1024 * 1024,
};

export function readRealtimeConfig(appDir: string): RealtimeConfig {
  const file = path.join(appDir, '.deployd', 'realtime.json');
  if (!fs.existsSync(file)) return { ...DEFAULT_REALTIME };
  let raw: Record<string, any>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const isObject = (value: unknown): value is Record<string, any> => typeof value === 'object' && value !== null && !Array.isArray(value);
  // A limit that is present but unusable is an error, not a silent fall-back to the default (a
  // "64kb" cap that quietly becomes 1 MiB is worse than a server that does not start).
  const fail = (what: string) => new Error(`${file}: ${what}`);
  if (!isObject(raw)) throw fail('must hold a JSON object');
  const section = (name: string): Record<string, any> => {
    const value = raw[name];
    if (value === undefined || value === null) return {};
    if (!isObject(value)) throw fail(`"${name}" must be an object`);
    return value;
  };
  const limits = section('limits');
  const history = section('history');
  const num = (key: string, value: unknown, fallback: number, min: number, max: number): number => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      throw fail(`"${key}" must be a number from ${min} to ${max}`);
    }
    return value;
  };
  if (raw.enabled !== undefined && typeof raw.enabled !== 'boolean') throw fail('"enabled" must be true or false');
  let rooms: string[] = [];
  if (raw.rooms !== undefined && raw.rooms !== null) {
    if (!Array.isArray(raw.rooms) || !raw.rooms.every((r: unknown) => typeof r === 'string' && r.length > 0 && r.length <= 200)) {
      throw fail('"rooms" must be a list of room names (a trailing "*" matches any suffix)');
    }
    rooms = raw.rooms;
  }
  const DAY = 24 * 60 * 60;
  return {
    enabled: raw.enabled !== false,
    rooms,
    maxConnections: Math.floor(num('limits.maxConnections', limits.maxConnections, DEFAULT_REALTIME.maxConnections, 1, 1e7)),
    messageRateLimit: num('limits.messageRateLimit', limits.messageRateLimit, DEFAULT_REALTIME.messageRateLimit, 1, 1e6),
    // Timers: at most a day (a longer setInterval overflows into a 1 ms one).
    pingIntervalMs: num('limits.pingInterval', limits.pingInterval, DEFAULT_REALTIME.pingIntervalMs / 1000, 0.05, DAY) * 1000,
    idleTimeoutMs: num('limits.idleTimeout', limits.idleTimeout, DEFAULT_REALTIME.idleTimeoutMs / 1000, 0.1, DAY) * 1000,
    maxBufferedBytes: num('limits.maxBufferedBytes', limits.maxBufferedBytes, DEFAULT_REALTIME.maxBufferedBytes, 1024, 2 ** 40),
    maxFrameBytes: Math.floor(num('limits.maxFrameBytes', limits.maxFrameBytes, DEFAULT_REALTIME.maxFrameBytes, 256, 100 * 1024 * 1024)),
    historySize: Math.floor(num('history.size', history.size, DEFAULT_REALTIME.historySize, 0, 1e7)),
    historyMaxAgeMs: num('history.maxAgeSeconds', history.maxAgeSeconds, DEFAULT_REALTIME.historyMaxAgeMs / 1000, 0, 365 * DAY) * 1000,
    historyMaxBytes: Math.floor(num('history.maxBytes', history.maxBytes, DEFAULT_REALTIME.historyMaxBytes, 0, 2 ** 40)),
    maxEventBytes: Math.floor(num('limits.maxEventBytes', limits.maxEventBytes, DEFAULT_REALTIME.maxEventBytes, 256, 2 ** 31)),
  };
}

/** Whether `room` matches one of the configured names (`team-*` matches any suffix). */
export function isJoinable(config: RealtimeConfig, room: string): boolean {
  return config.rooms.some((pattern) => (pattern.endsWith('*') ? room.startsWith(pattern.slice(0, -1)) : room === pattern));
}
