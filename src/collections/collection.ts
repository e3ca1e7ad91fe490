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
 * at the commit; the rest (AfterCommit's) once the request succeeds (pipeline/publication.ts).
 * Running a hook and what its result means are the pipeline's (hook-step.ts, hook-outcome.ts); who
 * may read and write is the policy's; secret fields are the collection's Credentials.
 */
import type { EventPublisher } from '../events/event-log.js';
import { Errors, validationError } from '../errors.js';
import type { HookRunner } from '../hooks/hook-runner.js';
import type { Caller, JsonObject } from '../hooks/protocol.js';
import type { QueryLimits } from '../query/filter.js';
import { project, type Filter } from '../core/filter.js';
import type { CollectionStore } from '../store/store.js';
import type { Doc } from '../core/document.js';
import { queriedFields } from '../policy/read-policy.js';
import { andFilter, checkDocument, ruleFilter } from '../policy/rules.js';
import { authorizeUpdate, effectiveChange, ownerUnchanged, protectedFields, stampOwner, writerOf } from '../policy/write-policy.js';
import { applyHookChanges, completeCreate, previewUpdate, readCreate, readUpdate, takeSecrets } from '../core/document.js';
import { answer, RawJson, type Answer } from '../pipeline/answer.js';
import { applyResponse, cancelled, hide, visible } from '../pipeline/hook-outcome.js';
import { HookStep, type CollectionHooks } from '../pipeline/hook-step.js';
import { Publication } from '../pipeline/publication.js';
import type { RequestScope } from '../pipeline/request-scope.js';
import { NO_CREDENTIALS, type Credentials } from './credentials.js';
import { assertWriteHooksReady } from './hook-readiness.js';
import { isEmpty, Reader, type QuerySource } from './reader.js';
import { newId } from '../core/id.js';
import { secretFields, type CollectionSchema } from '../core/schema.js';
import { applyUpdate, hasChanges, withoutFields } from '../core/update.js';

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

export type { CollectionHooks };

export class Collection {
  hooks: CollectionHooks = { events: new Set(), errors: {} };
  private readonly clock: () => Date;
  /** Fields that never leave the server (a user's password hash). */
  readonly secrets: string[];
  /** The caller's view of documents, and queries judged against it. */
  private readonly reader: Reader;
  /** What this collection's requests publish, and when. */
  readonly publication: Publication;
  /** Runs this collection's hooks in a request and takes their outcome. */
  readonly step: HookStep;

  constructor(readonly schema: CollectionSchema, protected readonly deps: CollectionDeps, private readonly credentials: Credentials = NO_CREDENTIALS) {
    this.clock = deps.clock ?? (() => new Date());
    this.secrets = secretFields(schema);
    this.publication = new Publication(schema.name, deps);
    this.step = new HookStep(this, deps.runner, this.publication, this.secrets);
    this.reader = new Reader(this, deps);
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
    const parsed = this.reader.parseFor(scope, query, source);
    // An `owner` rule filters in the store, so `$limit`/`$skip` pages stay full and correct.
    const filter = andFilter(parsed.filter, only);
    const { store } = this.deps;
    const hooked = this.step.runs(scope, 'get');
    const asStored = this.secrets.length === 0 && (scope.caller.isRoot || this.reader.hiddenProps.length === 0);
    if (!hooked && !parsed.projection && store.findJson && asStored) {
      return answer(new RawJson(await store.findJson(filter, parsed.options)));
    }
    const docs = (await store.find(filter, parsed.options)).map((d) => this.strip(d));
    if (!hooked) return answer(docs.map((doc) => project(this.reader.hideFrom(scope.caller, doc), parsed.projection)));
    const queried = queriedFields(parsed);
    const results = await Promise.all(docs.map((doc) => this.step.run(scope, 'get', { data: doc, query, method: 'GET', requestEvent })));
    const out: JsonObject[] = [];
    results.forEach((result, i) => {
      if (!result) return;
      this.publication.queueHookResult(scope, result);
      if (result.cancel) {
        if (result.cancel.isError) throw cancelled(result);
        return; // Deployd: cancel() in a list's Get drops that item
      }
      if (Object.keys(result.errors).length > 0) throw validationError(result.errors);
      const view = this.reader.viewOf(scope.caller, result);
      if (this.reader.queriesUnseen(scope.caller, docs[i], view, queried, result.hidden)) return;
      out.push(project(view, parsed.projection));
    });
    return answer(out);
  }

  async get(scope: RequestScope, id: string, raw: Record<string, unknown>, source: QuerySource): Promise<Answer> {
    ruleFilter(this.schema, scope.caller, 'read');
    const query = await this.beforeRequest(scope, 'GET', 'GET', { ...raw, id });
    const { id: _id, ...rest } = query;
    const parsed = this.reader.parseFor(scope, rest, source);
    // Found by id alone: the query's filter is judged only on what the caller may see (below), so a
    // filter on a field it cannot read never tells "matches" (an error) from "does not" (404).
    const found = await this.loadStored(id);
    if (!found) throw Errors.notFound();
    checkDocument(this.schema, scope.caller, 'read', found);
    const doc = this.strip(found);
    const result = await this.step.run(scope, 'get', { data: doc, query, method: 'GET', requestEvent: 'GET' });
    let view = this.reader.hideFrom(scope.caller, doc) as JsonObject;
    if (result) {
      this.publication.queueHookResult(scope, result);
      if (result.cancel) throw cancelled(result);
      if (Object.keys(result.errors).length > 0) throw validationError(result.errors);
      view = this.reader.viewOf(scope.caller, result);
    }
    if (!(await this.reader.matches(scope, found, view, parsed, result?.hidden))) throw Errors.notFound();
    return answer(project(view, parsed.projection));
  }

  /** `{"count":n}`; root only when a Get hook could hide documents from the caller (Deployd). */
  async count(scope: RequestScope, raw: Record<string, unknown>, source: QuerySource): Promise<Answer> {
    if (this.hooks.events.has('get') && !scope.caller.isRoot) throw Errors.forbidden('Must be root to count');
    const only = ruleFilter(this.schema, scope.caller, 'read');
    const parsed = this.reader.parseFor(scope, raw, source);
    return answer({ count: await this.deps.store.count(andFilter(parsed.filter, only)) });
  }

  /**
   * The document as `caller` could GET it — the rules, the Get hook run for that caller, hidden and
   * secret fields removed — or null when it may not (real-time delivery and write answers use this).
   * `within`: the request this is part of (its emits are not published: a view is not a request).
   */
  readableBy(caller: Caller, doc: Record<string, unknown>, within?: RequestScope): Promise<JsonObject | null> {
    return this.reader.readableBy(caller, doc, within);
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
    Object.assign(errors, this.credentials.check(secretInput, true));
    // A bad value stops the request before any hook, with every missing required field alongside it.
    if (Object.keys(errors).length > 0) completeCreate(this.schema, fields, this.clock(), errors);
    const secrets = await this.credentials.stored(secretInput);
    let data: JsonObject = fields as JsonObject;
    const before = await this.step.run(scope, 'beforerequest', { data, method: 'POST', requestEvent: 'POST', query });
    if (before) data = this.step.accept(scope, before).data;
    const validated = await this.step.run(scope, 'validate', { data, previous: {}, method: 'POST', requestEvent: 'POST', query });
    let hidden: string[] = [];
    if (validated) {
      const accepted = this.step.accept(scope, validated);
      data = accepted.data;
      hidden = accepted.hidden;
    }
    const doc = { id: newId(), ...completeCreate(this.schema, data, this.clock()) } as JsonObject;
    let stored: Doc = doc as Doc;
    const posted = await this.step.run(scope, 'post', { data: doc, previous: {}, method: 'POST', requestEvent: 'POST', query });
    if (posted) {
      const accepted = this.step.accept(scope, posted);
      hidden = [...new Set([...hidden, ...accepted.hidden])];
      const changed = { ...accepted.data };
      for (const field of accepted.protected) delete changed[field];
      stored = { id: doc.id, ...completeCreate(this.schema, withoutId(changed), this.clock()) } as Doc;
      if (this.schema.timestamps) Object.assign(stored, { createdAt: doc.createdAt, updatedAt: doc.updatedAt });
    }
    stored = stampOwner(this.schema, scope.caller, stored);
    const inserted = this.strip(await this.deps.store.insert({ ...omit(stored, this.secrets), ...secrets } as Doc));
    this.publication.commitChange(scope, 'created', inserted);
    return this.afterCommit(scope, 'POST', null, await this.reader.respond(scope, inserted, hidden), query, hide(inserted, hidden));
  }

  /** Shallow-merges the body into the document `id` (if it also matches the query's filter). */
  async update(scope: RequestScope, id: string, body: Record<string, unknown>, raw: Record<string, unknown>, source: QuerySource): Promise<Answer> {
    ruleFilter(this.schema, scope.caller, 'update');
    await assertWriteHooksReady(this.hooks, this.deps.runner, 'PUT', scope.skipEvents);
    const before = await this.step.run(scope, 'beforerequest', { data: bodyFields(body), method: 'PUT', requestEvent: 'PUT', query: { ...raw, id } });
    let query = raw;
    if (before) {
      this.step.accept(scope, before);
      const { id: _id, ...rest } = before.query ?? raw;
      query = rest;
      // Deployd: BeforeRequest's this is the body; what it changed is what gets merged.
      const plain = bodyFields(body);
      body = Object.fromEntries(Object.entries(body).filter(([key]) => !(key in plain)));
      Object.assign(body, before.data);
    }
    const hookQuery = { ...query, id };
    const parsed = this.reader.parseFor(scope, query, source);
    const stored = await this.loadStored(id);
    if (!stored) throw Errors.notFound();
    await this.reader.requireMatch(scope, stored, parsed);
    checkDocument(this.schema, scope.caller, 'update', stored);
    const asked = readUpdate(this.schema, body);
    // The choke point: what this update does to the stored document, whatever form the body took.
    const changed = effectiveChange(stored, applyUpdate(stored, asked), asked, this.secrets);
    const spec = withoutFields(asked, authorizeUpdate(this.schema, writerOf(this.schema, scope.caller, scope.internal, scope.session), stored, changed));
    const secretInput = takeSecrets(this.secrets, spec);
    const secretErrors = this.credentials.check(secretInput, false);
    if (Object.keys(secretErrors).length > 0) throw validationError(secretErrors);
    const secrets = await this.credentials.stored(secretInput);
    const previous = this.strip(stored);
    const preview = previewUpdate(this.schema, spec, previous, this.clock()) as JsonObject;
    let final = preview;
    let hidden: string[] = [];
    let hookProtected: string[] = [];
    for (const event of ['validate', 'put'] as const) {
      const result = await this.step.run(scope, event, { data: final, previous: previous as JsonObject, method: 'PUT', requestEvent: 'PUT', query: hookQuery });
      if (!result) continue;
      const accepted = this.step.accept(scope, result);
      final = accepted.data;
      hidden = [...new Set([...hidden, ...accepted.hidden])];
      hookProtected = [...hookProtected, ...accepted.protected];
    }
    const changes = final === preview ? spec : applyHookChanges(this.schema, spec, preview, final, [...protectedFields(this.schema), ...this.secrets, ...hookProtected]);
    Object.assign(changes.set, secrets);
    if (!hasChanges(changes)) return this.afterCommit(scope, 'PUT', previous, await this.reader.respond(scope, stored, hidden), hookQuery, hide(previous, hidden));
    const written = await this.deps.store.update(id, andFilter(parsed.filter, ownerUnchanged(this.schema, scope.caller, stored, spec)), changes);
    if (!written) throw Errors.notFound(); // deleted (or given to another owner) between the read and the write
    await this.credentials.updated(scope, stored, written);
    const updated = this.strip(written);
    this.publication.commitChange(scope, 'updated', updated);
    return this.afterCommit(scope, 'PUT', previous, await this.reader.respond(scope, updated, hidden), hookQuery, hide(updated, hidden));
  }

  /** Deletes one document by id (404 when absent) or, for root, every document matching the query. */
  async remove(scope: RequestScope, id: string | undefined, raw: Record<string, unknown>, source: QuerySource): Promise<Answer> {
    ruleFilter(this.schema, scope.caller, 'delete');
    await assertWriteHooksReady(this.hooks, this.deps.runner, 'DELETE', scope.skipEvents);
    const before = await this.step.run(scope, 'beforerequest', { data: {}, method: 'DELETE', requestEvent: 'DELETE', query: id === undefined ? raw : { ...raw, id } });
    let query = raw;
    if (before) {
      this.step.accept(scope, before);
      const { id: _id, ...rest } = before.query ?? raw;
      query = id === undefined ? (before.query ?? raw) : rest;
    }
    const parsed = this.reader.parseFor(scope, query, source);
    let found: Doc[];
    if (id === undefined) {
      // Deployd deletes by query for anyone (delete.js runs per document and may skip it); here only
      // where the delete rule is "anyone", and only documents the caller can see, matched on what it sees.
      if (!scope.caller.isRoot && this.schema.rules.delete !== 'anyone') throw Errors.forbidden('Must be root to delete several documents here; use DELETE /<collection>/<id>');
      if (isEmpty(parsed.filter)) throw Errors.badRequest('a bulk delete needs a query; to delete everything, send {"id":{"$ne":null}}');
      found = scope.caller.isRoot ? await this.deps.store.find(parsed.filter, {}) : await this.reader.visibleMatches(scope, await this.deps.store.find(parsed.filter, { limit: parsed.options.limit }), parsed);
    } else {
      const stored = await this.loadStored(id);
      if (!stored) throw Errors.notFound();
      await this.reader.requireMatch(scope, stored, parsed);
      checkDocument(this.schema, scope.caller, 'delete', stored);
      found = [stored];
    }
    const matches = found.map((d) => this.strip(d));
    let keep = matches;
    if (this.step.runs(scope, 'delete')) {
      const hookQuery = id === undefined ? query : { ...query, id };
      const results = await Promise.all(matches.map((doc) => this.step.run(scope, 'delete', { data: doc, method: 'DELETE', requestEvent: 'DELETE', query: hookQuery })));
      keep = [];
      results.forEach((result, i) => {
        if (!result) return keep.push(matches[i]);
        this.publication.queueHookResult(scope, result);
        if (result.cancel && (result.cancel.isError || id !== undefined)) throw cancelled(result);
        if (Object.keys(result.errors).length > 0) throw validationError(result.errors);
        if (!result.cancel) keep.push(matches[i]);
      });
    }
    // The rule again, in the store: a document given to another owner meanwhile is not removed.
    const chosen = andFilter({ fields: { id: { $in: keep.map((d) => d.id) } } }, ruleFilter(this.schema, scope.caller, 'delete'));
    const removed = keep.length === 0 ? [] : (await this.deps.store.remove(chosen)).map((d) => this.strip(d));
    await this.credentials.removed(scope, removed);
    let answer: Answer = { body: { count: removed.length } };
    for (const doc of removed) {
      this.publication.commitChange(scope, 'deleted', doc);
      const next = await this.afterCommit(scope, 'DELETE', null, answer.body as Record<string, unknown>, raw, doc);
      answer = { body: next.body, status: next.status ?? answer.status };
    }
    return answer;
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
    const before = await this.step.run(scope, 'beforerequest', { data, method, requestEvent: method, query: raw });
    if (before) this.step.accept(scope, before);
    const result = event ? await this.step.run(scope, event, { data, previous: {}, query: before?.query ?? raw, method, requestEvent: method }) : undefined;
    if (!result) return answer(data);
    this.step.accept(scope, result);
    return applyResponse(visible(result), result);
  }

  // ---- hooks ------------------------------------------------------------------------------------

  /** `data` defaults to the response (the document without hidden fields). */
  private async afterCommit(scope: RequestScope, method: string, previous: Doc | null, response: Record<string, unknown>, query: Record<string, unknown> = {}, data: Record<string, unknown> = response): Promise<Answer> {
    // The write is committed: it is never reported as failed. A failing AfterCommit (logged with
    // its file:line by the runner) loses its response changes and emits; the change is published.
    const result = await this.step.run(scope, 'aftercommit', { data: data as JsonObject, previous: previous as JsonObject | null, method, requestEvent: method, query })
      .catch((err: Error) => {
        this.deps.log.error({ collection: this.name, event: 'aftercommit', err: err.message }, 'aftercommit hook could not run');
        return undefined;
      });
    if (!result || result.cancel) return answer(response);
    this.publication.queueHookResult(scope, result);
    return applyResponse(response, result);
  }

  private async beforeRequest(scope: RequestScope, requestEvent: string, method: string, raw: Record<string, unknown>): Promise<Record<string, unknown>> {
    const result = await this.step.run(scope, 'beforerequest', { data: {}, method, requestEvent, query: raw as JsonObject });
    if (!result) return raw;
    this.step.accept(scope, result);
    return result.query ?? raw;
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
