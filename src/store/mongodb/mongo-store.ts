/**
 * The MongoDB store (`--db mongodb://…`): one MongoDB collection per app collection, `id` stored
 * as `_id`, updates as native atomic operators. Results are the SQLite store's, checked by
 * test/store-conformance.test.ts.
 *
 * The server never waits on MongoDB to start: unreachable at start or lost later, the store says
 * `down` (GET /health), every operation answers 503 DPD_ERR_STORE_UNAVAILABLE at once, and the
 * driver's monitor notices when MongoDB is back (indexes are then ensured before the first use).
 */
import { MongoClient, MongoServerError, ObjectId, type Collection as MongoCollection, type Db, type Document } from 'mongodb';
import { indexedProperties, type CollectionSchema, type PropertyDef } from '../../core/schema.js';
import { applyUpdate } from '../../core/update.js';
import { DeploydError, Errors, uniqueViolation } from '../../errors.js';
import type { Filter } from '../../core/filter.js';
import type { CollectionStore, Store, StoreStatus } from '../store.js';
import type { Doc } from '../../core/document.js';
import type { FindOptions } from '../../core/filter.js';
import type { UpdateSpec } from '../../core/update.js';
import { HIDDEN, nativeGuard, ORDER_FIELD, toMongoFilter, toMongoSort, toMongoUpdate, VERSION_FIELD, type MongoQuery } from './translate.js';
import { driverDefaults, isUnavailable, mongoCollectionName, redactUrl } from './connection.js';

export interface MongoStoreOptions {
  url: string;
  /** Told when the store goes down (warn) or comes up (info); never with credentials. */
  log?: (level: 'info' | 'warn', message: string) => void;
  /** Wait between connection attempts while MongoDB was never reached. */
  retryMs?: number;
}

const BAD_VALUE = 2;
const BAD_REGEX = 51091;
const NOT_IMPLEMENTED = 238;
/** IndexOptionsConflict, IndexKeySpecsConflict. */
const INDEX_CONFLICT = new Set([85, 86]);
/** Duplicate key: MongoDB's E11000. */
const DUPLICATE_KEY = 11000;
/** Write errors that applyUpdate explains better (TypeMismatch, BadValue: $inc on a string, $push on null). */
const UPDATE_REFUSED = new Set([2, 14]);
/** Compare-and-swap attempts before a hot document's update gives up with 503. */
const CAS_ATTEMPTS = 50;

export class MongoStore implements Store {
  readonly description: string;
  private readonly client: MongoClient;
  private readonly db: Db;
  private readonly log: (level: 'info' | 'warn', message: string) => void;
  private readonly retryMs: number;
  /** The latest handle per collection (a reloaded config replaces it), re-indexed on reconnection. */
  private readonly collections = new Map<string, MongoCollectionStore>();
  private up = false;
  private told = false;
  private closed = false;
  /** Settles once the first connection attempt has (start-up requests wait for it, briefly). */
  private readonly firstAttempt: Promise<void>;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(options: MongoStoreOptions) {
    this.description = redactUrl(options.url);
    this.log = options.log ?? (() => {});
    this.retryMs = options.retryMs ?? 1000;
    this.client = new MongoClient(options.url, { ...driverDefaults(options.url), ignoreUndefined: true });
    this.db = this.client.db();
    // After the first attempt, the driver's monitor says when servers are lost and found again.
    this.client.on('topologyDescriptionChanged', (event) => { if (this.told) this.setUp(event.newDescription.hasKnownServers); });
    this.firstAttempt = this.connect();
  }

  status(): StoreStatus {
    return this.up ? 'up' : 'down';
  }

  async collection(schema: CollectionSchema): Promise<CollectionStore> {
    const handle = new MongoCollectionStore(this, schema, this.db.collection<Stored>(mongoCollectionName(schema.name)));
    this.collections.set(schema.name, handle);
    await this.firstAttempt;
    // Reachable now: a unique index that existing data violates is a config error at load, as on SQLite.
    if (this.up) await handle.ready().catch((err) => { if (!isUnavailable(err)) throw err; });
    return handle;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.client.close();
  }

  /** Throws 503 at once while MongoDB is known to be unreachable. */
  async available(): Promise<void> {
    await this.firstAttempt;
    if (!this.up) throw Errors.storeUnavailable();
  }

  /** Maps driver errors to coded errors (503 for every sign of an unreachable server). */
  fail(err: unknown): never {
    if (err instanceof DeploydError) throw err;
    if (isUnavailable(err)) throw Errors.storeUnavailable();
    if (err instanceof MongoServerError) {
      // A query the server cannot run (FerretDB's gaps, see test/MONGODB.md) or refuses (a pattern PCRE rejects).
      if (err.code === NOT_IMPLEMENTED) throw Errors.notImplemented(`the MongoDB server cannot run this: ${err.message}`);
      if (err.code === BAD_REGEX) throw Errors.badQuery(err.message);
      if (err.code === BAD_VALUE) throw Errors.badRequest(`the MongoDB server refused this: ${err.message}`);
    }
    throw err;
  }

  private async connect(): Promise<void> {
    try {
      await this.client.connect();
      await this.db.command({ ping: 1 });
      this.setUp(true);
    } catch (err) {
      this.setUp(false, err);
      // Until the first success the driver has no monitor of its own: retry here.
      if (!this.closed) this.retryTimer = setTimeout(() => void this.connect(), this.retryMs).unref();
    }
  }

  private setUp(up: boolean, err?: unknown): void {
    if (up === this.up && this.told) return;
    this.up = up;
    this.told = true; // so that "unreachable at start" is said once too
    if (up) {
      this.log('info', `MongoDB store is up (${this.description})`);
      for (const handle of this.collections.values()) handle.reconnected();
    } else {
      this.log('warn', `MongoDB store is down (${this.description})${err ? `: ${(err as Error).message}` : ''}`);
    }
  }
}

class MongoCollectionStore implements CollectionStore {
  private readonly uniqueFields: PropertyDef[];
  private indexes: Promise<void> | undefined;

  constructor(private readonly store: MongoStore, private readonly schema: CollectionSchema, private readonly native: MongoCollection<Stored>) {
    this.uniqueFields = indexedProperties(schema).filter((p) => p.unique);
  }

  /** Indexes are ensured once per connection (idempotently: createIndex of an existing one is a no-op). */
  ready(): Promise<void> {
    this.indexes ??= this.ensureIndexes().catch((err) => {
      this.indexes = undefined; // try again on the next use
      throw err;
    });
    return this.indexes;
  }

  reconnected(): void {
    this.indexes = undefined;
  }

  private async ensureIndexes(): Promise<void> {
    await this.native.createIndex({ [ORDER_FIELD]: 1 }, { name: 'dpd_order' });
    const existing = await this.native.listIndexes().toArray();
    for (const prop of indexedProperties(this.schema)) {
      const name = `${prop.unique ? 'ux' : 'ix'}_${prop.name}`;
      // An index of that name made otherwise (by hand, by an older version) is replaced: FerretDB
      // would silently keep it, MongoDB refuses the createIndex (caught below).
      const found = existing.find((index) => index.name === name);
      if (found && (Boolean(found.unique) !== prop.unique || JSON.stringify(found.key) !== JSON.stringify({ [prop.name]: 1 }))) {
        await this.native.dropIndex(name);
      }
      try {
        await this.createIndex(prop, name).catch(async (err) => {
          // Same name and key, other options (e.g. not partial): MongoDB's IndexOptionsConflict.
          if (!(err instanceof MongoServerError) || !INDEX_CONFLICT.has(err.code as number)) throw err;
          await this.native.dropIndex(name);
          await this.createIndex(prop, name);
        });
      } catch (err) {
        if (err instanceof MongoServerError && err.code === DUPLICATE_KEY) {
          throw Errors.configInvalid(`cannot make "${prop.name}" unique in ${this.schema.name}: existing documents share a value`);
        }
        throw err;
      }
    }
  }

  /**
   * A unique index that, as SQLite's, ignores documents where the value is missing or null
   * (MongoDB would otherwise allow only one of them). FerretDB has no partial indexes, and its
   * unique indexes already ignore missing values (see test/MONGODB.md).
   */
  private async createIndex(prop: PropertyDef, name: string): Promise<void> {
    if (!prop.unique) {
      await this.native.createIndex({ [prop.name]: 1 }, { name });
      return;
    }
    try {
      await this.native.createIndex({ [prop.name]: 1 }, { name, unique: true, partialFilterExpression: { [prop.name]: { $type: bsonType(prop) } } });
    } catch (err) {
      if (!(err instanceof MongoServerError) || err.codeName !== 'NotImplemented') throw err;
      await this.native.createIndex({ [prop.name]: 1 }, { name, unique: true });
    }
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.store.available();
    try {
      await this.ready();
      return await fn();
    } catch (err) {
      return this.store.fail(err);
    }
  }

  async find(filter: Filter, options: FindOptions = {}): Promise<Doc[]> {
    if (options.limit === 0) return []; // as SQLite's LIMIT 0 (MongoDB reads limit 0 as "no limit")
    return this.run(async () => {
      let cursor = this.native.find(toMongoFilter(filter), { projection: HIDDEN, sort: toMongoSort(options.sort) });
      if (options.skip) cursor = cursor.skip(options.skip);
      if (options.limit !== undefined) cursor = cursor.limit(options.limit);
      return (await cursor.toArray()).map(toDoc);
    });
  }

  async count(filter: Filter): Promise<number> {
    return this.run(() => this.native.countDocuments(toMongoFilter(filter)));
  }

  async insert(doc: Doc): Promise<Doc> {
    const { id, ...data } = doc;
    return this.run(async () => {
      try {
        await this.native.insertOne({ _id: id, [ORDER_FIELD]: new ObjectId(), ...data });
      } catch (err) {
        throw await this.explainDuplicate(err, doc, id, true);
      }
      return doc;
    });
  }

  /**
   * Writes to one document from this process, one at a time. MongoDB does not need it (its
   * operators are atomic); FerretDB v1 applies findAndModify as read-then-write, and would lose
   * concurrent `$inc`s without it (test/MONGODB.md).
   */
  private readonly writing = new Map<string, Promise<unknown>>();

  private serialized<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.writing.get(id) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.catch(() => {});
    this.writing.set(id, settled);
    void settled.then(() => { if (this.writing.get(id) === settled) this.writing.delete(id); });
    return next;
  }

  async update(id: string, filter: Filter, spec: UpdateSpec): Promise<Doc | null> {
    return this.run(() => this.serialized(id, async () => {
      const match = { $and: [{ _id: id }, toMongoFilter(filter)] } as MongoQuery;
      const update = toMongoUpdate(spec);
      if (update) {
        const guard = nativeGuard(spec);
        try {
          const after = await this.native.findOneAndUpdate(guard.length ? { $and: [match, ...guard] } : match, update, { returnDocument: 'after' });
          if (after) return toDoc(after);
          if (guard.length === 0) return null; // not there, or does not match the filter
        } catch (err) {
          if (!(err instanceof MongoServerError && UPDATE_REFUSED.has(err.code as number))) throw await this.explainDuplicate(err, spec.set, id, false);
        }
      }
      return this.compareAndSwap(match, spec);
    }));
  }

  /**
   * Read, apply the commands with `applyUpdate` (SQLite's semantics and error messages), write back
   * only if nobody wrote in between (the version field), else retry.
   */
  private async compareAndSwap(match: MongoQuery, spec: UpdateSpec): Promise<Doc | null> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const stored = await this.native.findOne(match);
      if (!stored) return null;
      const { _id, [ORDER_FIELD]: order, [VERSION_FIELD]: version, ...rest } = stored;
      const updated = applyUpdate({ id: String(_id), ...rest } as Doc, spec);
      const { id, ...data } = updated;
      const replacement = { [ORDER_FIELD]: order, [VERSION_FIELD]: ((version as number | undefined) ?? 0) + 1, ...data };
      try {
        const result = await this.native.replaceOne({ _id, [VERSION_FIELD]: version ?? { $exists: false } }, replacement);
        if (result.matchedCount === 1) return updated;
      } catch (err) {
        throw await this.explainDuplicate(err, data, id, false);
      }
    }
    throw Errors.storeBusy();
  }

  async remove(filter: Filter): Promise<Doc[]> {
    return this.run(async () => {
      const query = toMongoFilter(filter);
      const found = await this.native.find(query, { projection: { _id: 1 }, sort: { [ORDER_FIELD]: 1 } }).toArray();
      // Each one deleted only if it still matches: what is returned is what was really removed.
      const removed = await Promise.all(found.map((d) => this.native.findOneAndDelete({ $and: [{ _id: d._id }, query] })));
      return removed.filter((d): d is NonNullable<typeof d> => d !== null).map(toDoc);
    });
  }

  /**
   * E11000 → 409 naming the field. MongoDB says which index; FerretDB does not, so the field is
   * found by looking for another document holding the value that was being written.
   */
  private async explainDuplicate(err: unknown, written: Record<string, unknown>, selfId: string, inserting: boolean): Promise<unknown> {
    if (!isDuplicateKey(err)) return err;
    const pattern = err.keyPattern && Object.keys(err.keyPattern).length ? Object.keys(err.keyPattern)[0] : /index: (?:ux_)?(\S+)/.exec(err.message)?.[1];
    if (pattern === '_id' || pattern === '_id_') return uniqueViolation('id');
    const named = this.uniqueFields.find((p) => p.name === pattern);
    if (named) return uniqueViolation(named.name);
    if (inserting && (await this.native.countDocuments({ _id: selfId }, { limit: 1 })) > 0) return uniqueViolation('id');
    for (const prop of this.uniqueFields) {
      const value = written[prop.name];
      if (value === undefined || value === null) continue;
      if ((await this.native.countDocuments({ [prop.name]: value, _id: { $ne: selfId } }, { limit: 1 })) > 0) return uniqueViolation(prop.name);
    }
    return uniqueViolation(this.uniqueFields[0]?.name ?? 'id');
  }
}

/** E11000; FerretDB's updates report their SQLite backend's constraint error instead. */
function isDuplicateKey(err: unknown): err is MongoServerError {
  return err instanceof MongoServerError && (err.code === DUPLICATE_KEY || /UNIQUE constraint failed/.test(err.message));
}

/** A document as MongoDB holds it: Deployd's string id as `_id`. */
type Stored = { _id: string } & Document;

/** FerretDB cannot project findAndModify results, so the hidden fields are dropped here too. */
function toDoc(stored: Document): Doc {
  const { _id, [ORDER_FIELD]: _order, [VERSION_FIELD]: _version, ...rest } = stored;
  return { id: String(_id), ...rest } as Doc;
}

function bsonType(prop: PropertyDef): string {
  return prop.type === 'number' ? 'number' : prop.type === 'boolean' ? 'bool' : 'string';
}
