/**
 * Deployd's call signatures (dpd-clientlib): optional leading path segments, then an optional
 * query, a body and a callback, told apart by their types; and how a callback is called.
 */
import type { Callback, DpdError, Query } from './index.js';

export function isPathArg(value: unknown): value is string | number {
  return typeof value === 'string' || typeof value === 'number';
}

export function asCallback(value: unknown): Callback | undefined {
  return typeof value === 'function' ? (value as Callback) : undefined;
}

/** `[id/func], [path], [query], fn`: leading strings or numbers (or empties) are path segments. */
export function getArgs(args: unknown[]): { path: string; query?: Query; fn?: Callback } {
  let i = 0;
  let path = '';
  for (let n = 0; n < 2; n++) {
    if (isPathArg(args[i]) || args[i] === undefined || args[i] === null) path = joinPath(path, args[i++]);
  }
  let query: Query | undefined;
  if ((typeof args[i] === 'object' && args[i] !== null) || args[i] === undefined || args[i] === null) query = (args[i++] ?? undefined) as Query | undefined;
  return { path, query, fn: asCallback(args[i]) };
}

/** `[id], [query], body, fn`: of two objects, the first is the query. */
export function bodyArgs(args: unknown[]): { path: string; query?: Query; body?: unknown; fn?: Callback } {
  let i = 0;
  let path = '';
  if (isPathArg(args[i]) || args[i] === undefined || args[i] === null) path = joinPath(path, args[i++]);
  let query: Query | undefined;
  let body: unknown;
  if ((typeof args[i] === 'object' && args[i] !== null) || args[i] === undefined || args[i] === null) body = args[i++];
  if (typeof args[i] === 'object' && args[i] !== null) {
    query = body as Query;
    body = args[i++];
  }
  return { path, query, body, fn: asCallback(args[i]) };
}

/** Appends URL segments (each percent-encoded); empties add nothing. */
export function joinPath(path: string, segment: unknown): string {
  if (segment === undefined || segment === null || segment === '') return path;
  const parts = String(segment).split('/').filter(Boolean).map(encodeURIComponent);
  return parts.length === 0 ? path : `${path}/${parts.join('/')}`;
}

export function invoke(fn: Callback, result: unknown, error: DpdError | undefined): void {
  if (fn === (console.log as unknown)) {
    if (error) console.error(error);
    else console.log(result);
    return;
  }
  if (error) fn(null, error);
  else fn(result);
}
