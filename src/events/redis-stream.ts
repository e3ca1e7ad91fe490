/**
 * The Redis side of the shared event log: one Redis Stream that every instance appends to and
 * reads from, carrying any event message as JSON. Keys (under `dpd:rt:`; give separate apps
 * separate databases in REDIS_URL, e.g. `redis://host:6379/1`):
 *
 *   dpd:rt:events        the stream; entry id `<seq>-0`, fields o (origin), n (origin's seq),
 *                        t (ms), m (the message as JSON); trimmed from the oldest end to at
 *                        most `size` entries and `maxBytes` bytes of messages
 *   dpd:rt:bytes         the size of the messages in the stream (what the byte bound trims by)
 *   dpd:rt:seq           the last `<seq>` given out (clients see `<epoch>:<seq>`)
 *   dpd:rt:epoch         names this stream's life: a Redis that lost its data gets a new one, so
 *                        old ids answer resync_required instead of resuming into a gap
 *   dpd:rt:origin:<o>    the last origin seq added by instance <o>: re-sending after a lost reply
 *                        never adds an entry twice
 *
 * Everything here is a thin, stateless wrapper: the policy (what to do when Redis is away) is in
 * ./redis-log.ts.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { EventMessage } from './messages.js';

export const KEYS = {
  stream: 'dpd:rt:events',
  seq: 'dpd:rt:seq',
  bytes: 'dpd:rt:bytes',
  epoch: 'dpd:rt:epoch',
  origin: (origin: string) => `dpd:rt:origin:${origin}`,
};

/** How long an origin's dedupe record outlives its last append (seconds). */
const ORIGIN_TTL_S = 24 * 60 * 60;

// Appends unless this origin's message `n` is already in: returns the new entry's seq, or false.
// Then trims the oldest entries while the stream holds more than ARGV[5] entries or ARGV[7] bytes
// of messages (exactly, one XDEL each, so the byte count stays true; XDEL moves
// max-deleted-entry-id, by which readers see what was trimmed).
const APPEND = `
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
local n = tonumber(ARGV[2])
if n <= last then return false end
local seq = redis.call('INCR', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[4], 0) end
redis.call('XADD', KEYS[1], seq .. '-0', 'o', ARGV[1], 'n', ARGV[2], 't', ARGV[3], 'm', ARGV[4])
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[6])
local bytes = redis.call('INCRBY', KEYS[4], string.len(ARGV[4]))
local maxLen = tonumber(ARGV[5])
local maxBytes = tonumber(ARGV[7])
local length = redis.call('XLEN', KEYS[1])
while length > 1 and (length > maxLen or bytes > maxBytes) do
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  local size = 0
  for i = 1, #oldest[2], 2 do
    if oldest[2][i] == 'm' then size = string.len(oldest[2][i + 1]) end
  end
  redis.call('XDEL', KEYS[1], oldest[1])
  bytes = redis.call('DECRBY', KEYS[4], size)
  length = length - 1
end
return seq
`;

// Where the stream stands: {epoch, last seq, highest seq trimmed away}. Creates the epoch when
// the stream has none (a new or emptied Redis) from ARGV[1]; with ARGV[2], replaces the epoch
// ARGV[2] by ARGV[1] (data was lost while the epoch survived, e.g. an older snapshot came back).
const STATE = `
if ARGV[2] and ARGV[2] ~= '' and redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('SET', KEYS[2], ARGV[1]) end
redis.call('SET', KEYS[2], ARGV[1], 'NX')
local epoch = redis.call('GET', KEYS[2])
local seq = redis.call('GET', KEYS[3]) or '0'
local trimmed = '0-0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'max-deleted-entry-id' then trimmed = info[i + 1] end
  end
end
return {epoch, seq, trimmed}
`;

export interface StreamState {
  epoch: string;
  /** The last seq given out. */
  seq: number;
  /** Entries up to this seq may have been trimmed (0: none). */
  trimmedThrough: number;
}

export interface StreamEntry {
  seq: number;
  origin: string;
  /** The origin's own counter: consecutive per origin, so a gap in it is a lost entry. */
  n: number;
  at: number;
  /** undefined: the entry could not be read (not written by deployd-ts): counts as a lost event. */
  message: EventMessage | undefined;
}

type RawEntry = [id: string, fields: string[]];

/** Connection options: fail fast while disconnected (the caller falls back), retry at least every second. */
export function connectionOptions(): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    // A command in flight when the connection drops has an unknown fate: the history resends it
    // itself (idempotently), so ioredis must not replay it behind our back.
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: null,
    // ioredis's default backs off to 5 s (+ up to 0.2 s jitter): a returning Redis would go
    // unnoticed for that long. Capped at 1 s here.
    retryStrategy: (times: number) => Math.min(50 * 2 ** (times - 1), 1000) + Math.floor(Math.random() * 100),
    connectionName: 'deployd-realtime',
  };
}

export function openConnection(url: string): Redis {
  return new Redis(url, connectionOptions());
}

export class RedisStream {
  private appendSha = '';
  private stateSha = '';

  /**
   * @param maxLength entries kept at most
   * @param maxBytes message bytes kept at most (the newest entry is kept whatever its size)
   */
  constructor(readonly maxLength: number, readonly maxBytes = Number.MAX_SAFE_INTEGER) {}

  /** Loads the scripts (again after a Redis restart, which forgets them). */
  async prepare(redis: Redis): Promise<void> {
    this.appendSha = (await redis.script('LOAD', APPEND)) as string;
    this.stateSha = (await redis.script('LOAD', STATE)) as string;
  }

  append(redis: Redis, origin: string, n: number, at: number, json: string): Promise<number | null> {
    return redis.evalsha(this.appendSha, 4, KEYS.stream, KEYS.seq, KEYS.origin(origin), KEYS.bytes, origin, n, at, json, this.maxLength, ORIGIN_TTL_S, this.maxBytes)
      .then((seq) => (seq === null ? null : Number(seq)));
  }

  /** Where the stream stands; `freshEpoch` becomes the epoch if there is none (or replaces `lostEpoch`). */
  async state(redis: Redis, freshEpoch: string, lostEpoch = ''): Promise<StreamState> {
    const [epoch, seq, trimmed] = (await redis.evalsha(this.stateSha, 3, KEYS.stream, KEYS.epoch, KEYS.seq, freshEpoch, lostEpoch)) as [string, string, string];
    return { epoch, seq: Number(seq), trimmedThrough: seqOf(trimmed) };
  }

  /** Entries after `seq`, waiting up to `blockMs` for one; null when none came. */
  async read(redis: Redis, afterSeq: number, count: number, blockMs: number): Promise<StreamEntry[] | null> {
    const reply = (await redis.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', KEYS.stream, `${afterSeq}-0`)) as Array<[string, RawEntry[]]> | null;
    return reply ? reply[0][1].map(decode) : null;
  }

  /** Entries after `afterSeq` with the state they were read in (one MULTI, so they agree). */
  async range(redis: Redis, afterSeq: number, count: number): Promise<{ state: StreamState; entries: StreamEntry[] }> {
    const results = await redis.multi()
      .get(KEYS.epoch)
      .get(KEYS.seq)
      .xinfo('STREAM', KEYS.stream)
      .xrange(KEYS.stream, `(${afterSeq}-0`, '+', 'COUNT', count)
      .exec();
    if (!results) throw new Error('the history read was aborted');
    const [[, epoch], [, seq], [infoError, info], [rangeError, range]] = results as Array<[Error | null, any]>;
    if (rangeError) throw rangeError;
    let trimmed = '0-0';
    if (!infoError && Array.isArray(info)) {
      for (let i = 0; i < info.length; i += 2) if (info[i] === 'max-deleted-entry-id') trimmed = String(info[i + 1]);
    }
    return {
      state: { epoch: String(epoch ?? ''), seq: Number(seq ?? 0), trimmedThrough: seqOf(trimmed) },
      entries: (range as RawEntry[]).map(decode),
    };
  }
}

function seqOf(streamId: string): number {
  return Number(streamId.split('-')[0]);
}

function decode([id, fields]: RawEntry): StreamEntry {
  const value: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) value[fields[i]] = fields[i + 1];
  let message: EventMessage | undefined;
  try {
    message = JSON.parse(value.m) as EventMessage;
  } catch {
    message = undefined;
  }
  return { seq: seqOf(id), origin: value.o ?? '', n: Number(value.n), at: Number(value.t), message };
}
