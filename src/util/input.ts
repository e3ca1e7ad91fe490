/**
 * Guards applied to every decoded input (body and query) before anything else reads it: no
 * prototype-polluting keys anywhere, and a bounded nesting depth.
 */
import { Errors } from '../errors.js';

export const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export function checkInput(value: unknown, maxDepth: number): void {
  walk(value, maxDepth, 0);
}

function walk(value: unknown, maxDepth: number, depth: number): void {
  if (typeof value !== 'object' || value === null) return;
  if (depth >= maxDepth) throw Errors.tooDeep(maxDepth);
  if (Array.isArray(value)) {
    for (const item of value) walk(item, maxDepth, depth + 1);
    return;
  }
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) throw Errors.forbiddenKey(key);
    walk((value as Record<string, unknown>)[key], maxDepth, depth + 1);
  }
}

/**
 * Refuses prototype keys in the keys of a form body or query string (`a[__proto__]=1`), which
 * `qs` would otherwise drop silently. Throws URIError on bad percent-encoding (callers word it).
 */
export function checkEncodedKeys(encoded: string): void {
  for (const pair of encoded.split('&')) {
    const eq = pair.indexOf('=');
    const key = decodeURIComponent((eq === -1 ? pair : pair.slice(0, eq)).replace(/\+/g, ' '));
    for (const token of key.split(/[[\].]+/)) if (FORBIDDEN_KEYS.has(token)) throw Errors.forbiddenKey(token);
  }
}

/** A number written as text (`7`, `-2.5`, `1e3`), as accepted for number properties and queries. */
export const NUMERIC = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
