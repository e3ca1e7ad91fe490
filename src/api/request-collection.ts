/**
 * The collection a request was routed to, noted by the collection routes once they resolved it, so
 * the per-request metrics label does not resolve the URL a second time.
 */
import type { FastifyRequest } from 'fastify';

const routed = new WeakMap<FastifyRequest, string>();

export function noteCollection(request: FastifyRequest, name: string): void {
  routed.set(request, name);
}

/** The collection's name, or undefined when the request never reached one. */
export function collectionOf(request: FastifyRequest): string | undefined {
  return routed.get(request);
}
