/**
 * `GET /metrics` (Prometheus text format) for root (the master key, as `X-Master-Key` or a Bearer
 * token) or the metrics token (`--metrics-token` / `METRICS_TOKEN`, as a Bearer token), so a
 * scraper need not hold the key that can delete everything. Every answered request is counted by
 * collection, method and status; the collection label is bounded by the app's collections.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { MasterKey } from '../auth/master-key.js';
import type { Registry } from '../collections/registry.js';
import { Errors } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import { collectionOf } from './request-collection.js';
import { splitUrl } from './request-input.js';

export interface MetricsRoutesOptions {
  metrics: Metrics;
  registry: Pick<Registry, 'resolve'>;
  masterKey: MasterKey;
  token?: string;
}

export async function metricsRoutes(app: FastifyInstance, options: MetricsRoutesOptions): Promise<void> {
  const { metrics, registry, masterKey } = options;
  const tokenDigest = options.token ? sha256(options.token) : undefined;

  // A callback hook, not an async one: no promise per request for a synchronous count.
  app.addHook('onResponse', (request, reply, done) => {
    const route = collectionOf(request) ?? routeLabel(request.routeOptions.url, request.raw.url ?? '/', registry);
    metrics.request(route, request.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  app.addHook('onError', async (_request, _reply, err) => metrics.error(err));

  app.get('/metrics', async (request, reply) => {
    const header = request.headers.authorization;
    const bearer = typeof header === 'string' && /^Bearer /i.test(header) ? header.slice(7).trim() : undefined;
    const key = request.headers['x-master-key'];
    const allowed = (typeof key === 'string' && masterKey.matches(key))
      || (bearer !== undefined && (masterKey.matches(bearer) || (tokenDigest !== undefined && timingSafeEqual(sha256(bearer), tokenDigest))));
    if (!allowed) {
      reply.header('WWW-Authenticate', 'Bearer realm="metrics"');
      throw Errors.unauthorized('metrics need the master key (X-Master-Key) or the metrics token (Authorization: Bearer)');
    }
    reply.header('Cache-Control', 'no-store');
    return reply.type(metrics.contentType).send(await metrics.text());
  });
}

/** The collection a request went to, or its fixed route (`/health`, `/dpd.js`), or `other`. */
function routeLabel(route: string | undefined, url: string, registry: Pick<Registry, 'resolve'>): string {
  if (route === undefined) return 'other';
  if (route !== '/*') return route;
  try {
    return registry.resolve(splitUrl(url).segments)?.entry.name ?? 'other';
  } catch {
    return 'other';
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
