/** The HTTP side's small parts: the base URL and the error a failed request gives its caller. */
import type { DpdError } from './index.js';

export function errorBody(status: number, statusText: string | undefined, data: unknown): DpdError {
  if (typeof data === 'object' && data !== null && !Array.isArray(data)) {
    const body = data as Record<string, unknown>;
    return { ...body, status: typeof body.status === 'number' ? body.status : status } as DpdError;
  }
  const text = typeof data === 'string' ? data : '';
  return { status, message: text || statusText || `HTTP ${status}` };
}

export function defaultBase(): string {
  const location = (globalThis as { location?: { origin?: string } }).location;
  if (location?.origin && location.origin !== 'null') return location.origin;
  throw new Error('createClient: baseUrl is required outside a browser (e.g. "http://localhost:2403")');
}

export function normalizeBase(url: string): string {
  return url.replace(/\/+$/, '');
}
