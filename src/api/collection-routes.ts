/**
 * REST for collections, with Deployd's shapes:
 *   GET    /c            → array          GET  /c/:id   → object or 404
 *   GET    /c/count      → {"count":n}    POST /c/query → array ({"query":{…},"options":{…}})
 *   POST   /c            → 200 document   PUT  /c/:id   → 200 merged document
 *   DELETE /c/:id        → {"count":1}    DELETE /c?{query} → {"count":n} (root only)
 * Collections are resolved per request from the live registry, so config changes apply at once.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Collection } from '../collections/collection.js';
import { requireObjectBody } from '../collections/document.js';
import { isPlausibleId } from '../collections/id.js';
import type { Registry } from '../collections/registry.js';
import { Errors } from '../errors.js';
import { parseQuery, type QueryLimits } from '../query/filter.js';
import type { Authenticator } from '../auth/authenticator.js';
import { parseSearch, splitUrl } from './request-input.js';

export interface CollectionRoutesOptions {
  registry: Registry;
  auth: Authenticator;
  limits: QueryLimits;
  /** Serves a file from public/ for GETs that match no collection; resolves false when absent. */
  serveStatic?: (request: FastifyRequest, reply: FastifyReply, segments: string[]) => Promise<boolean>;
}

const HANDLED = ['GET', 'POST', 'PUT', 'DELETE'] as const;
const NOT_ALLOWED = ['PATCH'] as const;

export async function collectionRoutes(app: FastifyInstance, options: CollectionRoutesOptions): Promise<void> {
  const { registry, auth, limits } = options;

  app.route({
    method: [...HANDLED],
    url: '/*',
    handler: async (request, reply) => {
      // Fastify routes HEAD to this GET handler (exposeHeadRoutes) and drops the body itself.
      const method = request.method === 'HEAD' ? 'GET' : request.method;
      const { segments, search } = splitUrl(request.raw.url ?? '/');
      const resolved = registry.resolve(segments);
      if (!resolved) {
        if (method === 'GET' && options.serveStatic && (await options.serveStatic(request, reply, segments))) return reply;
        throw Errors.resourceNotFound();
      }
      const { entry, rest } = resolved;
      if (entry.error) throw entry.error;
      const collection = entry.collection as Collection;
      const caller = auth.identify(request);
      const { raw: rawQuery, json } = parseSearch(search, limits.maxDepth);
      const source = json ? 'json' : 'url';
      noCache(reply);

      const [first] = rest;
      if (method === 'GET' && first === 'count' && rest.length === 1) {
        return { count: await collection.count(parseQuery(rawQuery, collection.schema, source, limits)) };
      }
      if (method === 'POST' && first === 'query' && rest.length === 1) {
        const body = requireObjectBody(request.body);
        const query = body.query ?? {};
        if (typeof query !== 'object' || query === null || Array.isArray(query)) throw Errors.badQuery('"query" must be an object');
        const queryOptions = body.options ?? {};
        if (typeof queryOptions !== 'object' || queryOptions === null || Array.isArray(queryOptions)) throw Errors.badQuery('"options" must be an object');
        const merged = { ...(query as Record<string, unknown>), ...pickOptions(queryOptions as Record<string, unknown>) };
        return collection.list(parseQuery(merged, collection.schema, 'json', limits));
      }

      if (collection.schema.noStore) {
        // Event-only endpoint (go-deployd): nothing is stored; hooks shape the answer.
        const input = method === 'GET' || method === 'DELETE' ? rawQuery : requireObjectBody(request.body);
        return { url: `/${rest.join('/')}`, parts: rest, ...input };
      }

      // A document has no sub-resources: /todos/<id>/anything is an unknown path, not the document.
      if (rest.length > 1) throw Errors.resourceNotFound();
      const id = first ?? stringId(rawQuery.id);
      const query = parseQuery(withoutId(rawQuery), collection.schema, source, limits);
      if (id !== undefined && !isPlausibleId(id)) throw Errors.notFound();

      switch (method) {
        case 'GET':
          return id === undefined ? collection.list(query) : collection.get(id, query);
        case 'POST': {
          const body = requireObjectBody(request.body);
          // Deployd: POST /c/:id is an update of that document.
          return id === undefined ? collection.create(body) : collection.update(id, body, query);
        }
        case 'PUT': {
          const body = requireObjectBody(request.body);
          const target = id ?? stringId(body.id);
          if (target === undefined) throw Errors.badRequest('must provide id to update an object');
          if (!isPlausibleId(target)) throw Errors.notFound();
          return collection.update(target, body, query);
        }
        case 'DELETE':
          return collection.remove(id, query, caller);
        default:
          throw Errors.methodNotAllowed(method);
      }
    },
  });

  app.route({
    method: [...NOT_ALLOWED],
    url: '/*',
    handler: async (request, reply) => {
      reply.header('Allow', 'GET, HEAD, POST, PUT, DELETE, OPTIONS');
      throw Errors.methodNotAllowed(request.method);
    },
  });
}

function stringId(value: unknown): string | undefined {
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

/** Deployd marks every collection response as uncacheable. */
function noCache(reply: FastifyReply): void {
  reply.header('Cache-Control', 'no-cache, no-store, must-revalidate');
  reply.header('Pragma', 'no-cache');
  reply.header('Expires', '0');
}
