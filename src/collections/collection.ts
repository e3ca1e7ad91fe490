/**
 * A collection's behaviour, independent of HTTP: list, get, count, create, update, delete over a
 * store, with Deployd's event order (deployd-behaviour.md §1.4) and two deliberate changes:
 * AfterCommit runs after the commit and before the response (so it can shape the response), and
 * on DELETE it runs once per deleted document.
 *
 *   GET     BeforeRequest → find → Get per document (a cancel drops that item from a list)
 *   POST    BeforeRequest → Validate → defaults/required → Post → insert → AfterCommit
 *   PUT     BeforeRequest → load → merge → Validate → Put → update → AfterCommit
 *   DELETE  BeforeRequest → find → Delete per document → remove → AfterCommit per document
 *
 * Hook `emit()`s are queued on the request: those queued before the commit go out with the change,
 * at the commit; the rest (AfterCommit's) once the request succeeds.
 */
import type { EventPublisher } from '../events/event-log.js';
import { DeploydError, Errors, validationError } from '../errors.js';
import type { HookRunner } from '../hooks/hook-runner.js';
import type { Caller, Emit, EventContext, HookEvent, HookResult, JsonObject, SessionRooms } from '../hooks/protocol.js';
import { parseQuery, type ParsedQuery, type QueryLimits } from '../query/filter.js';
import { project, type Filter } from '../core/filter.js';
import type { CollectionStore } from '../store/store.js';
import type { Doc } from '../core/document.js';
import type { UpdateSpec } from '../core/update.js';
import { alteredField, checkQueryable, hiddenProperties, queriedFields, withoutHidden } from '../policy/read-policy.js';
import { andFilter, checkDocument, mayRead, ruleFilter } from '../policy/rules.js';
import { authorizeUpdate, effectiveChange, ownsDocuments, protectedFields, stampOwner, touchedFields, type Writer } from '../policy/write-policy.js';
import { applyHookChanges, completeCreate, previewUpdate, readCreate, readUpdate, takeSecrets } from '../core/document.js';
import { assertWriteHooksReady } from './hook-readiness.js';
import { newId } from '../core/id.js';
import { secretFields, type CollectionSchema } from '../core/schema.js';
import { applyUpdate, hasChanges, withoutFields } from '../core/update.js';

export type { Caller };

/** One request's view: who calls, and what it queued for publication. */
export interface RequestScope {
  caller: Caller;
  /** True for requests made by the `dpd` client inside a hook. */
  internal: boolean;
  requestId: string;
  /** `METHOD /path` of the internal calls made so far in this request tree (shared, as Deployd's). */
  stack: string[];
  /** How many times one `METHOD /path` may appear on the stack (Deployd: 2). */
  limitRecursion: number;
  /** Root only: run no hooks (Deployd's `$skipEvents`). */
  skipEvents: boolean;
  /** Published when the request succeeds. */
  outbox: Array<() => void>;
  /** The caller's login session, when logged in: its hashed id, the user and their collection. */
  session?: { id: string; uid: string; collection: string; rooms: string[] };
  /** The request as hooks see it (Deployd's `ctx.url` and `ctx.body`). */
  request?: { url: string; body: unknown };
}

/** What a request asks of the client's session cookie besides its body (login, logout). */
export type SessionChange = { token: string; maxAgeMs: number } | { clear: true };

export interface CollectionHooks {
  /** The runner's name for this version of the collection's hooks. */
  key?: string;
  events: Set<HookEvent>;
  /** Load errors by event: requests needing that hook fail closed with this message. */
  errors: Partial<Record<HookEvent, string>>;
  /** Fields the Get hook hides by a literal name (read from its source): never queryable by non-root callers. */
  hides?: string[];
}

export interface CollectionDeps {
  store: CollectionStore;
  runner?: HookRunner;
  bus: EventPublisher;
  limits: QueryLimits;
  /** Stores a session's rooms (after `session.joinRoom` in a hook). */
  saveSessionRooms?: (sessionId: string, rooms: string[]) => Promise<void>;
  /** The user ids matching a query on a users collection (`emit(dpd.users, query, …)`). */
  resolveUsers?: (collection: string, query: JsonObject) => Promise<string[]>;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void; debug(obj: object, msg: string): void };
  clock?: () => Date;
}

/** A response body that is already JSON text (lists read straight from the store). */
export class RawJson {
  constructor(readonly text: string) {}
  toJSON(): unknown {
    return JSON.parse(this.text);
  }
}

/** What a handler answers: the body and, when a hook changed it, the status. */
export interface Answer {
  body: unknown;
  status?: number;
  session?: SessionChange;
}

type QuerySource = 'url' | 'json';

interface HookInput {
  data: Record<string, unknown>;
  previous?: Record<string, unknown> | null;
  query?: Record<string, unknown>;
  method: string;
  requestEvent: string;
  success?: boolean;
}

export class Collection {
  hooks: CollectionHooks = { events: new Set(), errors: {} };
  protected readonly clock: () => Date;
  /** Fields that never leave the server (a user's password hash). */
  protected readonly secrets: string[];
  /** Properties declared `"hidden": true`: only root reads them. */
  private readonly hiddenProps: string[];

  constructor(readonly schema: CollectionSchema, protected readonly deps: CollectionDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.secrets = secretFields(schema);
    this.hiddenProps = hiddenProperties(schema);
  }

  get name(): string {
    return this.schema.name;
  }

  private active = 0;
  private onIdle?: () => void;

  /** Counts a request in flight, so a replaced version can release its hooks once idle. */
  async track<T>(fn: () => Promise<T>): Promise<T> {
    this.active++;
    try {
      return await fn();
    } finally {
      if (--this.active === 0 && this.onIdle) {
        const idle = this.onIdle;
        this.onIdle = undefined;
        idle();
      }
    }
  }

  /** Called when a newer version replaced this one: `release` runs once no request uses it. */
  retire(release: () => void): void {
    if (this.active === 0) release();
    else this.onIdle = release;
  }

  // ---- reads ------------------------------------------------------------------------------------
  // Every answer made of documents goes through the read policy (src/policy/read-policy.ts): the
  // rules, the Get hook, hidden and secret fields — and queries are judged against that view.

  async list(scope: RequestScope, raw: Record<string, unknown>, source: QuerySource, requestEvent = 'GET'): Promise<Answer> {
    const only = ruleFilter(this.schema, scope.caller, 'read');
    const query = await this.beforeRequest(scope, requestEvent, 'GET', raw);
    const parsed = this.parseFor(scope, query, source);
    // An `owner` rule filters in the store, so `$limit`/`$skip` pages stay full and correct.
    const filter = andFilter(parsed.filter, only);
    const { store } = this.deps;
    const hooked = this.runs(scope, 'get');
    const asStored = this.secrets.length === 0 && (scope.caller.isRoot || this.hiddenProps.length === 0);
    if (!hooked && !parsed.projection && store.findJson && asStored) {
      return answer(new RawJson(await store.findJson(filter, parsed.options)));
    }
    const docs = (await store.find(filter, parsed.options)).map((d) => this.strip(d));
    if (!hooked) return answer(docs.map((doc) => project(this.hideFrom(scope.caller, doc), parsed.projection)));
    const queried = queriedFields(parsed);
    const results = await Promise.all(docs.map((doc) => this.hook(scope, 'get', { data: doc, query, method: 'GET', requestEvent })));
    const out: JsonObject[] = [];
    results.forEach((result, i) => {
      if (!result) return;
      this.collect(scope, result);
      if (result.cancel) {
        if (result.cancel.isError) throw this.cancelled(result);
        return; // Deployd: cancel() in a list's Get drops that item
      }
      if (Object.keys(result.errors).length > 0) throw validationError(result.errors);
      const view = this.viewOf(scope.caller, result);
      if (this.queriesUnseen(scope.caller, docs[i], view, queried, result.hidden)) return;
      out.push(project(view, parsed.projection));
    });
    return answer(out);
  }

  async get(scope: RequestScope, id: string, raw: Record<string, unknown>, source: QuerySource): Promise<Answer> {
    ruleFilter(this.schema, scope.caller, 'read');
    const query = await this.beforeRequest(scope, 'GET', 'GET', { ...raw, id });
    const { id: _id, ...rest } = query;
    const parsed = this.parseFor(scope, rest, source);
    // Found by id alone: the query's filter is judged only on what the caller may see (below), so a
    // filter on a field it cannot read never tells "matches" (an error) from "does not" (404).
    const found = await this.loadStored(id);
    if (!found) throw Errors.notFound();
    checkDocument(this.schema, scope.caller, 'read', found);
    const doc = this.strip(found);
    const result = await this.hook(scope, 'get', { data: doc, query, method: 'GET', requestEvent: 'GET' });
    let view = this.hideFrom(scope.caller, doc) as JsonObject;
    if (result) {
      this.collect(scope, result);
      if (result.cancel) throw this.cancelled(result);
      if (Object.keys(result.errors).length > 0) throw validationError(result.errors);
      view = this.viewOf(scope.caller, result);
    }
    if (!(await this.matches(scope, found, view, parsed, result?.hidden))) throw Errors.notFound();
    return answer(project(view, parsed.projection));
  }

  /** `{"count":n}`; root only when a Get hook could hide documents from the caller (Deployd). */
  async count(scope: RequestScope, raw: Record<string, unknown>, source: QuerySource): Promise<Answer> {
    if (this.hooks.events.has('get') && !scope.caller.isRoot) throw Errors.forbidden('Must be root to count');
    const only = ruleFilter(this.schema, scope.caller, 'read');
    const parsed = this.parseFor(scope, raw, source);
    return answer({ count: await this.deps.store.count(andFilter(parsed.filter, only)) });
  }

  /**
   * The document as `caller` could GET it — the rules, the Get hook run for that caller, hidden and
   * secret fields removed — or null when it may not (real-time delivery and write answers use this).
   * `within`: the request this is part of (its emits are not published: a view is not a request).
   */
  async readableBy(caller: Caller, doc: Record<string, unknown>, within?: RequestScope): Promise<JsonObject | null> {
    return (await this.readView(caller, doc, within))?.view ?? null;
  }

  /** `readableBy`, with the fields the Get hook hid (whether or not this document has them). */
  private async readView(caller: Caller, doc: Record<string, unknown>, within?: RequestScope): Promise<{ view: JsonObject; hidden: string[] } | null> {
    if (!mayRead(this.schema, caller, doc)) return null;
    const stripped = this.strip(doc);
    const scope: RequestScope = within
      ? { ...within, outbox: [] }
      : { caller, internal: false, requestId: 'realtime', stack: [], limitRecursion: 2, skipEvents: false, outbox: [] };
    if (!this.runs(scope, 'get')) return { view: this.hideFrom(caller, stripped) as JsonObject, hidden: [] };
    let result: HookResult | undefined;
    try {
      result = await this.track(() => this.hook(scope, 'get', { data: stripped, query: {}, method: 'GET', requestEvent: 'GET' }));
    } catch (err) {
      // A Get hook that cannot run (it does not load, its sidecar is down) fails closed: not readable.
      this.deps.log.warn({ collection: this.name, event: 'get', err: (err as Error).message }, 'the Get hook failed while shaping a view: answered as not readable');
      return null;
    }
    if (!result) return { view: this.hideFrom(caller, stripped) as JsonObject, hidden: [] };
    if (result.cancel || Object.keys(result.errors).length > 0) return null;
    return { view: this.viewOf(caller, result), hidden: result.hidden };
  }

  /** Fields non-root readers cannot see: declared hidden properties and what the Get hook hides by name. */
  private get unseen(): ReadonlySet<string> {
    if (this.unseenOf !== this.hooks) {
      this.unseenOf = this.hooks;
      this.unseenFields = new Set([...this.hiddenProps, ...(this.hooks.hides ?? [])]);
    }
    return this.unseenFields;
  }

  private unseenOf?: CollectionHooks;
  private unseenFields: ReadonlySet<string> = new Set();

  /** A query, refused (400) when it filters or sorts on a field the caller cannot see. */
  private parseFor(scope: RequestScope, raw: Record<string, unknown>, source: QuerySource): ParsedQuery {
    const parsed = this.parse(raw, source);
    checkQueryable(scope.caller, parsed, this.unseen);
    return parsed;
  }

  /** The Get hook's document as the caller may see it: without what the hook hid or the schema hides. */
  private viewOf(caller: Caller, result: HookResult): JsonObject {
    return this.hideFrom(caller, visible(result));
  }

  private hideFrom<T extends Record<string, unknown>>(caller: Caller, doc: T): T {
    return withoutHidden(caller, doc, this.hiddenProps);
  }

  /**
   * The net under `checkQueryable`: whether the Get hook hid a field the query looks at (under a
   * computed name: `hidden` lists it whether or not this document has it), or the caller's view
   * differs from the stored document there (a rewritten value). Such a document is answered as not
   * matching, whatever its stored value.
   */
  private queriesUnseen(caller: Caller, stored: Record<string, unknown>, view: Record<string, unknown>, queried: ReadonlySet<string>, hidden: readonly string[] = []): boolean {
    if (caller.isRoot || queried.size === 0) return false;
    const field = hidden.find((f) => queried.has(f)) ?? alteredField(stored, view, queried);
    if (field === undefined) return false;
    if (!this.warnedUnseen.has(field)) {
      this.warnedUnseen.add(field);
      this.deps.log.warn({ collection: this.name, field }, 'a query filters on a field the Get hook hides or changes: such documents are left out; declare it "hidden": true in config.json to refuse these queries instead');
    }
    return true;
  }

  private readonly warnedUnseen = new Set<string>();

  /**
   * Whether the document with `view` as the caller's view matches the query's filter — judged only
   * on fields that view shows as stored.
   */
  private async matches(scope: RequestScope, stored: Doc, view: Record<string, unknown>, parsed: ParsedQuery, hidden?: readonly string[]): Promise<boolean> {
    if (isEmpty(parsed.filter)) return true;
    if (this.queriesUnseen(scope.caller, this.strip(stored), view, queriedFields(parsed), hidden)) return false;
    const [match] = await this.deps.store.find(withId(stored.id, parsed.filter), { limit: 1 });
    return match !== undefined;
  }

  /**
   * For a write addressed by id with a query (`PUT /c/<id>?status=open`): 404 unless the caller can
   * read the document and its view matches — so the query cannot probe fields the caller cannot see.
   */
  private async requireMatch(scope: RequestScope, stored: Doc, parsed: ParsedQuery): Promise<void> {
    if (isEmpty(parsed.filter)) return;
    const seen = await this.readView(scope.caller, stored, scope);
    if (!seen || !(await this.matches(scope, stored, seen.view, parsed, seen.hidden))) throw Errors.notFound();
  }

  /** The documents among `docs` that the caller can read and whose view matches the query. */
  private async visibleMatches(scope: RequestScope, docs: Doc[], parsed: ParsedQuery): Promise<Doc[]> {
    const queried = queriedFields(parsed);
    const seen = await Promise.all(docs.map((doc) => this.readView(scope.caller, doc, scope)));
    return docs.filter((doc, i) => seen[i] !== null && !this.queriesUnseen(scope.caller, this.strip(doc), seen[i]!.view, queried, seen[i]!.hidden));
  }

  /** A write's answer, through the read policy: the document as the caller could GET it, or just its id. */
  private async respond(scope: RequestScope, doc: Doc, hidden: string[]): Promise<Record<string, unknown>> {
    const view = await this.readableBy(scope.caller, doc, scope);
    return view ? hide(view, hidden) : { id: doc.id };
  }

  // ---- writes -----------------------------------------------------------------------------------
  // Every write is authorized on its effective change by src/policy/write-policy.ts.

  async create(scope: RequestScope, body: Record<string, unknown>, query: Record<string, unknown> = {}): Promise<Answer> {
    ruleFilter(this.schema, scope.caller, 'create');
    await assertWriteHooksReady(this.hooks, this.deps.runner, 'POST', scope.skipEvents);
    const { doc: read, errors } = readCreate(this.schema, body);
    // Secrets (a password), in whatever form they came, are hashed by the collection, never stored as sent.
    const secretInput = pick(read, this.secrets);
    const fields = omit(read, this.secrets);
    Object.assign(errors, this.checkSecrets(secretInput, true));
    // A bad value stops the request before any hook, with every missing required field alongside it.
    if (Object.keys(errors).length > 0) completeCreate(this.schema, fields, this.clock(), errors);
    const secrets = await this.writeSecrets(scope, secretInput, null);
    let data: JsonObject = fields as JsonObject;
    const before = await this.hook(scope, 'beforerequest', { data, method: 'POST', requestEvent: 'POST', query });
    if (before) data = this.accept(scope, before).data;
    const validated = await this.hook(scope, 'validate', { data, previous: {}, method: 'POST', requestEvent: 'POST', query });
    let hidden: string[] = [];
    if (validated) {
      const accepted = this.accept(scope, validated);
      data = accepted.data;
      hidden = accepted.hidden;
    }
    const doc = { id: newId(), ...completeCreate(this.schema, data, this.clock()) } as JsonObject;
    let stored: Doc = doc as Doc;
    const posted = await this.hook(scope, 'post', { data: doc, previous: {}, method: 'POST', requestEvent: 'POST', query });
    if (posted) {
      const accepted = this.accept(scope, posted);
      hidden = [...new Set([...hidden, ...accepted.hidden])];
      const changed = { ...accepted.data };
      for (const field of accepted.protected) delete changed[field];
      stored = { id: doc.id, ...completeCreate(this.schema, withoutId(changed), this.clock()) } as Doc;
      if (this.schema.timestamps) Object.assign(stored, { createdAt: doc.createdAt, updatedAt: doc.updatedAt });
    }
    stored = stampOwner(this.schema, scope.caller, stored);
    const inserted = this.strip(await this.insert({ ...omit(stored, this.secrets), ...secrets } as Doc));
    this.notify(scope, 'created', inserted);
    return this.afterCommit(scope, 'POST', null, await this.respond(scope, inserted, hidden), query, hide(inserted, hidden));
  }

  /** Shallow-merges the body into the document `id` (if it also matches the query's filter). */
  async update(scope: RequestScope, id: string, body: Record<string, unknown>, raw: Record<string, unknown>, source: QuerySource): Promise<Answer> {
    ruleFilter(this.schema, scope.caller, 'update');
    await assertWriteHooksReady(this.hooks, this.deps.runner, 'PUT', scope.skipEvents);
    const before = await this.hook(scope, 'beforerequest', { data: bodyFields(body), method: 'PUT', requestEvent: 'PUT', query: { ...raw, id } });
    let query = raw;
    if (before) {
      this.accept(scope, before);
      const { id: _id, ...rest } = before.query ?? raw;
      query = rest;
      // Deployd: BeforeRequest's this is the body; what it changed is what gets merged.
      const plain = bodyFields(body);
      body = Object.fromEntries(Object.entries(body).filter(([key]) => !(key in plain)));
      Object.assign(body, before.data);
    }
    const hookQuery = { ...query, id };
    const parsed = this.parseFor(scope, query, source);
    const stored = await this.loadStored(id);
    if (!stored) throw Errors.notFound();
    await this.requireMatch(scope, stored, parsed);
    checkDocument(this.schema, scope.caller, 'update', stored);
    const asked = readUpdate(this.schema, body);
    // The choke point: what this update does to the stored document, whatever form the body took.
    const changed = effectiveChange(stored, applyUpdate(stored, asked), asked, this.secrets);
    const spec = withoutFields(asked, authorizeUpdate(this.schema, this.writer(scope), stored, changed));
    const secretInput = takeSecrets(this.secrets, spec);
    const secretErrors = this.checkSecrets(secretInput, false);
    if (Object.keys(secretErrors).length > 0) throw validationError(secretErrors);
    const secrets = await this.writeSecrets(scope, secretInput, stored);
    const previous = this.strip(stored);
    const preview = previewUpdate(this.schema, spec, previous, this.clock()) as JsonObject;
    let final = preview;
    let hidden: string[] = [];
    let hookProtected: string[] = [];
    for (const event of ['validate', 'put'] as const) {
      const result = await this.hook(scope, event, { data: final, previous: previous as JsonObject, method: 'PUT', requestEvent: 'PUT', query: hookQuery });
      if (!result) continue;
      const accepted = this.accept(scope, result);
      final = accepted.data;
      hidden = [...new Set([...hidden, ...accepted.hidden])];
      hookProtected = [...hookProtected, ...accepted.protected];
    }
    const changes = final === preview ? spec : applyHookChanges(this.schema, spec, preview, final, [...protectedFields(this.schema), ...this.secrets, ...hookProtected]);
    Object.assign(changes.set, secrets);
    if (!hasChanges(changes)) return this.afterCommit(scope, 'PUT', previous, await this.respond(scope, stored, hidden), hookQuery, hide(previous, hidden));
    const written = await this.deps.store.update(id, andFilter(parsed.filter, this.unchangedOwner(scope, stored, spec)), changes);
    if (!written) throw Errors.notFound(); // deleted (or given to another owner) between the read and the write
    await this.afterWrite(scope, stored, written);
    const updated = this.strip(written);
    this.notify(scope, 'updated', updated);
    return this.afterCommit(scope, 'PUT', previous, await this.respond(scope, updated, hidden), hookQuery, hide(updated, hidden));
  }

  /** Deletes one document by id (404 when absent) or, for root, every document matching the query. */
  async remove(scope: RequestScope, id: string | undefined, raw: Record<string, unknown>, source: QuerySource): Promise<Answer> {
    ruleFilter(this.schema, scope.caller, 'delete');
    await assertWriteHooksReady(this.hooks, this.deps.runner, 'DELETE', scope.skipEvents);
    const before = await this.hook(scope, 'beforerequest', { data: {}, method: 'DELETE', requestEvent: 'DELETE', query: id === undefined ? raw : { ...raw, id } });
    let query = raw;
    if (before) {
      this.accept(scope, before);
      const { id: _id, ...rest } = before.query ?? raw;
      query = id === undefined ? (before.query ?? raw) : rest;
    }
    const parsed = this.parseFor(scope, query, source);
    let found: Doc[];
    if (id === undefined) {
      // Deployd deletes by query for anyone (delete.js runs per document and may skip it); here only
      // where the delete rule is "anyone", and only documents the caller can see, matched on what it sees.
      if (!scope.caller.isRoot && this.schema.rules.delete !== 'anyone') throw Errors.forbidden('Must be root to delete several documents here; use DELETE /<collection>/<id>');
      if (isEmpty(parsed.filter)) throw Errors.badRequest('a bulk delete needs a query; to delete everything, send {"id":{"$ne":null}}');
      found = scope.caller.isRoot ? await this.deps.store.find(parsed.filter, {}) : await this.visibleMatches(scope, await this.deps.store.find(parsed.filter, { limit: parsed.options.limit }), parsed);
    } else {
      const stored = await this.loadStored(id);
      if (!stored) throw Errors.notFound();
      await this.requireMatch(scope, stored, parsed);
      checkDocument(this.schema, scope.caller, 'delete', stored);
      found = [stored];
    }
    const matches = found.map((d) => this.strip(d));
    let keep = matches;
    if (this.runs(scope, 'delete')) {
      const hookQuery = id === undefined ? query : { ...query, id };
      const results = await Promise.all(matches.map((doc) => this.hook(scope, 'delete', { data: doc, method: 'DELETE', requestEvent: 'DELETE', query: hookQuery })));
      keep = [];
      results.forEach((result, i) => {
        if (!result) return keep.push(matches[i]);
        this.collect(scope, result);
        if (result.cancel && (result.cancel.isError || id !== undefined)) throw this.cancelled(result);
        if (Object.keys(result.errors).length > 0) throw validationError(result.errors);
        if (!result.cancel) keep.push(matches[i]);
      });
    }
    // The rule again, in the store: a document given to another owner meanwhile is not removed.
    const chosen = andFilter({ fields: { id: { $in: keep.map((d) => d.id) } } }, ruleFilter(this.schema, scope.caller, 'delete'));
    const removed = keep.length === 0 ? [] : (await this.deps.store.remove(chosen)).map((d) => this.strip(d));
    await this.afterRemove(removed);
    let answer: Answer = { body: { count: removed.length } };
    for (const doc of removed) {
      this.notify(scope, 'deleted', doc);
      const next = await this.afterCommit(scope, 'DELETE', null, answer.body as Record<string, unknown>, raw, doc);
      answer = { body: next.body, status: next.status ?? answer.status };
    }
    return answer;
  }

  /** Who writes, for the write policy. */
  private writer(scope: RequestScope): Writer {
    const own = scope.session?.collection === this.name ? scope.session.uid : undefined;
    return { caller: scope.caller, internal: scope.internal, ...(own ? { sessionUserId: own } : {}) };
  }

  /**
   * When a non-root update names the owner field (with its current value, or it was refused), the
   * store checks that value again as it writes: an owner changed meanwhile is not overwritten.
   */
  private unchangedOwner(scope: RequestScope, stored: Doc, spec: UpdateSpec): Filter | undefined {
    const owner = this.schema.ownerField;
    if (scope.caller.isRoot || !ownsDocuments(this.schema) || !touchedFields(spec).has(owner)) return undefined;
    return { fields: { [owner]: { $eq: (stored[owner] ?? null) as string | null } } };
  }

  /**
   * An endpoint whose hooks make the answer, nothing stored: go-deployd's `noStore` collection (the
   * hook's document, `{url, parts, …input}`, is the answer) or Deployd's Event resource (`this` starts
   * as `{}`, `setResult()` replaces it; a method without a hook is 404, as there).
   */
  async event(scope: RequestScope, method: string, parts: string[], input: Record<string, unknown>, raw: Record<string, unknown>): Promise<Answer> {
    ruleFilter(this.schema, scope.caller, ({ GET: 'read', POST: 'create', PUT: 'update', DELETE: 'delete' } as const)[method as 'GET'] ?? 'read');
    const resource = this.schema.kind === 'Event';
    const event = ({ GET: 'get', POST: 'post', PUT: 'put', DELETE: 'delete' } as const)[method as 'GET'];
    if (resource && (!event || !this.hooks.events.has(event))) throw Errors.resourceNotFound();
    const data = (resource ? {} : { url: `/${parts.join('/')}`, parts, ...input }) as JsonObject;
    const before = await this.hook(scope, 'beforerequest', { data, method, requestEvent: method, query: raw });
    if (before) this.accept(scope, before);
    const result = event ? await this.hook(scope, event, { data, previous: {}, query: before?.query ?? raw, method, requestEvent: method }) : undefined;
    if (!result) return answer(data);
    this.accept(scope, result);
    return this.applyResponse(visible(result), result);
  }

  // ---- hooks ------------------------------------------------------------------------------------

  private runs(scope: RequestScope, event: HookEvent): boolean {
    return !scope.skipEvents && this.hooks.events.has(event) && this.deps.runner !== undefined;
  }

  protected async hook(scope: RequestScope, event: HookEvent, input: HookInput): Promise<HookResult | undefined> {
    if (!this.runs(scope, event)) return undefined;
    const loadError = this.hooks.errors[event];
    if (loadError) throw new DeploydError('DPD_ERR_HOOK_LOAD', 500, loadError);
    const ctx: EventContext = {
      collection: this.name,
      event,
      method: input.method,
      requestEvent: input.requestEvent,
      data: input.data as JsonObject,
      previous: (input.previous ?? null) as JsonObject | null,
      query: (input.query ?? {}) as JsonObject,
      caller: scope.caller,
      internal: scope.internal,
      requestId: scope.requestId,
      success: input.success ?? false,
      url: scope.request?.url ?? '/',
      body: this.hookBody(scope.request?.body),
    };
    return this.deps.runner!.run(ctx, scope, this.hooks.key); // logs: see hooks/reporting-runner.ts
  }

  /** The request body for hooks: an object, without secret fields (a password never reaches a hook). */
  private hookBody(body: unknown): JsonObject {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return {};
    return omit(body as Record<string, unknown>, this.secrets) as JsonObject;
  }

  /** A hook outcome that must not fail: queue its emits, turn cancel/errors into the request's error. */
  protected accept(scope: RequestScope, result: HookResult): HookResult {
    this.collect(scope, result);
    if (result.cancel) throw this.cancelled(result);
    if (Object.keys(result.errors).length > 0) throw validationError(result.errors);
    return result;
  }

  protected collect(scope: RequestScope, result: HookResult): void {
    if (result.cancel) return; // a cancelled event publishes nothing
    if (result.sessionRooms && scope.session) {
      // Joins apply before this request's emits go out, so `joinRoom(r); emit(r, …)` reaches the joiner.
      const rooms = changeRooms(scope.session.rooms, result.sessionRooms);
      const sessionId = scope.session.id;
      scope.session.rooms = rooms;
      scope.outbox.push(() => {
        this.deps.bus.publish({ type: 'session_rooms', sessionId, rooms });
        this.deps.saveSessionRooms?.(sessionId, rooms).catch((err: Error) => this.deps.log.warn({ err: err.message }, 'saving session rooms failed'));
      });
    }
    for (const emit of result.emits) scope.outbox.push(() => this.publishEmit(emit));
  }

  protected cancelled(result: HookResult): DeploydError {
    const cancel = result.cancel!;
    const status = cancel.status >= 400 && cancel.status <= 599 ? cancel.status : 400;
    const code = status >= 500 ? 'DPD_ERR_HOOK_FAILED' : 'DPD_ERR_HOOK_CANCELLED';
    const error = new DeploydError(code, status, cancel.message);
    const stack = (result as { stack?: string }).stack;
    if (stack) error.stack = stack; // the hook's own stack, answered with --dev
    return error;
  }

  /** `data` defaults to the response (the document without hidden fields). */
  private async afterCommit(scope: RequestScope, method: string, previous: Doc | null, response: Record<string, unknown>, query: Record<string, unknown> = {}, data: Record<string, unknown> = response): Promise<Answer> {
    // The write is committed: it is never reported as failed. A failing AfterCommit (logged with
    // its file:line by the runner) loses its response changes and emits; the change is published.
    const result = await this.hook(scope, 'aftercommit', { data: data as JsonObject, previous: previous as JsonObject | null, method, requestEvent: method, query })
      .catch((err: Error) => {
        this.deps.log.error({ collection: this.name, event: 'aftercommit', err: err.message }, 'aftercommit hook could not run');
        return undefined;
      });
    if (!result || result.cancel) return answer(response);
    this.collect(scope, result);
    return this.applyResponse(response, result);
  }

  /** The seed's response functions: setResponseData, addResponseField, addResponseMessage, setResponseStatus. */
  private applyResponse(body: unknown, result: HookResult): Answer {
    const mutation = result.response;
    if (!mutation) return answer(body);
    let out: unknown = mutation.replaceData ? mutation.data : body;
    const extra = Object.keys(mutation.addFields).length > 0 || mutation.messages.length > 0;
    if (extra && typeof out === 'object' && out !== null && !Array.isArray(out)) {
      out = { ...(out as object), ...mutation.addFields };
      if (mutation.messages.length > 0) {
        const existing = Array.isArray((out as Record<string, unknown>).messages) ? ((out as Record<string, unknown>).messages as unknown[]) : [];
        (out as Record<string, unknown>).messages = [...existing, ...mutation.messages];
      }
    }
    return answer(out, mutation.status || undefined);
  }

  protected async beforeRequest(scope: RequestScope, requestEvent: string, method: string, raw: Record<string, unknown>): Promise<Record<string, unknown>> {
    const result = await this.hook(scope, 'beforerequest', { data: {}, method, requestEvent, query: raw as JsonObject });
    if (!result) return raw;
    this.accept(scope, result);
    return result.query ?? raw;
  }

  private parse(raw: Record<string, unknown>, source: QuerySource): ParsedQuery {
    return parseQuery(raw, this.schema, source, this.deps.limits);
  }

  // ---- extension points for a UserCollection ----------------------------------------------------

  /** What is wrong with the secret fields a write sets (`creating`: they are all expected). */
  protected checkSecrets(_input: Record<string, unknown>, _creating: boolean): Record<string, string> {
    return {};
  }

  /**
   * The stored values of secret fields a write sets (a hashed password), from what the body sent
   * for them (already checked); `previous` is the stored document on update, null on create.
   */
  protected async writeSecrets(_scope: RequestScope, _input: Record<string, unknown>, _previous: Doc | null): Promise<Record<string, unknown>> {
    return {};
  }

  /** Runs after an update is committed, with the stored document before and after. */
  protected async afterWrite(_scope: RequestScope, _before: Doc, _after: Doc): Promise<void> {}

  /** Runs after documents were deleted. */
  protected async afterRemove(_removed: Doc[]): Promise<void> {}

  protected insert(doc: Doc): Promise<Doc> {
    return this.deps.store.insert(doc);
  }

  /** The document without its secret fields. */
  strip<T extends Record<string, unknown>>(doc: T): T {
    return this.secrets.length === 0 ? doc : hide(doc, this.secrets);
  }

  /** Stored documents matching a filter, without hooks or rules (for the server's own use). */
  findStored(filter: Filter, limit?: number): Promise<Doc[]> {
    return this.deps.store.find(filter, limit === undefined ? {} : { limit });
  }

  /** The stored document with this id, secrets included (for the server's own use). */
  async loadStored(id: string): Promise<Doc | undefined> {
    const [doc] = await this.deps.store.find({ fields: { id: { $eq: id } } }, { limit: 1 });
    return doc;
  }

  /**
   * Called right after a commit: what the request queued so far (its hooks' emits) and the change go
   * out now, so events leave in commit order whatever runs after (the answer's Get hook, AfterCommit),
   * and a committed change is published even if the rest of the request fails.
   */
  private notify(scope: RequestScope, action: 'created' | 'updated' | 'deleted', document: Doc): void {
    const userId = scope.caller.me && typeof scope.caller.me.id === 'string' ? scope.caller.me.id : null;
    for (const publish of scope.outbox.splice(0)) publish();
    this.deps.bus.publish({
      type: 'collection_change', collection: this.name, action, document: document as JsonObject, timestamp: new Date().toISOString(), userId,
    });
  }

  private publishEmit(emit: Emit): void {
    const message = {
      type: 'custom_event' as const,
      event: emit.event,
      data: emit.data ?? null,
      timestamp: new Date().toISOString(),
      ...(emit.room ? { room: emit.room } : {}),
    };
    if (!emit.usersCollection) return this.deps.bus.publish(message);
    // `emit(dpd.users, query, …)`: resolved to user ids here, once, so every instance can route it.
    const resolve = this.deps.resolveUsers ?? (async () => []);
    resolve(emit.usersCollection, emit.usersQuery ?? {}).then(
      (userIds) => this.deps.bus.publish({ ...message, userIds }),
      (err: Error) => this.deps.log.warn({ collection: this.name, event: emit.event, err: err.message }, 'emit to users failed: could not resolve the users'),
    );
  }
}

function answer(body: unknown, status?: number): Answer {
  return status ? { body, status } : { body };
}

/** The hook's document as the caller may see it: without fields it hid. */
function visible(result: HookResult): JsonObject {
  return hide(result.data as Record<string, unknown>, result.hidden) as JsonObject;
}

function hide<T extends Record<string, unknown>>(doc: T, hidden: string[]): T {
  if (hidden.length === 0) return doc;
  const out = { ...doc };
  for (const field of hidden) delete out[field];
  return out;
}

const MAX_SESSION_ROOMS = 100;

function changeRooms(current: string[], change: SessionRooms): string[] {
  const rooms = new Set(change.leaveAll ? [] : current);
  for (const room of change.leave) rooms.delete(room);
  for (const room of change.join) if (rooms.size < MAX_SESSION_ROOMS) rooms.add(room);
  return [...rooms];
}

function pick(body: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) if (key in body) out[key] = body[key];
  return out;
}

function omit(body: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  if (!keys.some((key) => key in body)) return body;
  const out = { ...body };
  for (const key of keys) delete out[key];
  return out;
}

function withoutId(doc: JsonObject): JsonObject {
  const { id: _id, ...rest } = doc;
  return rest;
}

/** BeforeRequest's `this` for a PUT: the body's plain fields (commands are not data). */
function bodyFields(body: Record<string, unknown>): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(body)) {
    if (key.startsWith('$')) continue;
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).some((k) => k.startsWith('$'))) continue;
    out[key] = value as JsonObject[string];
  }
  return out;
}

export function withId(id: string, filter: Filter): Filter {
  return isEmpty(filter) ? { fields: { id: { $eq: id } } } : { fields: { id: { $eq: id } }, $and: [filter] };
}

function isEmpty(filter: Filter): boolean {
  return Object.keys(filter.fields).length === 0 && !filter.$and && !filter.$or && !filter.$nor;
}
