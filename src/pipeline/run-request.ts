/**
 * The one place a request runs: it opens the scope, runs the handler in it and publishes the outbox
 * exactly once when the request succeeds (a failed request publishes only what it had committed:
 * see outbox.ts). Every path goes through here — REST, the auth routes, the admin API, a hook's
 * `dpd` call — so no caller flushes an outbox.
 */
import { nestedScope, openScope, type RequestFacts, type RequestScope } from './request-scope.js';

export type Handler<T> = (scope: RequestScope) => Promise<T>;

/** A request from outside (HTTP). */
export function runRequest<T>(facts: RequestFacts, handle: Handler<T>): Promise<T> {
  return runIn(openScope(facts), handle);
}

/** A hook's `dpd` call inside `parent`: its events go out when it succeeds, before the parent's. */
export function runNested<T>(parent: RequestScope, call: Parameters<typeof nestedScope>[1], handle: Handler<T>): Promise<T> {
  return runIn(nestedScope(parent, call), handle);
}

async function runIn<T>(scope: RequestScope, handle: Handler<T>): Promise<T> {
  let result: T;
  try {
    result = await handle(scope);
  } catch (err) {
    scope.outbox.discard();
    throw err;
  }
  scope.outbox.release();
  return result;
}
