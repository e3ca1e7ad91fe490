/**
 * The query language: a Mongo-style filter, validated and coerced against the collection's schema
 * before any store sees it. Every store receives the same normalized shape:
 *   - field conditions are always operator objects (`{"priority":{"$gte":3}}`, `{"title":{"$eq":"a"}}`);
 *   - values are coerced to the declared type (dates become ISO-8601 strings);
 *   - logical operators hold arrays of normalized filters.
 */
import type { CollectionSchema, PropertyDef } from '../core/schema.js';
import type { Filter, FindOptions, Literal, Operators, Projection, SortKey } from '../core/filter.js';
import { toIsoDate } from '../core/coerce.js';
import { Errors } from '../errors.js';
import { checkInput, FORBIDDEN_KEYS, NUMERIC } from '../util/input.js';
import { compileRegex } from './regex.js';

export interface ParsedQuery {
  filter: Filter;
  options: FindOptions;
  projection?: Projection;
  skipEvents: boolean;
  /** The query as the caller sent it, undeclared keys included (Deployd hooks read those). */
  raw: Record<string, unknown>;
}

export interface QueryLimits {
  /** Largest `$limit` honoured; larger requests (and requests without `$limit`) are clamped to it. */
  maxLimit: number;
  maxDepth: number;
  /** Most conditions (operators, logical branches, `$all` items) one query may hold; default 1000. */
  maxConditions?: number;
}

export const DEFAULT_QUERY_LIMITS: QueryLimits = { maxLimit: 1000, maxDepth: 16, maxConditions: 256 };

const FIELD_OPS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$all', '$exists', '$size', '$regex', '$options', '$not', '$elemMatch']);
const LOGICAL_OPS = new Set(['$or', '$and', '$nor']);
const OPTION_KEYS = new Set(['$sort', '$orderby', '$limit', '$skip', '$fields', '$skipEvents', '$limitRecursion']);
/** Operators that run server-side code in MongoDB: never accepted. */
const CODE_OPS = new Set(['$where', '$function', '$accumulator', '$expr']);
const REGEX_OPTIONS = /^[imsu]*$/;

type Source = 'url' | 'json';

interface Context {
  /** Absent inside `$elemMatch`, whose paths are relative to an array element. */
  schema: CollectionSchema | undefined;
  source: Source;
  limits: QueryLimits;
  /** Conditions counted so far (bounded, so that no store is handed an unbounded expression). */
  conditions: number;
}

/** Builds a ParsedQuery from a raw query object (from the URL or from `POST /c/query`). */
export function parseQuery(raw: Record<string, unknown>, schema: CollectionSchema, source: Source, limits: QueryLimits = DEFAULT_QUERY_LIMITS): ParsedQuery {
  const ctx: Context = { schema, source, limits, conditions: 0 };
  checkInput(raw, limits.maxDepth + 1); // also guards queries from hooks' dpd calls, which no parser saw
  const options: FindOptions = {};
  let projection: Projection | undefined;
  let skipEvents = false;
  const filterInput: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (CODE_OPS.has(key)) throw Errors.badQuery(`${key} is not supported: queries cannot run server-side code`);
    if (OPTION_KEYS.has(key)) {
      if (key === '$sort' || key === '$orderby') options.sort = parseSort(value);
      else if (key === '$limit') {
        const limit = parseCount('$limit', value, false);
        options.limit = limit === 0 ? limits.maxLimit : Math.min(limit, limits.maxLimit); // MongoDB: 0 is no limit
      }
      else if (key === '$skip') options.skip = parseCount('$skip', value, true);
      else if (key === '$fields') projection = parseFields(value);
      else if (key === '$skipEvents') skipEvents = value === true || value === 'true';
      continue;
    }
    if (key.startsWith('$') && !LOGICAL_OPS.has(key)) throw Errors.badQuery(`unknown operator ${key}`);
    if (!key.startsWith('$') && !isQueryableTopLevel(key, schema)) continue; // Deployd: undeclared keys are for hooks only
    filterInput[key] = value;
  }
  for (const key of options.sort ?? []) checkNotSecret(key.field, schema);
  if (options.limit === undefined) options.limit = limits.maxLimit;
  const query: ParsedQuery = { filter: parseFilter(filterInput, ctx, true), options, skipEvents, raw };
  if (projection) query.projection = projection;
  return query;
}

/** Deployd keeps a top-level key if it is `id`, a declared property, or a dotted path into one. */
function isQueryableTopLevel(key: string, schema: CollectionSchema): boolean {
  if (key === 'id') return true;
  const head = key.split('.')[0];
  return schema.properties.has(head);
}

function parseFilter(input: Record<string, unknown>, ctx: Context, topLevel = false): Filter {
  const filter: Filter = { fields: {} };
  for (const [key, value] of Object.entries(input)) {
    if (CODE_OPS.has(key)) throw Errors.badQuery(`${key} is not supported: queries cannot run server-side code`);
    if (LOGICAL_OPS.has(key)) {
      const list = Array.isArray(value) ? value : isPlainObject(value) && ctx.source === 'url' ? Object.values(value) : null;
      if (!list || list.length === 0) throw Errors.badQuery(`${key} needs a non-empty array of conditions`);
      filter[key as '$or'] = list.map((branch) => {
        if (!isPlainObject(branch)) throw Errors.badQuery(`each ${key} condition must be an object`);
        countConditions(ctx, 1);
        return parseFilter(branch, ctx);
      });
      continue;
    }
    if (key.startsWith('$')) {
      if (OPTION_KEYS.has(key) && topLevel) continue;
      throw Errors.badQuery(`unknown operator ${key}`);
    }
    checkFieldPath(key);
    if (ctx.schema) checkNotSecret(key, ctx.schema);
    const prop = ctx.schema ? propertyFor(key, ctx.schema) : undefined;
    filter.fields[key] = parseCondition(key, value, prop, ctx);
  }
  return filter;
}

/** A secret field (a password hash) is never a query condition or a sort key: no oracle for it. */
function checkNotSecret(path: string, schema: CollectionSchema): void {
  if (schema.properties.get(path.split('.')[0])?.secret) throw Errors.badQuery(`"${path.split('.')[0]}" cannot be queried or sorted on`);
}

/** The declared property a path compares against directly (not a path into an object or array). */
function propertyFor(path: string, schema: CollectionSchema): PropertyDef | undefined {
  if (path === 'id') return { name: 'id', type: 'string', required: false, unique: true, index: true };
  return schema.properties.get(path);
}

function parseCondition(path: string, value: unknown, prop: PropertyDef | undefined, ctx: Context): Operators {
  if (isOperatorObject(value)) return parseOperators(path, value as Record<string, unknown>, prop, ctx);
  countConditions(ctx, 1);
  if (typeof value === 'string' && ctx.source === 'url' && value.startsWith('{') && value.endsWith('}')) {
    // go-deployd's `?age={"$gt":18}`
    const parsed = tryJson(value);
    if (isOperatorObject(parsed)) return parseOperators(path, parsed as Record<string, unknown>, prop, ctx);
  }
  return { $eq: coerce(path, value, prop, ctx) };
}

function parseOperators(path: string, input: Record<string, unknown>, prop: PropertyDef | undefined, ctx: Context): Operators {
  const ops: Operators = {};
  for (const [op, operand] of Object.entries(input)) {
    if (CODE_OPS.has(op)) throw Errors.badQuery(`${op} is not supported: queries cannot run server-side code`);
    if (!FIELD_OPS.has(op)) throw Errors.badQuery(`unknown operator ${op} on "${path}"`);
    countConditions(ctx, 1);
    switch (op) {
      case '$eq':
      case '$ne':
        ops[op] = coerce(path, operand, prop, ctx);
        break;
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte': {
        const v = coerce(path, operand, prop, ctx);
        if (typeof v !== 'number' && typeof v !== 'string') throw Errors.badQuery(`${op} on "${path}" needs a number, string or date`);
        ops[op] = v;
        break;
      }
      case '$in':
      case '$nin':
      case '$all': {
        const list = listOperand(path, op, operand, ctx).map((item) => coerce(path, item, prop, ctx));
        // Every `$all` item is a condition of its own, as is every `$in` item other than a number or string.
        countConditions(ctx, op === '$all' ? list.length : list.filter((x) => typeof x !== 'number' && typeof x !== 'string').length);
        ops[op] = list;
        break;
      }
      case '$exists':
        ops.$exists = toBoolean(path, op, operand);
        break;
      case '$size': {
        const n = typeof operand === 'string' && NUMERIC.test(operand) ? Number(operand) : operand;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw Errors.badQuery(`$size on "${path}" needs a non-negative integer`);
        ops.$size = n;
        break;
      }
      case '$regex':
        if (typeof operand !== 'string') throw Errors.badQuery(`$regex on "${path}" needs a string`);
        ops.$regex = operand;
        break;
      case '$options':
        if (typeof operand !== 'string' || !REGEX_OPTIONS.test(operand)) throw Errors.badQuery(`$options on "${path}" may only contain the flags i, m, s, u`);
        ops.$options = operand;
        break;
      case '$not':
        if (!isOperatorObject(operand)) throw Errors.badQuery(`$not on "${path}" needs an operator object such as {"$regex":"^a"}`);
        ops.$not = parseOperators(path, operand as Record<string, unknown>, prop, ctx);
        break;
      case '$elemMatch': {
        if (!isPlainObject(operand) || Object.keys(operand).length === 0) throw Errors.badQuery(`$elemMatch on "${path}" needs a non-empty object`);
        // MongoDB: operators on the elements themselves when the first key is an operator other than
        // $and/$or/$nor; otherwise a filter over object elements (paths relative to the element).
        const first = Object.keys(operand)[0];
        const inner: Context = { ...ctx, schema: undefined };
        ops.$elemMatch = first.startsWith('$') && !LOGICAL_OPS.has(first)
          ? { operators: parseOperators(path, operand, undefined, inner) }
          : { filter: parseFilter(operand, inner) };
        ctx.conditions = inner.conditions;
        break;
      }
    }
  }
  if (ops.$options !== undefined && ops.$regex === undefined) throw Errors.badQuery(`$options on "${path}" needs $regex`);
  if (ops.$regex !== undefined) compileRegex(path, ops.$regex, ops.$options ?? '');
  return ops;
}

function countConditions(ctx: Context, n: number): void {
  ctx.conditions += n;
  const max = ctx.limits.maxConditions ?? DEFAULT_QUERY_LIMITS.maxConditions ?? 256;
  if (ctx.conditions > max) throw Errors.badQuery(`the query has more than ${max} conditions`);
}

function listOperand(path: string, op: string, operand: unknown, ctx: Context): unknown[] {
  if (Array.isArray(operand)) return operand;
  if (typeof operand === 'string' && ctx.source === 'url') {
    if (operand.startsWith('[')) {
      const parsed = tryJson(operand);
      if (Array.isArray(parsed)) return parsed;
    }
    return operand.split(','); // `status[$in]=a,b`
  }
  if (isPlainObject(operand) && ctx.source === 'url') return Object.values(operand); // `status[$in][0]=a`
  throw Errors.badQuery(`${op} on "${path}" needs an array`);
}

function toBoolean(path: string, op: string, operand: unknown): boolean {
  if (operand === true || operand === 'true' || operand === 1 || operand === '1') return true;
  if (operand === false || operand === 'false' || operand === 0 || operand === '0') return false;
  throw Errors.badQuery(`${op} on "${path}" needs true or false`);
}

/** Coerces a query value to the declared type of its property (Deployd §2.5, minus NaN). */
function coerce(path: string, value: unknown, prop: PropertyDef | undefined, ctx: Context): Literal {
  if (isOperatorObject(value)) throw Errors.badQuery(`"${path}": operators cannot be nested inside a value`);
  if (value === null || value === undefined) return null;
  if (!prop) return toLiteral(path, value);
  switch (prop.type) {
    case 'string':
      if (typeof value === 'number' || typeof value === 'boolean') return String(value);
      return toLiteral(path, value);
    case 'number': {
      const n = typeof value === 'string' && NUMERIC.test(value.trim()) ? Number(value.trim()) : value;
      if (typeof n === 'number' && Number.isFinite(n)) return n;
      throw Errors.badQuery(`"${path}" must be a ${typeof n === 'number' ? 'finite ' : ''}number`);
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true') return true;
      if (value === 'false') return false;
      throw Errors.badQuery(`"${path}" must be a boolean`);
    case 'date': {
      const iso = toIsoDate(value);
      if (iso === undefined) throw Errors.badQuery(`"${path}" must be a date`);
      return iso;
    }
    default:
      if (ctx.source === 'url' && typeof value === 'string' && (value.startsWith('{') || value.startsWith('['))) {
        const parsed = tryJson(value);
        if (parsed !== undefined) return toLiteral(path, parsed);
      }
      return toLiteral(path, value);
  }
}

function toLiteral(path: string, value: unknown): Literal {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value as Literal;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw Errors.badQuery(`"${path}" must be a finite number`);
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => toLiteral(path, v));
  if (isPlainObject(value)) {
    const out: Record<string, Literal> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k.startsWith('$')) throw Errors.badQuery(`"${path}": operators cannot be nested inside a value`);
      out[k] = toLiteral(path, v);
    }
    return out;
  }
  throw Errors.badQuery(`"${path}" has an unsupported value`);
}

/** A non-negative integer; beyond 2^53 only when `safe` is false (a `$limit`, which is clamped anyway). */
function parseCount(name: string, value: unknown, safe: boolean): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  const integer = typeof n === 'number' && (safe ? Number.isSafeInteger(n) : Number.isInteger(n));
  if (!integer || (n as number) < 0) throw Errors.badQuery(`${name} must be a non-negative integer`);
  return n as number;
}

/** MongoDB sorts on at most 32 keys. */
const MAX_SORT_KEYS = 32;

function parseSort(value: unknown): SortKey[] {
  const keys = parseSortKeys(value);
  if (keys.length > MAX_SORT_KEYS) throw Errors.badQuery(`$sort takes at most ${MAX_SORT_KEYS} keys`);
  return keys;
}

function parseSortKeys(value: unknown): SortKey[] {
  let spec = value;
  if (typeof spec === 'string') {
    const trimmed = spec.trim();
    if (trimmed.startsWith('{')) spec = tryJson(trimmed);
    else {
      // `$sort=priority` or `$sort=-priority,title`
      return trimmed.split(',').filter(Boolean).map((part) => {
        const desc = part.startsWith('-');
        const field = desc ? part.slice(1) : part;
        checkFieldPath(field);
        return { field, direction: desc ? -1 : 1 };
      });
    }
  }
  if (!isPlainObject(spec)) throw Errors.badQuery('$sort must be an object like {"priority":-1}');
  return Object.entries(spec).map(([field, dir]) => {
    checkFieldPath(field);
    const d = typeof dir === 'string' ? dir.trim().toLowerCase() : dir;
    if (d === 1 || d === '1' || d === 'asc' || d === 'ascending') return { field, direction: 1 as const };
    if (d === -1 || d === '-1' || d === 'desc' || d === 'descending') return { field, direction: -1 as const };
    throw Errors.badQuery(`$sort direction for "${field}" must be 1 or -1`);
  });
}

function parseFields(value: unknown): Projection {
  let spec = value;
  if (typeof spec === 'string') {
    const trimmed = spec.trim();
    spec = trimmed.startsWith('{') ? tryJson(trimmed) : Object.fromEntries(trimmed.split(',').filter(Boolean).map((f) => [f, 1]));
  }
  if (Array.isArray(spec)) spec = Object.fromEntries(spec.map((f) => [String(f), 1]));
  if (!isPlainObject(spec)) throw Errors.badQuery('$fields must be an object like {"title":1} or a list like title,priority');
  let mode: Projection['mode'] | undefined;
  const fields: string[] = [];
  let excludeId = false;
  for (const [field, flag] of Object.entries(spec)) {
    checkFieldPath(field);
    const include = flag === 1 || flag === true || flag === '1' || flag === 'true';
    const exclude = flag === 0 || flag === false || flag === '0' || flag === 'false';
    if (!include && !exclude) throw Errors.badQuery(`$fields value for "${field}" must be 1 or 0`);
    if (field === 'id') { excludeId = exclude; continue; }
    const m = include ? 'include' : 'exclude';
    if (mode && mode !== m) throw Errors.badQuery('$fields cannot mix including and excluding fields');
    mode = m;
    fields.push(field);
  }
  return { mode: mode ?? 'exclude', fields, excludeId };
}

export function checkFieldPath(path: string): void {
  if (path.length === 0 || path.length > 256) throw Errors.badQuery('field names must be 1 to 256 characters');
  for (const segment of path.split('.')) {
    if (segment === '' || segment.startsWith('$')) throw Errors.badQuery(`invalid field name "${path}"`);
    if (FORBIDDEN_KEYS.has(segment)) throw Errors.forbiddenKey(segment);
    // Quotes, backslashes and control characters never reach a JSON path in SQL.
    if (/["\\\u0000-\u001f]/.test(segment)) throw Errors.badQuery(`invalid field name "${path}"`);
  }
}


function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isOperatorObject(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => k.startsWith('$'));
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
