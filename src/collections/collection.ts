/**
 * A collection's behaviour, independent of HTTP: list, get, count, create, update, delete over a
 * store, with Deployd's semantics. The REST layer (`api/`) maps requests onto these calls; the hook
 * runner and real-time fan-out plug in here.
 */
import { DeploydError, Errors } from '../errors.js';
import { project, type Filter, type ParsedQuery } from '../query/filter.js';
import type { CollectionStore, Doc } from '../store/store.js';
import { prepareCreate, prepareUpdate } from './document.js';
import { newId } from './id.js';
import { hasChanges } from './update.js';
import type { CollectionSchema } from './schema.js';

export interface Caller {
  isRoot: boolean;
}

export class Collection {
  constructor(
    readonly schema: CollectionSchema,
    private readonly store: CollectionStore,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  get name(): string {
    return this.schema.name;
  }

  async list(query: ParsedQuery): Promise<Doc[]> {
    const docs = await this.store.find(query.filter, query.options);
    return query.projection ? docs.map((d) => project(d, query.projection)) : docs;
  }

  async get(id: string, query: ParsedQuery): Promise<Doc> {
    const [doc] = await this.store.find(withId(id, query.filter), { limit: 1 });
    if (!doc) throw Errors.notFound();
    return project(doc, query.projection);
  }

  async count(query: ParsedQuery): Promise<number> {
    return this.store.count(query.filter);
  }

  async create(body: Record<string, unknown>): Promise<Doc> {
    const fields = prepareCreate(this.schema, body, this.clock());
    return this.store.insert({ id: newId(), ...fields });
  }

  /** Shallow-merges the body into the document `id` (if it also matches the query's filter). */
  async update(id: string, body: Record<string, unknown>, query: ParsedQuery): Promise<Doc> {
    const filter = withId(id, query.filter);
    const [previous] = await this.store.find(filter, { limit: 1 });
    if (!previous) throw Errors.notFound();
    const { spec } = prepareUpdate(this.schema, body, previous, this.clock());
    if (!hasChanges(spec)) return previous;
    const updated = await this.store.update(id, query.filter, spec);
    if (!updated) throw Errors.notFound(); // deleted between the read and the write
    return updated;
  }

  /** Deletes one document by id (404 when absent) or, for root, every document matching the query. */
  async remove(id: string | undefined, query: ParsedQuery, caller: Caller): Promise<{ count: number }> {
    if (id === undefined) {
      if (!caller.isRoot) throw Errors.forbidden('Must be root to delete several documents; use DELETE /<collection>/<id>');
      if (isEmpty(query.filter)) {
        throw Errors.badRequest('a bulk delete needs a query; to delete everything, send {"id":{"$ne":null}}');
      }
      const removed = await this.store.remove(query.filter);
      return { count: removed.length };
    }
    const removed = await this.store.remove(withId(id, query.filter));
    if (removed.length === 0) throw Errors.notFound();
    return { count: removed.length };
  }
}

export function withId(id: string, filter: Filter): Filter {
  return isEmpty(filter) ? { fields: { id: { $eq: id } } } : { fields: { id: { $eq: id } }, $and: [filter] };
}

function isEmpty(filter: Filter): boolean {
  return Object.keys(filter.fields).length === 0 && !filter.$and && !filter.$or && !filter.$nor;
}

export function isDeploydError(err: unknown): err is DeploydError {
  return err instanceof DeploydError;
}
