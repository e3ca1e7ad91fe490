/**
 * go-deployd's login endpoints over the same sessions as `/users/login`:
 *   POST /auth/login {"username"|"email","password"} → {"token","expiresAt","user"}
 *   GET  /auth/me                                    → the user (401 when not logged in)
 * They use the app's users collection (`users`, else the first UserCollection).
 */
import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../auth/authenticator.js';
import type { Registry } from '../collections/registry.js';
import { requireObjectBody } from '../core/document.js';
import { UserCollection } from '../collections/user-collection.js';
import { Errors } from '../errors.js';
import { runRequest } from '../pipeline/run-request.js';

export async function authRoutes(app: FastifyInstance, options: { registry: Registry; auth: Authenticator }): Promise<void> {
  const { registry, auth } = options;

  app.post('/auth/login', async (request, reply) => {
    const users = registry.usersCollection();
    if (!users) throw Errors.resourceNotFound();
    // Held while the caller is identified too: a reload meanwhile must not release this version's Login hook.
    const login = await users.track(async () => {
      const identity = await auth.identify(request.headers);
      const body = requireObjectBody(request.body);
      const facts = { identity, requestId: String(request.id), key: `POST /${users.name}`, query: {}, body, url: '/login' };
      return runRequest(facts, (scope) => users.login(scope, body.username ?? body.email, body.password, request.ip, true));
    });
    reply.header('Cache-Control', 'no-store');
    reply.header('X-Session-Token', login.token);
    return { token: login.token, expiresAt: new Date(login.session.lastActive + login.session.idleMs).toISOString(), user: login.user };
  });

  app.get('/auth/me', async (request, reply) => {
    const identity = await auth.identify(request.headers);
    reply.header('Cache-Control', 'no-store');
    if (identity.invalidated) reply.header('X-Session-Invalidated', 'true');
    const { caller, session } = identity;
    if (caller.me === null) throw Errors.unauthorized('not logged in');
    if (caller.isRoot || !session) return caller.me;
    // The user as they could GET themselves (their Get hook and hidden fields apply).
    const users = registry.get(session.collection)?.collection;
    if (!(users instanceof UserCollection)) throw Errors.unauthorized('not logged in');
    return (await users.readableBy(caller, caller.me)) ?? { id: caller.me.id };
  });
}
