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

/** JSON.parse that keeps a `__proto__` key as data so `checkInput` can refuse it. */
export function parseJson(text: string): unknown {
  return JSON.parse(text);
}
