/**
 * GET /dpd.js: Deployd's browser client, generated per request for the collections the registry
 * has now (so a collection added while the server runs appears on the next load), with
 * `dpd.<name without non-alphanumerics>` for each (`shop/orders` → `dpd.shoporders`).
 * `Cache-Control: no-cache` plus an ETag: browsers revalidate and usually get a 304. For collections
 * whose app emits `<collection>:…` events itself (as Deployd apps do), the script sends only what
 * the server emits, as Deployd's dpd.js: no change events of its own under the same names.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from '../collections/registry.js';
import { browserClient } from '../client/browser-bundle.js';

export interface ClientRoutesOptions {
  registry: Pick<Registry, 'list' | 'ownChangeEvents'>;
}

export async function clientRoutes(app: FastifyInstance, options: ClientRoutesOptions): Promise<void> {
  app.get('/dpd.js', async (request, reply) => {
    const { text, etag } = browserClient(options.registry.list().map((entry) => entry.name), options.registry.ownChangeEvents());
    reply.header('Cache-Control', 'no-cache').header('ETag', etag);
    if (request.headers['if-none-match'] === etag) return reply.code(304).send();
    return reply.type('application/javascript; charset=utf-8').send(text);
  });
}
