/**
 * REST for collections, with Deployd's shapes:
 *   GET    /c            → array          GET  /c/:id   → object or 404
 *   GET    /c/count      → {"count":n}    POST /c/query → array ({"query":{…},"options":{…}})
 *   POST   /c            → 200 document   PUT  /c/:id   → 200 merged document
 *   DELETE /c/:id        → {"count":1}    DELETE /c?{query} → {"count":n} (root only)
 * Collections are resolved per request from the live registry, so config changes apply at once.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator.js';
import { stringifySetCookie } from 'cookie';
import type { Collection } from '../collections/collection.js';
import { dispatch } from '../collections/dispatch.js';
import type { Registry } from '../collections/registry.js';
import { Errors } from '../errors.js';
import { madeJson } from '../util/json-text.js';
import { RawJson, type SessionChange } from '../pipeline/answer.js';
import { runRequest } from '../pipeline/run-request.js';
import type { QueryLimits } from '../query/filter.js';
import { declareCollectionNote, noteCollection } from './request-collection.js';
import { parseSearch, splitUrl } from './request-input.js';

export interface CollectionRoutesOptions {
  registry: Registry;
  auth: Authenticator;
  limits: QueryLimits;
  /** Serves a file from public/ for GETs that match no collection; resolves false when absent. */
  serveStatic?: (request: FastifyRequest, reply: FastifyReply, segments: string[]) => Promise<boolean>;
}

const HANDLED = ['GET', 'POST', 'PUT', 'DELETE'] as const;
const JSON_TYPE = 'application/json; charset=utf-8';
const NOT_ALLOWED = ['PATCH'] as const;

export async function collectionRoutes(app: FastifyInstance, options: CollectionRoutesOptions): Promise<void> {
  const { registry, auth, limits } = options;
  declareCollectionNote(app);

  app.route({
    method: [...HANDLED],
    url: '/*',
    handler: async (request, reply) => {
      const { segments, search } = splitUrl(request.raw.url ?? '/');
      const resolved = registry.resolve(segments);
      if (!resolved) {
        if ((request.method === 'GET' || request.method === 'HEAD') && options.serveStatic && (await options.serveStatic(request, reply, segments))) return reply;
        throw Errors.resourceNotFound();
      }
      const { entry, rest } = resolved;
      noteCollection(request, entry.name);
      if (entry.error) throw entry.error;
      const collection = entry.collection as Collection;
      // Held from here, not only from dispatch: a reload while the caller is being identified must
      // not release the hooks of the version this request resolved (it runs them just after).
      const answer = await collection.track(async () => {
        const identity = await auth.identify(request.headers);
        if (identity.invalidated) reply.header('X-Session-Invalidated', 'true');
        const parsed = parseSearch(search, limits.maxDepth);
        const json = parsed.json;
        // Fastify routes HEAD to this GET handler (exposeHeadRoutes) and drops the body itself.
        const { method, query, body } = overrideMethod(request.method === 'HEAD' ? 'GET' : request.method, parsed.raw, request.body);
        noCache(reply);
        const facts = { identity, requestId: String(request.id), key: `${method} /${collection.name}`, query, body, url: `/${rest.join('/')}` };
        return runRequest(facts, (scope) => dispatch(collection, scope, { method, rest, query, source: json ? 'json' : 'url', body, address: request.ip }));
      });
      if (answer.session) setSessionCookie(request, reply, answer.session);
      if (answer.status) reply.code(answer.status);
      if (answer.status === 204) return reply.send();
      if (answer.body instanceof RawJson) return reply.type(JSON_TYPE).send(answer.body.text);
      // A committed document answered as stored: its text was made once for the event log.
      const made = madeJson(answer.body);
      if (made !== undefined) return reply.type(JSON_TYPE).send(made);
      return answer.body ?? null;
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

/**
 * The `sid` cookie: HttpOnly (no script reads it), SameSite=Lax (no cross-site POST carries it),
 * Secure when the request came over TLS. The token also goes out as X-Session-Token (dpd.js).
 */
export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, change: SessionChange): void {
  const secure = request.protocol === 'https';
  if ('clear' in change) {
    reply.header('Set-Cookie', stringifySetCookie({ name: 'sid', value: '', path: '/', httpOnly: true, sameSite: 'lax', secure, maxAge: 0 }));
    return;
  }
  reply.header('Set-Cookie', stringifySetCookie({ name: 'sid', value: change.token, path: '/', httpOnly: true, sameSite: 'lax', secure, maxAge: Math.floor(change.maxAgeMs / 1000) }));
  reply.header('X-Session-Token', change.token);
}

const OVERRIDES = new Set(['GET', 'POST', 'PUT', 'DELETE']);

/**
 * Deployd's method override: `?_method=PUT`, or `_method` in the body, replaces the method. Honoured
 * on POST only, so that a GET (a link, an image, which carry the session cookie cross-site) never
 * becomes a write. The override then goes through the same routes and policy as the real method.
 */
export function overrideMethod(method: string, query: Record<string, unknown>, body: unknown): { method: string; query: Record<string, unknown>; body: unknown } {
  if (method !== 'POST') return { method, query, body };
  const fromBody = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>)._method : undefined;
  const asked = query._method ?? fromBody;
  if (asked === undefined) return { method, query, body };
  const name = typeof asked === 'string' ? asked.toUpperCase() : '';
  if (!OVERRIDES.has(name)) throw Errors.badRequest('_method must be GET, POST, PUT or DELETE');
  const { _method: _q, ...restQuery } = query;
  const restBody = fromBody === undefined ? body : (({ _method: _b, ...rest }) => rest)(body as Record<string, unknown>);
  return { method: name, query: restQuery, body: restBody };
}

/** Deployd marks every collection response as uncacheable. */
function noCache(reply: FastifyReply): void {
  reply.header('Cache-Control', 'no-cache, no-store, must-revalidate');
  reply.header('Pragma', 'no-cache');
  reply.header('Expires', '0');
}
