/**
 * The collection a request was routed to, noted by the collection routes once they resolved it, so
 * the per-request metrics label does not resolve the URL a second time. A request decoration (a
 * property every request object has from the start), so noting it changes no object's shape.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

type Noted = FastifyRequest & { dpdCollection: string };

/** Declares the note on every request; before any route that notes it. */
export function declareCollectionNote(app: FastifyInstance): void {
  if (!app.hasRequestDecorator('dpdCollection')) app.decorateRequest('dpdCollection', '');
}

export function noteCollection(request: FastifyRequest, name: string): void {
  (request as Noted).dpdCollection = name;
}

/** The collection's name, or undefined when the request never reached one. */
export function collectionOf(request: FastifyRequest): string | undefined {
  return (request as Partial<Noted>).dpdCollection || undefined;
}
