/**
 * One request's scope: who calls (with their login session), Deployd's internal-call recursion
 * guard and `$skipEvents`, the request as hooks see it, and its outbox. Only the pipeline makes one
 * for a request (run-request.ts); a scope for a view (real-time delivery, a write's answer) has an
 * outbox that is never released, since a view is not a request.
 */
import type { RequestIdentity } from '../auth/authenticator.js';
import type { Caller } from '../hooks/protocol.js';
import { Outbox } from './outbox.js';

export type { Caller };

export interface RequestScope {
  caller: Caller;
  /** True for requests made by the `dpd` client inside a hook. */
  internal: boolean;
  requestId: string;
  /** `METHOD /path` of the internal calls made so far in this request tree (shared, as Deployd's). */
  stack: string[];
  /** How many times one `METHOD /path` may appear on the stack (Deployd: 2). */
  limitRecursion: number;
  /** Root only: run no hooks (Deployd's `$skipEvents`). */
  skipEvents: boolean;
  /** What this request publishes: queued by hooks and collections, released only by the pipeline. */
  outbox: Outbox;
  /** The caller's login session, when logged in: its hashed id, the user and their collection. */
  session?: { id: string; uid: string; collection: string; rooms: string[] };
  /** The request as hooks see it (Deployd's `ctx.url` and `ctx.body`). */
  request?: { url: string; body: unknown };
}

/** What a transport knows of a request from outside. */
export interface RequestFacts {
  identity: RequestIdentity;
  requestId: string;
  /** `METHOD /collection`: the first entry of the recursion stack. */
  key: string;
  query: Record<string, unknown>;
  body: unknown;
  /** The path after the collection, as hooks see it. */
  url?: string;
}

export function openScope(facts: RequestFacts): RequestScope {
  const { identity, query, body } = facts;
  const { caller } = identity;
  return {
    caller,
    internal: false,
    requestId: facts.requestId,
    stack: [facts.key],
    limitRecursion: recursionLimit(query, body),
    // Root only (Deployd); anyone else's $skipEvents is ignored and the hooks run.
    skipEvents: caller.isRoot && isSkip(query.$skipEvents ?? fieldOf(body, '$skipEvents')),
    outbox: new Outbox(),
    request: { url: facts.url ?? '/', body },
    ...(identity.session ? { session: { ...identity.session, rooms: [...identity.session.rooms] } } : {}),
  };
}

/** A hook's `dpd` call: the same caller and session, flagged internal, with its own outbox. */
export function nestedScope(parent: RequestScope, call: { stack: string[]; url: string; body: unknown; skipEvents: unknown }): RequestScope {
  return {
    ...parent,
    internal: true,
    stack: call.stack,
    outbox: new Outbox(),
    request: { url: call.url, body: call.body },
    skipEvents: parent.caller.isRoot && isSkip(call.skipEvents),
  };
}

/**
 * A scope for shaping a view of a document for `caller` (the Get hook runs in it): inside `within`
 * when the view is part of a request, else a stand-alone one. Its outbox is never released.
 */
export function viewScope(caller: Caller, within?: RequestScope): RequestScope {
  const outbox = new Outbox();
  return within
    ? { ...within, outbox }
    : { caller, internal: false, requestId: 'realtime', stack: [], limitRecursion: 2, skipEvents: false, outbox };
}

/** Deployd's `$limitRecursion` (query or body) raises the internal-call recursion limit. */
export function recursionLimit(query: Record<string, unknown>, body: unknown): number {
  const n = Number(query.$limitRecursion ?? fieldOf(body, '$limitRecursion'));
  return Number.isInteger(n) && n > 0 ? Math.min(n, 16) : 2;
}

function fieldOf(body: unknown, key: string): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
}

function isSkip(value: unknown): boolean {
  return value === true || value === 'true';
}
