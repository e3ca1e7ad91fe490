/**
 * The shape of a query once validated: a normalized Mongo-style filter, sort keys, paging and a
 * projection. `query/` builds these from what callers send; every store and the read policy consume
 * them. Nothing here knows about HTTP, stores or hooks.
 */

export type Literal = string | number | boolean | null | Literal[] | { [key: string]: Literal };

export interface Operators {
  $eq?: Literal;
  $ne?: Literal;
  $gt?: string | number;
  $gte?: string | number;
  $lt?: string | number;
  $lte?: string | number;
  $in?: Literal[];
  $nin?: Literal[];
  $all?: Literal[];
  $exists?: boolean;
  $size?: number;
  $regex?: string;
  $options?: string;
  $not?: Operators;
  /** Either a filter over object elements or operators over scalar elements. */
  $elemMatch?: { filter: Filter } | { operators: Operators };
}

export interface Filter {
  fields: Record<string, Operators>;
  $or?: Filter[];
  $and?: Filter[];
  $nor?: Filter[];
}

export interface Projection {
  mode: 'include' | 'exclude';
  fields: string[];
  /** `{"id":0}`: the one exclusion allowed alongside inclusions. */
  excludeId: boolean;
}

export interface SortKey {
  field: string;
  direction: 1 | -1;
}

export interface FindOptions {
  sort?: SortKey[];
  limit?: number;
  skip?: number;
}

/** Applies a projection to a document (include mode always keeps `id`). */
export function project<T extends Record<string, unknown>>(doc: T, projection: Projection | undefined): T {
  if (!projection) return doc;
  if (projection.mode === 'include') {
    const out: Record<string, unknown> = {};
    if (!projection.excludeId) out.id = doc.id;
    for (const field of projection.fields) copyPath(doc, out, field);
    return out as T;
  }
  const out = structuredClone(doc) as Record<string, unknown>;
  for (const field of projection.fields) deletePath(out, field);
  if (projection.excludeId) delete out.id;
  return out as T;
}

function copyPath(from: Record<string, unknown>, to: Record<string, unknown>, path: string): void {
  const parts = path.split('.');
  let src: unknown = from;
  for (const p of parts) {
    if (!isPlainObject(src) || !(p in src)) return;
    src = src[p];
  }
  let dst = to;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i];
    if (!isPlainObject(dst[p])) dst[p] = {};
    dst = dst[p] as Record<string, unknown>;
  }
  dst[parts[parts.length - 1]] = src;
}

function deletePath(obj: Record<string, unknown>, path: string): void {
  const parts = path.split('.');
  let cur: unknown = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    if (!isPlainObject(cur)) return;
    cur = cur[parts[i]];
  }
  if (isPlainObject(cur)) delete cur[parts[parts.length - 1]];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
