/**
 * The read half of the policy: what a reader may learn about a collection's documents.
 *
 * A reader sees a document as its GET would show it: the rules decide whether at all, the Get hook
 * may cancel, hide or change fields, and properties declared `"hidden": true` are removed for
 * everyone but root; secret fields (a password hash) never leave the server. Everything that
 * answers with documents goes through this view: lists, one document, count, write responses,
 * real-time frames and their replays.
 *
 * A query must not become an oracle for what the view removes, so filters and sorts are judged
 * against it:
 *   - a filter or sort on a field the reader cannot see is **refused** (400) before anything runs:
 *     secret fields (for everyone), declared hidden properties and the fields the Get hook hides by
 *     name (`hide('ssn')` in get.js, `ctx.Hide("ssn")` in get.go) for everyone but root;
 *   - as a net for what no one declared: when the Get hook hides a queried field under a computed
 *     name (reported hidden whether or not the document has it), or deletes or rewrites it, the
 *     document is left out of the answer, as if it did not match. A hook that *deletes* a field
 *     only where it exists still tells existence apart this way: declare such fields hidden.
 */
import { isDeepStrictEqual } from 'node:util';
import { Errors } from '../errors.js';
import type { Caller } from '../hooks/protocol.js';
import type { ParsedQuery } from '../query/filter.js';
import type { Filter } from '../core/filter.js';
import type { CollectionSchema } from '../core/schema.js';

/** The top-level fields a query's filter and sort look at (`a.b` counts as `a`). */
export function queriedFields(parsed: ParsedQuery): Set<string> {
  const fields = new Set<string>();
  const walk = (filter: Filter) => {
    for (const path of Object.keys(filter.fields)) fields.add(path.split('.')[0]);
    for (const branch of [...(filter.$and ?? []), ...(filter.$or ?? []), ...(filter.$nor ?? [])]) walk(branch);
  };
  walk(parsed.filter);
  for (const key of parsed.options.sort ?? []) fields.add(key.field.split('.')[0]);
  return fields;
}

/** Declared `"hidden": true` properties: in no answer to anyone but root. */
export function hiddenProperties(schema: CollectionSchema): string[] {
  return [...schema.properties.values()].filter((p) => p.hidden).map((p) => p.name);
}

/**
 * Throws 400 when a non-root reader filters or sorts on a field it cannot see. `unseen` is what the
 * collection hides (declared hidden properties and the Get hook's `hide` names).
 */
export function checkQueryable(caller: Caller, parsed: ParsedQuery, unseen: ReadonlySet<string>): void {
  if (caller.isRoot || unseen.size === 0) return;
  for (const field of queriedFields(parsed)) {
    if (unseen.has(field)) throw Errors.badQuery(`"${field}" is hidden from readers and cannot be filtered or sorted on`);
  }
}

/** The first queried field whose value the reader's view does not show as stored, if any. */
export function alteredField(stored: Record<string, unknown>, view: Record<string, unknown>, fields: ReadonlySet<string>): string | undefined {
  for (const field of fields) {
    if (field === 'id') continue;
    if (!isDeepStrictEqual(stored[field], view[field])) return field;
  }
  return undefined;
}

/** Removes the declared hidden properties from a non-root reader's view. */
export function withoutHidden<T extends Record<string, unknown>>(caller: Caller, doc: T, hidden: readonly string[]): T {
  if (caller.isRoot || hidden.length === 0 || !hidden.some((f) => f in doc)) return doc;
  const out = { ...doc };
  for (const field of hidden) delete out[field];
  return out;
}

const JS_HIDE = /\bhide\s*\(\s*(['"`])([A-Za-z_$][\w$-]*)\1\s*\)/g;
const GO_HIDE = /\.Hide\(\s*"([A-Za-z_$][\w$-]*)"\s*\)/g;

/**
 * The field names a Get hook hides by a literal name: `hide('ssn')` (JS) or `ctx.Hide("ssn")` (Go).
 * Read from the source at load, so that a query's refusal never depends on the data.
 */
export function namesHiddenBy(source: string, language: 'js' | 'go'): string[] {
  const pattern = language === 'js' ? JS_HIDE : GO_HIDE;
  const group = language === 'js' ? 2 : 1;
  return [...source.matchAll(pattern)].map((m) => m[group]);
}
