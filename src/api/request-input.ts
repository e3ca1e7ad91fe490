/**
 * Decoding of the URL and query string, Deployd-style:
 *   - `?{"priority":{"$gte":3}}` (raw or URL-encoded JSON) is the whole query;
 *   - `?q={json}` and `?_jsonquery={json}` likewise, merged with the other parameters;
 *   - otherwise `qs` bracket syntax: `priority[$gte]=5`, `$sort[priority]=-1`, `status[$in]=a,b`.
 */
import qs from 'qs';
import { Errors } from '../errors.js';
import { checkEncodedKeys, checkInput } from '../util/input.js';

export interface RequestTarget {
  segments: string[];
  search: string;
}

export function splitUrl(url: string): RequestTarget {
  const q = url.indexOf('?');
  const pathname = q === -1 ? url : url.slice(0, q);
  const search = q === -1 ? '' : url.slice(q + 1);
  const segments: string[] = [];
  for (const raw of pathname.split('/')) {
    if (raw === '') continue;
    try {
      segments.push(decodeURIComponent(raw));
    } catch {
      throw Errors.badRequest('the URL path is not valid percent-encoding');
    }
  }
  return { segments, search };
}

export interface SearchQuery {
  raw: Record<string, unknown>;
  /** True when the whole query was JSON (typed values: no comma lists or string coercions). */
  json: boolean;
}

export function parseSearch(search: string, maxDepth: number): SearchQuery {
  if (search === '') return { raw: {}, json: false };
  let decoded: string;
  try {
    decoded = decodeURIComponent(search.replace(/\+/g, ' '));
  } catch {
    throw Errors.badQuery('the query string is not valid percent-encoding');
  }
  if (decoded.startsWith('{') && decoded.endsWith('}')) return { raw: jsonQuery(decoded, maxDepth), json: true };
  try {
    checkEncodedKeys(search);
  } catch (err) {
    if (err instanceof URIError) throw Errors.badQuery('the query string is not valid percent-encoding');
    throw err;
  }
  const parsed = qs.parse(search, { depth: maxDepth, arrayLimit: 1000, parameterLimit: 1000, plainObjects: true, allowPrototypes: false }) as Record<string, unknown>;
  const result: Record<string, unknown> = { ...parsed };
  for (const key of ['q', '_jsonquery']) {
    const value = result[key];
    if (typeof value === 'string' && value.trim().startsWith('{')) {
      delete result[key];
      Object.assign(result, jsonQuery(value, maxDepth));
    }
  }
  checkInput(result, maxDepth + 2);
  return { raw: result, json: false };
}

function jsonQuery(text: string, maxDepth: number): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw Errors.badQuery(`the query is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw Errors.badQuery('a JSON query must be an object');
  checkInput(parsed, maxDepth);
  return { ...(parsed as Record<string, unknown>) };
}
