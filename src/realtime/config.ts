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
 *       "maxFrameBytes": 65536                 // largest client frame (larger: close 1009)
 *     },
 *     "history": { "size": 10000, "maxAgeSeconds": 300 }   // what `?since=` can resume from
 *   }
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
  const limits = raw.limits ?? {};
  const history = raw.history ?? {};
  const num = (value: unknown, fallback: number, min: number) => (typeof value === 'number' && Number.isFinite(value) && value >= min ? value : fallback);
  return {
    enabled: raw.enabled !== false,
    rooms: Array.isArray(raw.rooms) ? raw.rooms.filter((r: unknown): r is string => typeof r === 'string') : [],
    maxConnections: num(limits.maxConnections, DEFAULT_REALTIME.maxConnections, 1),
    messageRateLimit: num(limits.messageRateLimit, DEFAULT_REALTIME.messageRateLimit, 1),
    pingIntervalMs: num(limits.pingInterval, DEFAULT_REALTIME.pingIntervalMs / 1000, 0.05) * 1000,
    idleTimeoutMs: num(limits.idleTimeout, DEFAULT_REALTIME.idleTimeoutMs / 1000, 0.1) * 1000,
    maxBufferedBytes: num(limits.maxBufferedBytes, DEFAULT_REALTIME.maxBufferedBytes, 1024),
    maxFrameBytes: num(limits.maxFrameBytes, DEFAULT_REALTIME.maxFrameBytes, 256),
    historySize: num(history.size, DEFAULT_REALTIME.historySize, 0),
    historyMaxAgeMs: num(history.maxAgeSeconds, DEFAULT_REALTIME.historyMaxAgeMs / 1000, 0) * 1000,
  };
}

/** Whether `room` matches one of the configured names (`team-*` matches any suffix). */
export function isJoinable(config: RealtimeConfig, room: string): boolean {
  return config.rooms.some((pattern) => (pattern.endsWith('*') ? room.startsWith(pattern.slice(0, -1)) : room === pattern));
}
