/**
 * Declarative access rules (config.json `"rules"`): who may read, create, update and delete.
 *   anyone  everybody (Deployd's behaviour, the default)
 *   users   a logged-in user
 *   owner   the user named by the document's owner field (set from the caller on create)
 *   root    the master key only
 * Root passes every rule. A refusal is 401 for an anonymous caller and 403 for anyone else, except
 * that a document the caller may not read is "not found" (404), exactly as one that does not exist.
 */
import { Errors, type DeploydError } from '../errors.js';
import type { Caller } from '../hooks/protocol.js';
import type { Filter } from '../core/filter.js';
import type { CollectionSchema, RuleAction } from '../core/schema.js';

export function userIdOf(caller: Caller): string | undefined {
  const id = caller.me?.id;
  return !caller.isRoot && typeof id === 'string' ? id : undefined;
}

export function denied(caller: Caller, action: string, why: string): DeploydError {
  return caller.me === null && !caller.isRoot
    ? Errors.unauthorized(`log in to ${action} here: ${why}`)
    : Errors.forbidden(`not allowed to ${action} here: ${why}`);
}

/**
 * Checks the rule that does not depend on a document (throws when the caller can never pass) and
 * returns the filter that limits the action to the caller's documents, for an `owner` rule.
 */
export function ruleFilter(schema: CollectionSchema, caller: Caller, action: RuleAction): Filter | undefined {
  if (caller.isRoot) return undefined;
  switch (schema.rules[action]) {
    case 'anyone':
      return undefined;
    case 'users':
      if (!userIdOf(caller)) throw denied(caller, action, 'only for logged-in users');
      return undefined;
    case 'root':
      throw denied(caller, action, 'only with the master key');
    case 'owner': {
      const uid = userIdOf(caller);
      if (!uid) throw denied(caller, action, 'only for the owner');
      return { fields: { [schema.ownerField]: { $eq: uid } } };
    }
  }
}

/** Whether the caller passes the rule for `action` on this document (never throws). */
export function allows(schema: CollectionSchema, caller: Caller, action: RuleAction, doc: Record<string, unknown>): boolean {
  try {
    return !ruleFilter(schema, caller, action) || doc[schema.ownerField] === userIdOf(caller);
  } catch {
    return false;
  }
}

/** For real-time delivery and responses: whether the rules let the caller read the document. */
export function mayRead(schema: CollectionSchema, caller: Caller, doc: Record<string, unknown>): boolean {
  return allows(schema, caller, 'read', doc);
}

/**
 * Throws unless the caller may act on this stored document: 404 when it may not even read it
 * (so "not yours" and "does not exist" cannot be told apart), 401/403 when it may read but not act.
 */
export function checkDocument(schema: CollectionSchema, caller: Caller, action: RuleAction, doc: Record<string, unknown>): void {
  if (allows(schema, caller, action, doc)) return;
  if (action === 'read' || !mayRead(schema, caller, doc)) throw Errors.notFound();
  throw denied(caller, action, 'only for the owner');
}

export function andFilter(a: Filter, b: Filter | undefined): Filter {
  if (!b) return a;
  const empty = Object.keys(a.fields).length === 0 && !a.$and && !a.$or && !a.$nor;
  return empty ? b : { fields: {}, $and: [a, b] };
}
