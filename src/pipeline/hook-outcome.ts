/**
 * What a hook's result means for the request: a cancel or field errors become the request's error,
 * hidden fields leave the caller's view, and the response functions (setResponseData,
 * addResponseField, addResponseMessage, setResponseStatus) shape the answer. Publication of its
 * emits is publication.ts's.
 */
import { Errors, validationError, type DeploydError } from '../errors.js';
import type { HookResult, JsonObject } from '../hooks/protocol.js';
import { answer, type Answer } from './answer.js';

/** The result, or the request's error when the hook cancelled or reported field errors. */
export function accepted(result: HookResult): HookResult {
  if (result.cancel) throw cancelled(result);
  if (Object.keys(result.errors).length > 0) throw validationError(result.errors);
  return result;
}

/** A hook's `cancel(message, status)` as the request's error: 4xx cancelled, 5xx failed. */
export function cancelled(result: HookResult): DeploydError {
  const cancel = result.cancel!;
  const status = cancel.status >= 400 && cancel.status <= 599 ? cancel.status : 400;
  const error = status >= 500 ? Errors.hookFailed(status, cancel.message) : Errors.hookCancelled(status, cancel.message);
  const stack = (result as { stack?: string }).stack;
  if (stack) error.stack = stack; // the hook's own stack, answered with --dev
  return error;
}

/** The hook's document without the fields it hid. */
export function visible(result: HookResult): JsonObject {
  return hide(result.data as Record<string, unknown>, result.hidden) as JsonObject;
}

export function hide<T extends Record<string, unknown>>(doc: T, hidden: readonly string[]): T {
  if (hidden.length === 0) return doc;
  const out = { ...doc };
  for (const field of hidden) delete out[field];
  return out;
}

/** The answer after the hook's response functions. */
export function applyResponse(body: unknown, result: HookResult): Answer {
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
