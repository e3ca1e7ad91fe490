/**
 * The write half of the policy. A write is judged on its effective change: the update is applied
 * to the stored document first, and the decision is taken on which fields differ between before
 * and after — never on the body's shape. A plain body, per-field commands (`{"owner":{"$set":…}}`),
 * MongoDB-style commands (`{"$set":{"owner":…}}`, `$unset`, …), a BeforeRequest hook that rewrote the
 * body, and a hook's `dpd` call all arrive here as the same before/after pair.
 *
 * Protected fields, under every form:
 *   id                 never changes (the store's key)
 *   createdAt/updatedAt set by the server only (dropped from bodies before they get here)
 *   the owner field    on a collection with an `owner` rule: set from the caller on create; only
 *                      root may change it afterwards
 *   username/password  on a users collection: only that user (by their own session — never an id
 *                      in the body), root, or a hook's `dpd` call may change them; from anyone else
 *                      the change is dropped silently, as in Deployd (the rest of the update applies)
 */
import { isDeepStrictEqual } from 'node:util';
import { Errors } from '../errors.js';
import type { Caller } from '../hooks/protocol.js';
import type { Filter } from '../core/filter.js';
import type { CollectionSchema } from '../core/schema.js';
import type { Doc } from '../core/document.js';
import type { UpdateSpec } from '../core/update.js';
import { userIdOf } from './rules.js';

/** Who writes, as far as the write policy cares. */
export interface Writer {
  caller: Caller;
  /** A `dpd` call made by a hook (the app's own code): it may change credentials. */
  internal: boolean;
  /** The user whose session makes the request, when that session belongs to this collection. */
  sessionUserId?: string;
}

const SERVER_MANAGED = ['id', 'createdAt', 'updatedAt'];

/** The fields a users collection logs in with. */
export const CREDENTIAL_FIELDS = ['username', 'password'] as const;

/** Whether the collection stamps an owner on its documents (it has an `owner` rule). */
export function ownsDocuments(schema: CollectionSchema): boolean {
  return Object.values(schema.rules).includes('owner') && schema.ownerField !== 'id';
}

/** Fields a hook's changes may never touch (their stored value always wins). */
export function protectedFields(schema: CollectionSchema): string[] {
  return ownsDocuments(schema) ? ['id', schema.ownerField] : ['id'];
}

/** Every field an update spec touches, whatever the command. */
export function touchedFields(spec: UpdateSpec): Set<string> {
  return new Set([
    ...Object.keys(spec.set), ...spec.unset, ...Object.keys(spec.inc),
    ...Object.keys(spec.push), ...Object.keys(spec.pull), ...Object.keys(spec.addUnique),
  ]);
}

/**
 * The fields whose value the update changes. `alwaysChanged` (a password: its new hash never equals
 * the old one) counts as changed whenever the spec touches it.
 */
export function effectiveChange(before: Doc, after: Doc, spec: UpdateSpec, alwaysChanged: readonly string[] = []): string[] {
  return [...touchedFields(spec)].filter((field) => alwaysChanged.includes(field) || !isDeepStrictEqual(before[field], after[field]));
}

/**
 * The choke point for updates, called with the fields the update changes in the stored document:
 * throws 403 for a change nobody but root may make, and returns the credential fields this writer
 * may not change — the caller leaves them out of the update (Deployd drops them silently).
 */
export function authorizeUpdate(schema: CollectionSchema, writer: Writer, before: Doc, changed: readonly string[]): string[] {
  const { caller } = writer;
  const dropped: string[] = [];
  for (const field of changed) {
    // Bodies never carry these (they are dropped while reading them); checked here all the same,
    // so that the guarantee does not rest on the parser.
    if (SERVER_MANAGED.includes(field)) throw Errors.forbidden(`"${field}" is set by the server and cannot be changed`);
    if (caller.isRoot) continue;
    if (ownsDocuments(schema) && field === schema.ownerField) {
      throw Errors.forbidden(`"${field}" names the document's owner and cannot be changed`);
    }
    if (schema.kind === 'UserCollection' && (CREDENTIAL_FIELDS as readonly string[]).includes(field) && !mayChangeCredentials(writer, before.id)) {
      dropped.push(field);
    }
  }
  return dropped;
}

/** The creator becomes the owner; only root may name another. */
export function stampOwner<T extends Record<string, unknown>>(schema: CollectionSchema, caller: Caller, doc: T): T {
  if (!ownsDocuments(schema) || caller.isRoot) return doc;
  return { ...doc, [schema.ownerField]: userIdOf(caller) ?? null };
}

/** Only the user themselves (by their session), root, or a hook. */
function mayChangeCredentials(writer: Writer, userId: string): boolean {
  return writer.caller.isRoot || writer.internal || writer.sessionUserId === userId;
}

/** The writer of a request: its caller, whether a hook's `dpd` call makes it, and its own session's user. */
export function writerOf(schema: CollectionSchema, caller: Caller, internal: boolean, session?: { collection: string; uid: string }): Writer {
  const own = session?.collection === schema.name ? session.uid : undefined;
  return { caller, internal, ...(own ? { sessionUserId: own } : {}) };
}

/**
 * When a non-root update names the owner field (with its current value, or it was refused), the
 * store checks that value again as it writes: an owner changed meanwhile is not overwritten.
 */
export function ownerUnchanged(schema: CollectionSchema, caller: Caller, stored: Doc, spec: UpdateSpec): Filter | undefined {
  const owner = schema.ownerField;
  if (caller.isRoot || !ownsDocuments(schema) || !touchedFields(spec).has(owner)) return undefined;
  return { fields: { [owner]: { $eq: (stored[owner] ?? null) as string | null } } };
}
