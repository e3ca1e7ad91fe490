/**
 * Maps a request on a collection (method, path segments after the collection, query, body) onto
 * the collection's operations. Shared by the REST routes and the `dpd` client inside hooks, so
 * both behave identically.
 */
import { Errors } from '../errors.js';
import type { Answer } from '../pipeline/answer.js';
import type { RequestScope } from '../pipeline/request-scope.js';
import type { Collection } from './collection.js';
import { requireObjectBody } from '../core/document.js';
import { isPlausibleId } from '../core/id.js';
import { UserCollection } from './user-collection.js';

export interface CollectionRequest {
  method: string;
  /** URL segments after the collection's path. */
  rest: string[];
  query: Record<string, unknown>;
  /** 'json' when the query arrived as typed JSON (whole-query JSON, POST /query, dpd). */
  source: 'url' | 'json';
  body: unknown;
  /** The client's address (login throttling); absent for hooks' `dpd` calls. */
  address?: string;
}

export function dispatch(collection: Collection, scope: RequestScope, request: CollectionRequest): Promise<Answer> {
  return collection.track(() => route(collection, scope, request));
}

async function route(collection: Collection, scope: RequestScope, request: CollectionRequest): Promise<Answer> {
  const { method, rest, query: rawQuery, source } = request;
  const [first] = rest;
  if (collection instanceof UserCollection && rest.length === 1) {
    // Deployd: /users/logout answers any method; login is a POST; me a GET.
    if (first === 'logout') return collection.logout(scope);
    if (first === 'login' && method === 'POST') return collection.loginRoute(scope, requireObjectBody(request.body), request.address ?? 'internal');
    if (first === 'me' && method === 'GET') return collection.me(scope);
  }
  if (method === 'GET' && first === 'count' && rest.length === 1) return collection.count(scope, rawQuery, source);
  if (method === 'POST' && first === 'query' && rest.length === 1) {
    const body = requireObjectBody(request.body);
    const query = body.query ?? {};
    if (typeof query !== 'object' || query === null || Array.isArray(query)) throw Errors.badQuery('"query" must be an object');
    const options = body.options ?? {};
    if (typeof options !== 'object' || options === null || Array.isArray(options)) throw Errors.badQuery('"options" must be an object');
    return collection.list(scope, { ...(query as Record<string, unknown>), ...pickOptions(options as Record<string, unknown>) }, 'json', 'QUERY');
  }
  if (collection.schema.noStore) {
    // Event-only endpoint (go-deployd): nothing is stored; hooks shape the answer.
    const input = method === 'GET' || method === 'DELETE' ? rawQuery : requireObjectBody(request.body);
    return collection.event(scope, method, rest, input, rawQuery);
  }
  // A document has no sub-resources: /todos/<id>/anything is an unknown path, not the document.
  if (rest.length > 1) throw Errors.resourceNotFound();
  const id = first ?? stringId(rawQuery.id);
  const query = withoutId(rawQuery);
  if (id !== undefined && !isPlausibleId(id)) throw Errors.notFound();
  switch (method) {
    case 'GET':
      return id === undefined ? collection.list(scope, query, source) : collection.get(scope, id, query, source);
    case 'POST': {
      const body = requireObjectBody(request.body);
      // Deployd: POST /c/:id is an update of that document; in a users collection, so is a POST whose
      // body names an id (elsewhere a client-sent id is ignored and the POST creates).
      const target = id ?? (collection instanceof UserCollection ? stringId(body.id) : undefined);
      if (target !== undefined && !isPlausibleId(target)) throw Errors.notFound();
      return target === undefined ? collection.create(scope, body, query) : collection.update(scope, target, body, query, source);
    }
    case 'PUT': {
      const body = requireObjectBody(request.body);
      const target = id ?? stringId(body.id);
      if (target === undefined) throw Errors.badRequest('must provide id to update an object');
      if (!isPlausibleId(target)) throw Errors.notFound();
      return collection.update(scope, target, body, query, source);
    }
    case 'DELETE':
      return collection.remove(scope, id, query, source);
    default:
      throw Errors.methodNotAllowed(method);
  }
}

function stringId(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function withoutId(query: Record<string, unknown>): Record<string, unknown> {
  if (typeof query.id !== 'string') return query;
  const { id: _id, ...rest } = query;
  return rest;
}

/** go-deployd's `options` of POST /c/query: `$sort $limit $skip $fields $skipEvents`, with or without `$`. */
function pickOptions(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    const name = key.startsWith('$') ? key : `$${key}`;
    if (['$sort', '$limit', '$skip', '$fields', '$skipEvents'].includes(name)) out[name] = value;
    else throw Errors.badQuery(`unknown option ${key}`);
  }
  return out;
}

