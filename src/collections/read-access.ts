/**
 * The collections' read policy as the real-time gateway asks it: a change reaches a reader only as
 * that reader could GET the document (rules, Get hook, hidden fields); an unknown collection is
 * readable by no one.
 */
import type { ReadAccess } from '../realtime/read-access.js';
import type { Registry } from './registry.js';

export function collectionReadAccess(registry: Registry): ReadAccess {
  return {
    async viewOf(change, caller) {
      const collection = registry.get(change.collection)?.collection;
      return collection ? collection.readableBy(caller, change.document) : null;
    },
  };
}
