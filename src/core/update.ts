/**
 * Update commands (`$inc $push $pushAll $pull $pullAll $addUnique $set $unset`), shared by every
 * store: a store that cannot express them natively applies them with `applyUpdate` inside its
 * own transaction, against the stored version of the document.
 */
import { isDeepStrictEqual } from 'node:util';
import { Errors } from '../errors.js';
import type { Doc } from './document.js';

/**
 * Changes to one document, applied atomically by the store against the stored version
 * (so 50 concurrent `$inc` end at exactly +50).
 */
export interface UpdateSpec {
  set: Record<string, unknown>;
  unset: string[];
  inc: Record<string, number>;
  push: Record<string, unknown[]>;
  pull: Record<string, unknown[]>;
  addUnique: Record<string, unknown[]>;
}

export function emptyUpdate(): UpdateSpec {
  return { set: {}, unset: [], inc: {}, push: {}, pull: {}, addUnique: {} };
}

export function applyUpdate(stored: Doc, spec: UpdateSpec): Doc {
  const doc: Doc = { ...stored };
  for (const key in spec.set) doc[key] = spec.set[key];
  // Most bodies only set fields: the commands below cost nothing then (no entry arrays per request).
  if (onlySets(spec)) return doc;
  for (const key of spec.unset) delete doc[key];
  for (const [key, amount] of Object.entries(spec.inc)) {
    const current = doc[key];
    if (current !== undefined && current !== null && typeof current !== 'number') {
      throw Errors.badRequest(`cannot $inc "${key}": it holds a ${typeof current}, not a number`);
    }
    const sum = ((current as number | null | undefined) ?? 0) + amount;
    // JSON has no Infinity: an overflowing $inc would silently store null.
    if (!Number.isFinite(sum)) throw Errors.badRequest(`cannot $inc "${key}": the result is not a finite number`);
    doc[key] = sum;
  }
  for (const [key, items] of Object.entries(spec.push)) doc[key] = [...arrayAt(doc, key, '$push'), ...items];
  for (const [key, items] of Object.entries(spec.pull)) {
    doc[key] = arrayAt(doc, key, '$pull').filter((el) => !items.some((item) => isDeepStrictEqual(el, item)));
  }
  for (const [key, items] of Object.entries(spec.addUnique)) {
    const list = [...arrayAt(doc, key, '$addUnique')];
    for (const item of items) if (!list.some((el) => isDeepStrictEqual(el, item))) list.push(item);
    doc[key] = list;
  }
  return doc;
}

function arrayAt(doc: Doc, key: string, command: string): unknown[] {
  const current = doc[key];
  if (current === undefined || current === null) return [];
  if (!Array.isArray(current)) throw Errors.badRequest(`cannot ${command} "${key}": it is not an array`);
  return current;
}

/** Whether the spec does nothing but `$set` (a create's body, most updates). */
export function onlySets(spec: UpdateSpec): boolean {
  return spec.unset.length === 0 && isEmptyRecord(spec.inc) && isEmptyRecord(spec.push) && isEmptyRecord(spec.pull) && isEmptyRecord(spec.addUnique);
}

function isEmptyRecord(record: object): boolean {
  for (const _ in record) return false;
  return true;
}

export function hasChanges(spec: UpdateSpec): boolean {
  return Object.keys(spec.set).length > 0 || spec.unset.length > 0 || Object.keys(spec.inc).length > 0
    || Object.keys(spec.push).length > 0 || Object.keys(spec.pull).length > 0 || Object.keys(spec.addUnique).length > 0;
}

/** The spec without any command on `fields`. */
export function withoutFields(spec: UpdateSpec, fields: readonly string[]): UpdateSpec {
  if (fields.length === 0) return spec;
  const keep = <T>(record: Record<string, T>) => Object.fromEntries(Object.entries(record).filter(([field]) => !fields.includes(field)));
  return {
    set: keep(spec.set), unset: spec.unset.filter((field) => !fields.includes(field)), inc: keep(spec.inc),
    push: keep(spec.push), pull: keep(spec.pull), addUnique: keep(spec.addUnique),
  };
}
