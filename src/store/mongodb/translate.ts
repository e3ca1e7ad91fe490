/**
 * Translates a normalized filter, sort and update spec into MongoDB's own query language. The
 * filter language *is* MongoDB's, so this is mostly renaming: `id` ↔ `_id` at the top level, the
 * store's hidden fields kept out of reach, and regex flags MongoDB does not know dropped.
 */
import type { Filter, Literal, Operators } from '../../core/filter.js';
import type { SortKey } from '../../core/filter.js';
import type { UpdateSpec } from '../../core/update.js';

/** Insertion order: SQLite's rowid, which MongoDB has no equivalent of (natural order is unspecified). */
export const ORDER_FIELD = '_dpd_order';
/** Bumped by every write: the compare-and-swap guard of updates that cannot be expressed natively. */
export const VERSION_FIELD = '_dpd_v';
/** A field that never exists: queries and sorts on the hidden fields see them as missing, as on SQLite. */
const NO_FIELD = '_dpd_none';
export const HIDDEN = { [ORDER_FIELD]: 0, [VERSION_FIELD]: 0 } as const;

export type MongoQuery = Record<string, unknown>;

export function toMongoFilter(filter: Filter, topLevel = true): MongoQuery {
  const out: MongoQuery = {};
  const and: MongoQuery[] = [];
  for (const [path, ops] of Object.entries(filter.fields)) {
    const field = topLevel ? storedPath(path) : path;
    // Two conditions on the same stored path (e.g. a hidden field twice) must not overwrite each other.
    if (field in out) and.push({ [field]: toMongoOperators(ops) });
    else out[field] = toMongoOperators(ops);
  }
  if (filter.$and) and.push(...filter.$and.map((f) => toMongoFilter(f, topLevel)));
  if (filter.$or) out.$or = filter.$or.map((f) => toMongoFilter(f, topLevel));
  if (filter.$nor) out.$nor = filter.$nor.map((f) => toMongoFilter(f, topLevel));
  if (and.length > 0) out.$and = and;
  return out;
}

function toMongoOperators(ops: Operators): MongoQuery {
  const out: MongoQuery = {};
  for (const [op, operand] of Object.entries(ops) as Array<[keyof Operators, unknown]>) {
    if (operand === undefined) continue;
    switch (op) {
      case '$not':
        out.$not = toMongoOperators(operand as Operators);
        break;
      case '$elemMatch': {
        const match = operand as NonNullable<Operators['$elemMatch']>;
        // Paths inside $elemMatch are relative to the element: `id` there is an ordinary field.
        out.$elemMatch = 'filter' in match ? toMongoFilter(match.filter, false) : toMongoOperators(match.operators);
        break;
      }
      case '$options':
        // `u` is JavaScript's; MongoDB's regexes are always Unicode-aware.
        out.$options = (operand as string).replace(/u/g, '');
        break;
      default:
        out[op] = operand as Literal;
    }
  }
  return out;
}

/** The stored name of a top-level path: `id` is `_id`; the hidden fields are never visible. */
export function storedPath(path: string): string {
  if (path === 'id') return '_id';
  const head = path.split('.')[0];
  if (head === '_id' || head.startsWith('_dpd_')) return NO_FIELD;
  return path;
}

/** MongoDB's sort order is the one SQLite emulates; insertion order breaks ties, as rowid does there. */
export function toMongoSort(sort: SortKey[] | undefined): Record<string, 1 | -1> {
  const out: Record<string, 1 | -1> = {};
  for (const { field, direction } of sort ?? []) {
    const stored = storedPath(field);
    if (!(stored in out)) out[stored] = direction;
  }
  if (!(ORDER_FIELD in out)) out[ORDER_FIELD] = 1;
  return out;
}

/**
 * Native atomic operators for a spec, or null when the spec touches one field with more than one
 * command (`{"$push":…,"$pull":…}` on `tags`): MongoDB refuses such conflicts, and the order in which
 * `applyUpdate` applies them is then what counts.
 */
export function toMongoUpdate(spec: UpdateSpec): MongoQuery | null {
  const seen = new Set<string>();
  const claim = (field: string) => {
    if (seen.has(field) || field === 'id' || field.startsWith('_dpd_') || field.startsWith('$') || field.includes('.')) return false;
    seen.add(field);
    return true;
  };
  const update: Record<string, Record<string, unknown>> = {};
  const add = (op: string, field: string, value: unknown) => {
    (update[op] ??= {})[field] = value;
  };
  for (const [field, value] of Object.entries(spec.set)) {
    if (!claim(field)) return null;
    add('$set', field, value);
  }
  for (const field of spec.unset) {
    if (!claim(field)) return null;
    add('$unset', field, '');
  }
  for (const [field, amount] of Object.entries(spec.inc)) {
    // Near Number.MAX_VALUE a sum may overflow to Infinity, which applyUpdate refuses and MongoDB stores.
    if (!claim(field) || Math.abs(amount) >= 1e291) return null;
    add('$inc', field, amount);
  }
  for (const [field, items] of Object.entries(spec.push)) {
    if (!claim(field)) return null;
    add('$push', field, { $each: items });
  }
  // applyUpdate compares objects whatever their key order; BSON would not: such items go through it.
  const structured = (items: unknown[]) => items.some((item) => typeof item === 'object' && item !== null);
  for (const [field, items] of Object.entries(spec.pull)) {
    if (!claim(field) || structured(items)) return null;
    add('$pullAll', field, items); // exact (deep) equality per element, as applyUpdate; `$pull` would read items as conditions
  }
  for (const [field, items] of Object.entries(spec.addUnique)) {
    if (!claim(field) || structured(items)) return null;
    add('$addToSet', field, { $each: items });
  }
  add('$inc', VERSION_FIELD, 1);
  return update;
}

/**
 * Conditions under which the native operators do exactly what `applyUpdate` does: `$pullAll` on a
 * missing or null field is a no-op in MongoDB but leaves `[]` in applyUpdate. Documents that fail
 * the guard take the compare-and-swap path.
 */
export function nativeGuard(spec: UpdateSpec): MongoQuery[] {
  return Object.keys(spec.pull).map((field) => ({ [field]: { $type: 'array' } }));
}
