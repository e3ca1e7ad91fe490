/**
 * A collection's schema, read from `resources/<name>/config.json`.
 * Accepts Deployd's format (`{"type":"Collection","properties":{...}}`, with dashboard extras like
 * `typeLabel`, `order`, `id`) and go-deployd's (`required`, `default` incl. "now", `unique`, `noStore`,
 * type aliases such as `integer` or `datetime`).
 */

export type PropertyType = 'string' | 'number' | 'boolean' | 'date' | 'object' | 'array';

export interface PropertyDef {
  name: string;
  type: PropertyType;
  required: boolean;
  default?: unknown;
  unique: boolean;
  index: boolean;
}

export interface CollectionSchema {
  /** Path under resources/, e.g. `todos` or `shop/orders`; the REST path is `/` + name. */
  name: string;
  kind: 'Collection' | 'UserCollection';
  properties: Map<string, PropertyDef>;
  timestamps: boolean;
  noStore: boolean;
  /** Raw config for later consumers (hook limits, rules, eventConfig). */
  raw: Record<string, unknown>;
}

const TYPE_ALIASES: Record<string, PropertyType> = {
  string: 'string', text: 'string',
  number: 'number', integer: 'number', int: 'number', float: 'number',
  boolean: 'boolean', bool: 'boolean',
  date: 'date', datetime: 'date', timestamp: 'date',
  object: 'object',
  array: 'array',
};

/** Property names that the server manages itself and a config may not redefine. */
const RESERVED = new Set(['id', '_id']);
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);
const NAME_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const PROPERTY_NAME = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export class SchemaError extends Error {}

export function isValidCollectionName(name: string): boolean {
  return name.split('/').every((segment) => NAME_SEGMENT.test(segment));
}

export function parseSchema(name: string, config: unknown): CollectionSchema {
  if (!isValidCollectionName(name)) {
    throw new SchemaError(`collection name "${name}" must be letters, digits, "-" or "_" per folder`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new SchemaError('config must be a JSON object');
  }
  const raw = config as Record<string, unknown>;
  const type = raw.type ?? 'Collection';
  if (type !== 'Collection' && type !== 'UserCollection') {
    throw new SchemaError(`unknown resource type "${String(type)}" (expected "Collection" or "UserCollection")`);
  }
  const properties = new Map<string, PropertyDef>();
  const declared = raw.properties ?? {};
  if (typeof declared !== 'object' || declared === null || Array.isArray(declared)) {
    throw new SchemaError('"properties" must be an object');
  }
  for (const [propName, value] of Object.entries(declared as Record<string, unknown>)) {
    properties.set(propName, parseProperty(propName, value));
  }
  const timestamps = raw.timestamps === true;
  if (timestamps) {
    for (const stamp of ['createdAt', 'updatedAt']) {
      if (!properties.has(stamp)) {
        properties.set(stamp, { name: stamp, type: 'date', required: false, unique: false, index: false });
      }
    }
  }
  return {
    name,
    kind: type,
    properties,
    timestamps,
    noStore: raw.noStore === true,
    raw,
  };
}

function parseProperty(name: string, value: unknown): PropertyDef {
  if (!PROPERTY_NAME.test(name) || FORBIDDEN.has(name)) {
    throw new SchemaError(`property name "${name}" is not allowed`);
  }
  if (RESERVED.has(name)) throw new SchemaError(`property "${name}" is managed by the server`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SchemaError(`property "${name}" must be an object like {"type":"string"}`);
  }
  const def = value as Record<string, unknown>;
  const rawType = def.type ?? 'string';
  const type = typeof rawType === 'string' ? TYPE_ALIASES[rawType.toLowerCase()] : undefined;
  if (!type) {
    throw new SchemaError(`property "${name}" has unknown type "${String(rawType)}" (use string, number, boolean, date, object or array)`);
  }
  const prop: PropertyDef = {
    name,
    type,
    required: def.required === true,
    unique: def.unique === true,
    index: def.index === true || def.unique === true,
  };
  if ('default' in def) prop.default = def.default;
  return prop;
}

/** The fields a store may index: declared scalar properties flagged `index` or `unique`. */
export function indexedProperties(schema: CollectionSchema): PropertyDef[] {
  return [...schema.properties.values()].filter((p) => p.index && p.type !== 'object' && p.type !== 'array');
}
