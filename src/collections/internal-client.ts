/**
 * The `dpd` client inside hooks: `dpd.todos.get(query, fn)` runs the target collection exactly as
 * an HTTP request would (its hooks included), as the same caller, flagged `internal`. Deployd's
 * recursion guard applies: the same `METHOD /path` may be on the stack at most `$limitRecursion`
 * times (default 2).
 */
import { DeploydError } from '../errors.js';
import type { InternalCall, InternalHandler, InternalOutcome } from '../hooks/hook-runner.js';
import type { Json } from '../hooks/protocol.js';
import { RawJson } from '../pipeline/answer.js';
import type { RequestScope } from '../pipeline/request-scope.js';
import { runNested } from '../pipeline/run-request.js';
import type { Collection } from './collection.js';
import { dispatch } from './dispatch.js';
import type { Registry } from './registry.js';

export function internalClient(registry: Registry): InternalHandler {
  return async (scopeValue: unknown, call: InternalCall): Promise<InternalOutcome> => {
    const scope = scopeValue as RequestScope;
    // Deployd's count: the key is METHOD + path (the id included); each call a request from outside
    // makes starts a fresh stack, while the calls made inside one internal request share its stack and
    // add to it, so sibling calls use up one budget and nesting cannot fan out exponentially.
    const key = `${call.method} /${call.id === undefined ? call.collection : `${call.collection}/${call.id}`}`;
    const stack = scope.internal ? scope.stack : [];
    if (stack.filter((k) => k === key).length >= scope.limitRecursion) {
      return { error: { message: `Recursive call to ${key} detected`, status: 400, statusCode: 400 } };
    }
    stack.push(key);
    const entry = registry.get(call.collection);
    if (!entry) return { error: { message: 'resource not found', status: 404, statusCode: 404 } };
    if (entry.error) return { error: entry.error.toJSON() as Json };
    // Deployd: $skipEvents in the call's query or body skips the target's hooks, for root only.
    const skip = call.query?.$skipEvents ?? call.body?.$skipEvents;
    const nested = { stack, url: call.id === undefined ? '/' : `/${call.id}`, body: call.body ?? {}, skipEvents: skip };
    try {
      const answer = await runNested(scope, nested, (inner) => dispatch(entry.collection as Collection, inner, {
        method: call.method,
        rest: call.id === undefined ? [] : [call.id],
        query: call.query ?? {},
        source: 'json',
        body: call.body ?? {},
      }));
      const body = answer.body instanceof RawJson ? (JSON.parse(answer.body.text) as Json) : answer.body;
      return { result: (body ?? null) as Json };
    } catch (err) {
      if (err instanceof DeploydError) return { error: err.toJSON() as Json };
      return { error: { message: 'internal server error', status: 500, statusCode: 500 } };
    }
  };
}
