/**
 * Translates a normalized filter into an SQLite WHERE clause over `json_extract(data, '$.path')`,
 * with MongoDB's semantics:
 *   - comparisons only match values of the operand's type (`{"$gt":5}` never matches a string);
 *   - a condition on an array field matches when the array or any element matches;
 *   - `$ne`, `$nin`, `$not` and `$nor` also match documents where the field is missing;
 *   - `{"field": null}` matches null and missing.
 * Field paths reach SQL only after `checkFieldPath` (no quotes, backslashes or control characters),
 * and are embedded as JSON-path string literals so that expression indexes apply; every value is a
 * bound parameter.
 */
import type { CollectionSchema } from '../../core/schema.js';
import type { Filter, Literal, Operators } from '../../core/filter.js';
import type { SortKey } from '../../core/filter.js';

export interface SqlFragment {
  sql: string;
  params: Record<string, string | number>;
}

type Predicate = (value: string, type: string) => string;

const NUMBER_TYPES = `('integer','real')`;

export function jsonPath(path: string): string {
  let out = '$';
  for (const segment of path.split('.')) {
    out += /^\d+$/.test(segment) ? `[${segment}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(segment) ? `.${segment}` : `."${segment}"`;
  }
  return sqlString(out);
}

export function sqlString(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export class FilterTranslator {
  private readonly params: Record<string, string | number> = {};
  private paramCount = 0;
  private aliasCount = 0;

  constructor(private readonly schema: CollectionSchema) {}

  translate(filter: Filter): SqlFragment {
    return { sql: this.filter(filter, 'data', true), params: this.params };
  }

  /**
   * ORDER BY with MongoDB's order across types: (empty array <) null = missing < numbers < strings
   * < objects < arrays < booleans; an array sorts by its smallest element ascending and by its
   * largest descending. Declared scalar properties hold one type (or null), so they sort by the
   * plain expression, which their expression index can serve.
   */
  orderBy(sort: SortKey[] | undefined): string {
    const keys: string[] = [];
    for (const { field, direction } of sort ?? []) {
      const dir = direction === -1 ? 'DESC' : 'ASC';
      if (field === 'id') {
        keys.push(`id ${dir}`);
        continue;
      }
      const jp = jsonPath(field);
      const prop = this.schema.properties.get(field);
      if (prop && prop.type !== 'array' && prop.type !== 'object') {
        keys.push(`json_extract(data, ${jp}) ${dir}`);
        continue;
      }
      const t = `json_type(data, ${jp})`;
      const e = this.alias();
      // Objects (and arrays inside arrays) compare as BSON does, through dpd_sort_key (sort-key.ts).
      const comparable = (v: string, type: string) => `CASE WHEN ${type} IN ('object','array') THEN dpd_sort_key(${v}) ELSE ${v} END`;
      const pick = (what: string) => `(SELECT ${what} FROM json_each(data, ${jp}) AS ${e} ORDER BY ${typeRank(`${e}.type`)} ${dir}, ${comparable(`${e}.value`, `${e}.type`)} ${dir} LIMIT 1)`;
      keys.push(`CASE WHEN ${t} = 'array' THEN CASE WHEN json_array_length(data, ${jp}) = 0 THEN -1 ELSE ${pick(typeRank(`${e}.type`))} END ELSE ${typeRank(t)} END ${dir}`);
      keys.push(`CASE WHEN ${t} = 'array' THEN ${pick(comparable(`${e}.value`, `${e}.type`))} ELSE ${comparable(`json_extract(data, ${jp})`, t)} END ${dir}`);
    }
    keys.push('rowid ASC'); // insertion order, as MongoDB's natural order, and a stable tie-break
    return keys.join(', ');
  }

  private bind(value: string | number): string {
    const name = `p${this.paramCount++}`;
    this.params[name] = value;
    return `@${name}`;
  }

  private alias(): string {
    return `j${this.aliasCount++}`;
  }

  private filter(filter: Filter, doc: string, schemaAware: boolean): string {
    const parts: string[] = [];
    for (const [path, ops] of Object.entries(filter.fields)) parts.push(this.field(path, ops, doc, schemaAware));
    if (filter.$and) parts.push(join(filter.$and.map((f) => this.filter(f, doc, schemaAware)), 'AND'));
    if (filter.$or) parts.push(join(filter.$or.map((f) => this.filter(f, doc, schemaAware)), 'OR'));
    if (filter.$nor) parts.push(negate(join(filter.$nor.map((f) => this.filter(f, doc, schemaAware)), 'OR')));
    return join(parts, 'AND');
  }

  /** One field's operators, ANDed. */
  private field(path: string, ops: Operators, doc: string, schemaAware: boolean): string {
    const parts: string[] = [];
    const each = (predicate: Predicate) => this.anyValue(path, doc, schemaAware, predicate, true);
    const whole = (predicate: Predicate) => this.anyValue(path, doc, schemaAware, predicate, false);
    if (ops.$eq !== undefined) parts.push(this.eqMatch(path, ops.$eq, doc, schemaAware));
    if (ops.$ne !== undefined) parts.push(negate(this.eqMatch(path, ops.$ne, doc, schemaAware)));
    for (const op of ['$gt', '$gte', '$lt', '$lte'] as const) {
      const operand = ops[op];
      if (operand !== undefined) parts.push(each((v, t) => this.range(op, operand, v, t)));
    }
    if (ops.$in) parts.push(this.inMatch(path, ops.$in, doc, schemaAware));
    if (ops.$nin) parts.push(negate(this.inMatch(path, ops.$nin, doc, schemaAware)));
    if (ops.$all) {
      parts.push(ops.$all.length === 0 ? '0' : join(ops.$all.map((item) => this.eqMatch(path, item, doc, schemaAware)), 'AND'));
    }
    if (ops.$exists !== undefined) {
      const exists = whole((_v, t) => `${t} IS NOT NULL`);
      parts.push(ops.$exists ? exists : negate(exists));
    }
    if (ops.$size !== undefined) {
      const size = ops.$size;
      // CASE, not AND: SQLite may evaluate json_array_length on a plain string, which is not JSON text.
      parts.push(whole((v, t) => `(CASE WHEN ${t} = 'array' THEN json_array_length(${v}) = ${this.bind(size)} ELSE 0 END)`));
    }
    if (ops.$regex !== undefined) {
      const regex = ops.$regex;
      const flags = ops.$options ?? '';
      parts.push(each((v, t) => this.regex(regex, flags, v, t)));
    }
    if (ops.$not) parts.push(negate(this.field(path, ops.$not, doc, schemaAware)));
    if (ops.$elemMatch) {
      const match = ops.$elemMatch;
      parts.push(whole((v, t) => {
        const k = this.alias();
        const inner = 'filter' in match
          ? `CASE WHEN ${k}.type = 'object' THEN (${this.filter(match.filter, `${k}.value`, false)}) ELSE 0 END`
          : this.elementOperators(match.operators, `${k}.value`, `${k}.type`);
        return `(${t} = 'array' AND EXISTS (SELECT 1 FROM json_each(${v}) AS ${k} WHERE ${inner}))`;
      }));
    }
    return join(parts, 'AND');
  }

  /** Operators applied to one array element (inside `$elemMatch`). */
  private elementOperators(ops: Operators, v: string, t: string): string {
    const parts: string[] = [];
    if (ops.$eq !== undefined) parts.push(this.eq(ops.$eq, v, t));
    if (ops.$ne !== undefined) parts.push(negate(this.eq(ops.$ne, v, t)));
    for (const op of ['$gt', '$gte', '$lt', '$lte'] as const) {
      const operand = ops[op];
      if (operand !== undefined) parts.push(this.range(op, operand, v, t));
    }
    if (ops.$in) parts.push(this.inList(ops.$in, v, t));
    if (ops.$nin) parts.push(negate(this.inList(ops.$nin, v, t)));
    if (ops.$exists !== undefined) parts.push(ops.$exists ? '1' : '0');
    if (ops.$regex !== undefined) parts.push(this.regex(ops.$regex, ops.$options ?? '', v, t));
    if (ops.$size !== undefined) parts.push(`(CASE WHEN ${t} = 'array' THEN json_array_length(${v}) = ${this.bind(ops.$size)} ELSE 0 END)`);
    if (ops.$not) parts.push(negate(this.elementOperators(ops.$not, v, t)));
    return join(parts, 'AND');
  }

  private eqMatch(path: string, literal: Literal, doc: string, schemaAware: boolean): string {
    // An array operand compares with the whole array only; a scalar also with each element.
    const expand = !Array.isArray(literal);
    return this.anyValue(path, doc, schemaAware, (v, t) => this.eq(literal, v, t), expand);
  }

  private inMatch(path: string, list: Literal[], doc: string, schemaAware: boolean): string {
    return this.anyValue(path, doc, schemaAware, (v, t) => this.inList(list, v, t), true);
  }

  /**
   * True when some value at `path` satisfies the predicate: the value itself, or (when
   * `expandArrays`) any element of it if it is an array. A dotted path into a declared array
   * property visits every element of that array (`items.name`).
   */
  private anyValue(path: string, doc: string, schemaAware: boolean, predicate: Predicate, expandArrays: boolean): string {
    if (schemaAware && doc === 'data' && path === 'id') return predicate('id', `'text'`);
    const segments = path.split('.');
    const prop = schemaAware ? this.schema.properties.get(segments[0]) : undefined;
    if (prop?.type === 'array' && segments.length > 1 && !/^\d+$/.test(segments[1])) {
      const j = this.alias();
      const head = jsonPath(segments[0]);
      const rest = segments.slice(1).join('.');
      const inner = this.anyValue(rest, `${j}.value`, false, predicate, expandArrays);
      const elements = `EXISTS (SELECT 1 FROM json_each(${doc}, ${head}) AS ${j} WHERE CASE WHEN ${j}.type = 'object' THEN (${inner}) ELSE 0 END)`;
      // When the array is missing or null, the path is simply missing (`{"items.name":null}` matches).
      const otherwise = this.anyValue(path, doc, false, predicate, expandArrays);
      return `(CASE WHEN json_type(${doc}, ${head}) = 'array' THEN ${elements} ELSE ${otherwise} END)`;
    }
    const jp = jsonPath(path);
    const v = `json_extract(${doc}, ${jp})`;
    const t = `json_type(${doc}, ${jp})`;
    const direct = predicate(v, t);
    const scalarProperty = prop !== undefined && segments.length === 1 && prop.type !== 'array' && prop.type !== 'object';
    if (!expandArrays || scalarProperty) return direct;
    const e = this.alias();
    const elements = predicate(`${e}.value`, `${e}.type`);
    return `(${direct} OR (${t} = 'array' AND EXISTS (SELECT 1 FROM json_each(${doc}, ${jp}) AS ${e} WHERE ${elements})))`;
  }

  private eq(literal: Literal, v: string, t: string): string {
    if (literal === null) return `(${t} IS NULL OR ${t} = 'null')`;
    if (typeof literal === 'boolean') return `${t} = '${literal ? 'true' : 'false'}'`;
    if (typeof literal === 'number') return `(${t} IN ${NUMBER_TYPES} AND ${v} = ${this.bind(literal)})`;
    if (typeof literal === 'string') return `(${t} = 'text' AND ${v} = ${this.bind(literal)})`;
    const kind = Array.isArray(literal) ? 'array' : 'object';
    return `(${t} = '${kind}' AND json(${v}) = json(${this.bind(JSON.stringify(literal))}))`;
  }

  /**
   * Numbers and strings are bound as one JSON array each (`IN (SELECT value FROM json_each(@p))`):
   * any list length, one statement shape, and expression indexes still apply.
   */
  private inList(list: Literal[], v: string, t: string): string {
    if (list.length === 0) return '0';
    const numbers = list.filter((x): x is number => typeof x === 'number');
    const strings = list.filter((x): x is string => typeof x === 'string');
    const parts: string[] = [];
    if (numbers.length) parts.push(`(${t} IN ${NUMBER_TYPES} AND ${v} IN (SELECT value FROM json_each(${this.bind(JSON.stringify(numbers))})))`);
    if (strings.length) parts.push(`(${t} = 'text' AND ${v} IN (SELECT value FROM json_each(${this.bind(JSON.stringify(strings))})))`);
    for (const other of list) {
      if (typeof other !== 'number' && typeof other !== 'string') parts.push(this.eq(other, v, t));
    }
    return join(parts, 'OR');
  }

  private range(op: '$gt' | '$gte' | '$lt' | '$lte', operand: string | number, v: string, t: string): string {
    const sqlOp = { $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' }[op];
    const guard = typeof operand === 'number' ? `${t} IN ${NUMBER_TYPES}` : `${t} = 'text'`;
    return `(${guard} AND ${v} ${sqlOp} ${this.bind(operand)})`;
  }

  private regex(source: string, flags: string, v: string, t: string): string {
    return `(${t} = 'text' AND dpd_regexp(${this.bind(source)}, ${this.bind(flags)}, ${v}))`;
  }
}

/**
 * Joins conditions as a balanced tree, so that thousands of `$or` branches stay far below SQLite's
 * expression depth limit (1000).
 */
function join(parts: string[], op: 'AND' | 'OR'): string {
  if (parts.length === 0) return op === 'AND' ? '1' : '0';
  if (parts.length === 1) return parts[0];
  const mid = parts.length >> 1;
  return `(${join(parts.slice(0, mid), op)} ${op} ${join(parts.slice(mid), op)})`;
}

/** MongoDB's sort rank of a JSON type (missing and null rank alike). */
function typeRank(type: string): string {
  return `CASE ${type} WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 WHEN 'object' THEN 3 WHEN 'array' THEN 4 WHEN 'true' THEN 5 WHEN 'false' THEN 5 ELSE 0 END`;
}

/** SQL NOT that treats an unknown (NULL) comparison as "does not match", as MongoDB does. */
function negate(condition: string): string {
  return `NOT IFNULL(${condition}, 0)`;
}
