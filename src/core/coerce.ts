/**
 * Value coercion to a property's declared type, shared by request bodies (`document.ts`) and
 * query values (`query/filter.ts`), so a date or a number means the same in both.
 */
import { NUMERIC } from '../util/input.js';
import type { PropertyDef } from './schema.js';

export function coerceValue(prop: PropertyDef, value: unknown): { value: unknown } | { error: string } {
  if (value === null) return { value: null };
  switch (prop.type) {
    case 'string':
      if (typeof value === 'string') return { value };
      if (typeof value === 'number' && Number.isFinite(value)) return { value: String(value) };
      return { error: prop.typeError ?? 'must be a string' };
    case 'number':
      if (typeof value === 'number' && Number.isFinite(value)) return { value };
      if (typeof value === 'string' && NUMERIC.test(value.trim())) return { value: Number(value.trim()) };
      return { error: prop.typeError ?? 'must be a number' };
    case 'boolean':
      if (typeof value === 'boolean') return { value };
      if (value === 'true') return { value: true };
      if (value === 'false') return { value: false };
      return { error: prop.typeError ?? 'must be a boolean' };
    case 'date': {
      const iso = toIsoDate(value);
      return iso === undefined ? { error: 'must be a date' } : { value: iso };
    }
    case 'object':
      if (typeof value === 'object' && !Array.isArray(value)) return { value };
      return { error: 'must be an object' };
    case 'array':
      if (Array.isArray(value)) return { value };
      return { error: 'must be an array' };
  }
}

export function toIsoDate(value: unknown): string | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  if (typeof value === 'string' && value.trim() === '') return undefined;
  const date = new Date(typeof value === 'string' && NUMERIC.test(value) ? Number(value) : value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}
