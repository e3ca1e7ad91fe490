/**
 * The storage boundary. A store persists documents of one collection and answers Mongo-style
 * filters (already validated and coerced by `query/normalize`) with identical results on every
 * backend: SQLite (embedded, default) and MongoDB (when DATABASE_URL says so).
 */
import type { Doc } from '../core/document.js';
import type { Filter, FindOptions } from '../core/filter.js';
import type { CollectionSchema } from '../core/schema.js';
import type { UpdateSpec } from '../core/update.js';


export interface CollectionStore {
  find(filter: Filter, options?: FindOptions): Promise<Doc[]>;
  /** Optional fast path: the result of `find` as JSON text (`id` first in each document). */
  findJson?(filter: Filter, options?: FindOptions): Promise<string>;
  count(filter: Filter): Promise<number>;
  insert(doc: Doc): Promise<Doc>;
  /** Updates the one document with `id` that also matches `filter`; null when none matches. */
  update(id: string, filter: Filter, spec: UpdateSpec): Promise<Doc | null>;
  /** Removes every document matching `filter` and returns what was removed. */
  remove(filter: Filter): Promise<Doc[]>;
}

/** `down`: the database cannot be reached now; operations answer 503 until it is back. */
export type StoreStatus = 'up' | 'down';

export interface Store {
  /** Human-readable location, for the start-up line (never contains credentials). */
  readonly description: string;
  /** For GET /health: answered from what the store already knows, without a round trip. */
  status(): StoreStatus;
  /** Prepares storage for a collection (tables, indexes) and returns its handle. */
  collection(schema: CollectionSchema): Promise<CollectionStore>;
  close(): Promise<void>;
}
