/**
 * Login sessions, kept in the store (an internal `_sessions` collection) so they survive restarts
 * and every instance sharing the database sees the same ones. The token a client holds is never
 * stored: a session's id is the SHA-256 of its token, so a copy of the database logs nobody in.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { CollectionSchema, PropertyDef } from '../core/schema.js';
import type { Filter } from '../core/filter.js';
import { type CollectionStore, type Store } from '../store/store.js';
import { emptyUpdate } from '../core/update.js';
import { type Doc } from '../core/document.js';

export interface Session {
  /** SHA-256 of the token (hex). */
  id: string;
  /** The user's id, and the path of the users collection it belongs to. */
  uid: string;
  collection: string;
  createdAt: number;
  lastActive: number;
  /** Idle time after which the session is over. */
  idleMs: number;
  /** Rooms joined by hooks through `session.joinRoom`; rejoined when a socket binds the session. */
  rooms: string[];
}

/** `lastActive` is written at most this often (Deployd: 10 s), not on every request. */
const TOUCH_EVERY_MS = 60_000;
const SWEEP_EVERY_MS = 10 * 60_000;
const MAX_ROOMS = 100;

const prop = (name: string, type: PropertyDef['type'], index = false): PropertyDef => ({ name, type, required: false, unique: false, index });

const SCHEMA: CollectionSchema = {
  name: '_sessions',
  kind: 'Collection',
  properties: new Map([
    ['uid', prop('uid', 'string', true)],
    ['collection', prop('collection', 'string')],
    ['createdAt', prop('createdAt', 'number')],
    ['lastActive', prop('lastActive', 'number')],
    ['expiresAt', prop('expiresAt', 'number', true)],
    ['idleMs', prop('idleMs', 'number')],
    ['rooms', prop('rooms', 'array')],
  ]),
  timestamps: false,
  noStore: false,
  rules: { read: 'root', create: 'root', update: 'root', delete: 'root' },
  ownerField: 'owner',
  raw: {},
};

/**
 * The `collection` of root sessions (a dashboard login with the master key, src/admin): a path no
 * users collection can have, since collection paths never start with "/".
 */
export const ROOT_SESSIONS = '/root';

export function sessionIdOf(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

const eq = (field: string, value: string | number): Filter => ({ fields: { [field]: { $eq: value } } });

export class Sessions {
  private table?: CollectionStore;
  private lastSweep = 0;

  constructor(private readonly store: Store) {}

  private async docs(): Promise<CollectionStore> {
    this.table ??= await this.store.collection(SCHEMA);
    return this.table;
  }

  /** Starts a session for a user; returns the token to hand to the client. */
  async create(collection: string, uid: string, idleMs: number): Promise<{ token: string; session: Session }> {
    const token = randomBytes(32).toString('base64url');
    const now = Date.now();
    const session: Session = { id: sessionIdOf(token), uid, collection, createdAt: now, lastActive: now, idleMs, rooms: [] };
    await (await this.docs()).insert({ ...session, expiresAt: now + idleMs } as Doc);
    void this.sweep(now);
    return { token, session };
  }

  /** The live session behind a token, or undefined (unknown, ended or idle too long). */
  async resolve(token: string): Promise<Session | undefined> {
    if (token.length === 0 || token.length > 200) return undefined;
    const table = await this.docs();
    const [doc] = await table.find(eq('id', sessionIdOf(token)), { limit: 1 });
    if (!doc) return undefined;
    const session = toSession(doc);
    const now = Date.now();
    if (now - session.lastActive > session.idleMs) {
      await table.remove(eq('id', session.id));
      return undefined;
    }
    if (now - session.lastActive > Math.min(TOUCH_EVERY_MS, session.idleMs / 10)) {
      const spec = emptyUpdate();
      spec.set = { lastActive: now, expiresAt: now + session.idleMs };
      await table.update(session.id, { fields: {} }, spec);
      session.lastActive = now;
    }
    return session;
  }

  /** Ends one session; resolves whether it existed. */
  async end(id: string): Promise<boolean> {
    return (await (await this.docs()).remove(eq('id', id))).length > 0;
  }

  /** Ends every session of a user but `keep`; returns the ids of those ended. */
  async endAllOf(uid: string, keep?: string): Promise<string[]> {
    const filter: Filter = keep ? { fields: { uid: { $eq: uid }, id: { $ne: keep } } } : eq('uid', uid);
    return (await (await this.docs()).remove(filter)).map((d) => d.id);
  }

  /** Stores a session's rooms (hooks' `session.joinRoom`), so a reconnect rejoins them. */
  async setRooms(id: string, rooms: string[]): Promise<void> {
    const spec = emptyUpdate();
    spec.set = { rooms: rooms.slice(0, MAX_ROOMS) };
    await (await this.docs()).update(id, { fields: {} }, spec);
  }

  /** Removes expired sessions, at most once per sweep interval. */
  private async sweep(now: number): Promise<void> {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    try {
      await (await this.docs()).remove({ fields: { expiresAt: { $lt: now } } });
    } catch {
      // best effort: an expired session is refused on use anyway
    }
  }
}

function toSession(doc: Doc): Session {
  return {
    id: doc.id,
    uid: String(doc.uid),
    collection: String(doc.collection),
    createdAt: Number(doc.createdAt),
    lastActive: Number(doc.lastActive),
    idleMs: Number(doc.idleMs),
    rooms: Array.isArray(doc.rooms) ? doc.rooms.filter((r): r is string => typeof r === 'string') : [],
  };
}
