/**
 * The read side of a collection: the view a caller gets of a document (the rules, the Get hook run
 * for that caller, hidden and secret fields removed), and queries judged against that view, so no
 * query tells a caller about a value it could not GET (src/policy/read-policy.ts decides each step).
 */
import { Errors } from '../errors.js';
import type { Caller, HookResult, JsonObject } from '../hooks/protocol.js';
import { parseQuery, type ParsedQuery, type QueryLimits } from '../query/filter.js';
import type { Filter } from '../core/filter.js';
import type { Doc } from '../core/document.js';
import type { CollectionSchema } from '../core/schema.js';
import type { CollectionStore } from '../store/store.js';
import { alteredField, checkQueryable, hiddenProperties, queriedFields, withoutHidden } from '../policy/read-policy.js';
import { mayRead } from '../policy/rules.js';
import { hide, visible } from '../pipeline/hook-outcome.js';
import type { CollectionHooks, HookStep } from '../pipeline/hook-step.js';
import { viewScope, type RequestScope } from '../pipeline/request-scope.js';

export type QuerySource = 'url' | 'json';

/** The collection a reader reads for (its hooks change when it is reloaded). */
export interface ReadSource {
  readonly name: string;
  readonly schema: CollectionSchema;
  readonly hooks: CollectionHooks;
  readonly step: HookStep;
  strip<T extends Record<string, unknown>>(doc: T): T;
  track<T>(fn: () => Promise<T>): Promise<T>;
}

export interface ReaderDeps {
  store: CollectionStore;
  limits: QueryLimits;
  log: { warn(obj: object, msg: string): void };
}

export class Reader {
  /** Properties declared `"hidden": true`: only root reads them. */
  readonly hiddenProps: string[];

  constructor(private readonly source: ReadSource, private readonly deps: ReaderDeps) {
    this.hiddenProps = hiddenProperties(source.schema);
  }

  /** The document as `caller` could GET it, or null when it may not (see Collection.readableBy). */
  async readableBy(caller: Caller, doc: Record<string, unknown>, within?: RequestScope): Promise<JsonObject | null> {
    return (await this.readView(caller, doc, within))?.view ?? null;
  }

  /** `readableBy`, with the fields the Get hook hid (whether or not this document has them). */
  async readView(caller: Caller, doc: Record<string, unknown>, within?: RequestScope): Promise<{ view: JsonObject; hidden: string[] } | null> {
    if (!mayRead(this.source.schema, caller, doc)) return null;
    const stripped = this.source.strip(doc);
    const scope = viewScope(caller, within);
    if (!this.source.step.runs(scope, 'get')) return { view: this.hideFrom(caller, stripped) as JsonObject, hidden: [] };
    let result: HookResult | undefined;
    try {
      result = await this.source.track(() => this.source.step.run(scope, 'get', { data: stripped, query: {}, method: 'GET', requestEvent: 'GET' }));
    } catch (err) {
      // A Get hook that cannot run (it does not load, its sidecar is down) fails closed: not readable.
      this.deps.log.warn({ collection: this.source.name, event: 'get', err: (err as Error).message }, 'the Get hook failed while shaping a view: answered as not readable');
      return null;
    }
    if (!result) return { view: this.hideFrom(caller, stripped) as JsonObject, hidden: [] };
    if (result.cancel || Object.keys(result.errors).length > 0) return null;
    return { view: this.viewOf(caller, result), hidden: result.hidden };
  }

  /** Fields non-root readers cannot see: declared hidden properties and what the Get hook hides by name. */
  private get unseen(): ReadonlySet<string> {
    if (this.unseenOf !== this.source.hooks) {
      this.unseenOf = this.source.hooks;
      this.unseenFields = new Set([...this.hiddenProps, ...(this.source.hooks.hides ?? [])]);
    }
    return this.unseenFields;
  }

  private unseenOf?: CollectionHooks;
  private unseenFields: ReadonlySet<string> = new Set();

  /** A query, refused (400) when it filters or sorts on a field the caller cannot see. */
  parseFor(scope: RequestScope, raw: Record<string, unknown>, source: QuerySource): ParsedQuery {
    const parsed = parseQuery(raw, this.source.schema, source, this.deps.limits);
    checkQueryable(scope.caller, parsed, this.unseen);
    return parsed;
  }

  /** The Get hook's document as the caller may see it: without what the hook hid or the schema hides. */
  viewOf(caller: Caller, result: HookResult): JsonObject {
    return this.hideFrom(caller, visible(result));
  }

  hideFrom<T extends Record<string, unknown>>(caller: Caller, doc: T): T {
    return withoutHidden(caller, doc, this.hiddenProps);
  }

  /**
   * The net under `checkQueryable`: whether the Get hook hid a field the query looks at (under a
   * computed name: `hidden` lists it whether or not this document has it), or the caller's view
   * differs from the stored document there (a rewritten value). Such a document is answered as not
   * matching, whatever its stored value.
   */
  queriesUnseen(caller: Caller, stored: Record<string, unknown>, view: Record<string, unknown>, queried: ReadonlySet<string>, hidden: readonly string[] = []): boolean {
    if (caller.isRoot || queried.size === 0) return false;
    const field = hidden.find((f) => queried.has(f)) ?? alteredField(stored, view, queried);
    if (field === undefined) return false;
    if (!this.warnedUnseen.has(field)) {
      this.warnedUnseen.add(field);
      this.deps.log.warn({ collection: this.source.name, field }, 'a query filters on a field the Get hook hides or changes: such documents are left out; declare it "hidden": true in config.json to refuse these queries instead');
    }
    return true;
  }

  private readonly warnedUnseen = new Set<string>();

  /**
   * Whether the document with `view` as the caller's view matches the query's filter — judged only
   * on fields that view shows as stored.
   */
  async matches(scope: RequestScope, stored: Doc, view: Record<string, unknown>, parsed: ParsedQuery, hidden?: readonly string[]): Promise<boolean> {
    if (isEmpty(parsed.filter)) return true;
    if (this.queriesUnseen(scope.caller, this.source.strip(stored), view, queriedFields(parsed), hidden)) return false;
    const [match] = await this.deps.store.find(withId(stored.id, parsed.filter), { limit: 1 });
    return match !== undefined;
  }

  /**
   * For a write addressed by id with a query (`PUT /c/<id>?status=open`): 404 unless the caller can
   * read the document and its view matches — so the query cannot probe fields the caller cannot see.
   */
  async requireMatch(scope: RequestScope, stored: Doc, parsed: ParsedQuery): Promise<void> {
    if (isEmpty(parsed.filter)) return;
    const seen = await this.readView(scope.caller, stored, scope);
    if (!seen || !(await this.matches(scope, stored, seen.view, parsed, seen.hidden))) throw Errors.notFound();
  }

  /** The documents among `docs` that the caller can read and whose view matches the query. */
  async visibleMatches(scope: RequestScope, docs: Doc[], parsed: ParsedQuery): Promise<Doc[]> {
    const queried = queriedFields(parsed);
    const seen = await Promise.all(docs.map((doc) => this.readView(scope.caller, doc, scope)));
    return docs.filter((doc, i) => seen[i] !== null && !this.queriesUnseen(scope.caller, this.source.strip(doc), seen[i]!.view, queried, seen[i]!.hidden));
  }

  /** A write's answer, through the read policy: the document as the caller could GET it, or just its id. */
  async respond(scope: RequestScope, doc: Doc, hidden: string[]): Promise<Record<string, unknown>> {
    const view = await this.readableBy(scope.caller, doc, scope);
    return view ? hide(view, hidden) : { id: doc.id };
  }
}

export function withId(id: string, filter: Filter): Filter {
  return isEmpty(filter) ? { fields: { id: { $eq: id } } } : { fields: { id: { $eq: id } }, $and: [filter] };
}

export function isEmpty(filter: Filter): boolean {
  return Object.keys(filter.fields).length === 0 && !filter.$and && !filter.$or && !filter.$nor;
}
