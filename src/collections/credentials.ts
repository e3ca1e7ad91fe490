/**
 * Secret fields (a users collection's password): what a write may set them to, what is stored for
 * them, and what a change to them ends. A plain collection has none; a users collection brings its
 * own (user-collection.ts). Secret fields never leave the server and never reach a hook.
 */
import type { Doc } from '../core/document.js';
import type { RequestScope } from '../pipeline/request-scope.js';

export interface Credentials {
  /** What is wrong with the secret fields a write sets (`creating`: they are all expected). */
  check(input: Record<string, unknown>, creating: boolean): Record<string, string>;
  /** The stored values of the secret fields a write sets (a hash), from what the body sent (already checked). */
  stored(input: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** After an update was committed, with the stored document before and after. */
  updated(scope: RequestScope, before: Doc, after: Doc): Promise<void>;
  /** After documents were deleted. */
  removed(scope: RequestScope, removed: Doc[]): Promise<void>;
}

export const NO_CREDENTIALS: Credentials = {
  check: () => ({}),
  stored: async () => ({}),
  updated: async () => {},
  removed: async () => {},
};
