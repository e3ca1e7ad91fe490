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
  /** Never leaves the server and cannot be queried or sorted on (a user's password hash). */
  secret?: boolean;
  /** `"hidden": true`: stored and writable, but only root reads, filters or sorts on it. */
  hidden?: boolean;
  /** The message for a value of the wrong type, when not `must be a <type>` (Deployd: a password "is required"). */
  typeError?: string;
}

export const RULE_VALUES = ['anyone', 'users', 'owner', 'root'] as const;
export type Rule = (typeof RULE_VALUES)[number];
export type RuleAction = 'read' | 'create' | 'update' | 'delete';
export type Rules = Record<RuleAction, Rule>;

/** A UserCollection's settings (config.json keys beside `properties`). */
export interface UserSettings {
  passwordMinLength: number;
  sessionIdleMs: number;
  throttle: { maxFailuresPerUser: number; maxFailuresPerAddress: number; windowMs: number };
}

export interface CollectionSchema {
  /** Path under resources/, e.g. `todos` or `shop/orders`; the REST path is `/` + name. */
  name: string;
  /** `Event`: Deployd's dpd-event resource, a custom endpoint whose hooks make the answer (nothing stored). */
  kind: 'Collection' | 'UserCollection' | 'Event';
  properties: Map<string, PropertyDef>;
  timestamps: boolean;
  noStore: boolean;
  /** Who may read, create, update and delete (config `"rules"`); `"anyone"` unless set. */
  rules: Rules;
  /** The field that names a document's owner for the `"owner"` rule (a UserCollection: the user itself). */
  ownerField: string;
  /** Present for a UserCollection. */
  users?: UserSettings;
  /** Raw config for later consumers (hook limits, rules, eventConfig). */
  raw: Record<string, unknown>;
  /** What the config says that is ignored (logged at load). */
  warnings?: string[];
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
  if (type !== 'Collection' && type !== 'UserCollection' && type !== 'Event') {
    throw new SchemaError(`unknown resource type "${String(type)}" (expected "Collection", "UserCollection" or "Event")`);
  }
  const properties = new Map<string, PropertyDef>();
  const declared = raw.properties ?? {};
  if (typeof declared !== 'object' || declared === null || Array.isArray(declared)) {
    throw new SchemaError('"properties" must be an object');
  }
  const warnings: string[] = [];
  for (const [propName, value] of Object.entries(declared as Record<string, unknown>)) {
    if (RESERVED.has(propName)) {
      // go-deployd configs declare `id`; the server manages it whatever the config says.
      warnings.push(`property "${propName}" is managed by the server: its declaration is ignored`);
      continue;
    }
    properties.set(propName, parseProperty(propName, value));
  }
  const rules = parseRules(raw.rules);
  const ownerField = raw.ownerField ?? 'owner';
  if (typeof ownerField !== 'string' || !PROPERTY_NAME.test(ownerField) || FORBIDDEN.has(ownerField) || RESERVED.has(ownerField)) {
    throw new SchemaError('"ownerField" must be a property name');
  }
  let users: UserSettings | undefined;
  if (type === 'UserCollection') {
    users = parseUserSettings(raw);
    // Deployd: username and password are always there, whatever the config says.
    properties.set('username', { name: 'username', type: 'string', required: true, unique: true, index: true });
    // Required, but checked (and hashed) by the users collection itself, not by the generic pipeline.
    properties.set('password', { name: 'password', type: 'string', required: false, unique: false, index: false, secret: true, typeError: 'is required' });
  } else if (Object.values(rules).includes('owner') && !properties.has(ownerField)) {
    // The owner is set by the server on create; it needs a stored, indexed field.
    properties.set(ownerField, { name: ownerField, type: 'string', required: false, unique: false, index: true });
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
    noStore: raw.noStore === true || type === 'Event',
    rules,
    ownerField: type === 'UserCollection' ? 'id' : ownerField,
    ...(users ? { users } : {}),
    raw,
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

function parseRules(value: unknown): Rules {
  const rules: Rules = { read: 'anyone', create: 'anyone', update: 'anyone', delete: 'anyone' };
  if (value === undefined) return rules;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SchemaError('"rules" must be an object like {"read":"anyone","update":"owner"}');
  }
  for (const [action, rule] of Object.entries(value as Record<string, unknown>)) {
    if (!(action in rules)) throw new SchemaError(`"rules" has unknown action "${action}" (use read, create, update, delete)`);
    if (!RULE_VALUES.includes(rule as Rule)) {
      throw new SchemaError(`rule "${action}" must be one of ${RULE_VALUES.map((r) => `"${r}"`).join(', ')}, not ${JSON.stringify(rule)}`);
    }
    rules[action as RuleAction] = rule as Rule;
  }
  return rules;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function parseUserSettings(raw: Record<string, unknown>): UserSettings {
  const positive = (value: unknown, name: string, fallback: number): number => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new SchemaError(`"${name}" must be a positive number`);
    return value;
  };
  const throttle = (raw.loginThrottle ?? {}) as Record<string, unknown>;
  if (typeof throttle !== 'object' || throttle === null || Array.isArray(throttle)) throw new SchemaError('"loginThrottle" must be an object');
  return {
    passwordMinLength: Math.floor(positive(raw.passwordMinLength, 'passwordMinLength', 8)),
    sessionIdleMs: positive(raw.sessionIdleDays, 'sessionIdleDays', 30) * DAY_MS,
    throttle: {
      maxFailuresPerUser: Math.floor(positive(throttle.maxFailuresPerUser, 'loginThrottle.maxFailuresPerUser', 5)),
      maxFailuresPerAddress: Math.floor(positive(throttle.maxFailuresPerAddress, 'loginThrottle.maxFailuresPerAddress', 20)),
      windowMs: positive(throttle.windowSeconds, 'loginThrottle.windowSeconds', 900) * 1000,
    },
  };
}

/** The names of a schema's secret properties (never returned, never queried). */
export function secretFields(schema: CollectionSchema): string[] {
  return [...schema.properties.values()].filter((p) => p.secret).map((p) => p.name);
}

function parseProperty(name: string, value: unknown): PropertyDef {
  if (!PROPERTY_NAME.test(name) || FORBIDDEN.has(name)) {
    throw new SchemaError(`property name "${name}" is not allowed`);
  }
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
  if (def.hidden === true) prop.hidden = true;
  return prop;
}

/** The fields a store may index: declared scalar properties flagged `index` or `unique`. */
export function indexedProperties(schema: CollectionSchema): PropertyDef[] {
  return [...schema.properties.values()].filter((p) => p.index && p.type !== 'object' && p.type !== 'array');
}
