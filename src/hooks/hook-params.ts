/**
 * The identifiers a classic Deployd hook file sees, per event (deployd-behaviour.md §1.2–§1.6).
 * A name Deployd lacks in an event is absent here too, so using it is a ReferenceError, as there.
 * Each file is compiled as `function (<names>) { <file> }` with these names as parameters.
 */
import type { HookEvent } from './protocol.js';

const COMMON = ['me', 'isMe', 'query', 'cancel', 'cancelIf', 'cancelUnless', 'emit', 'internal', 'isRoot', 'session', 'ctx', 'console', 'dpd', '$addCallback', '$finishCallback'];
const DOMAIN = ['error', 'errorIf', 'errorUnless', 'hasErrors', 'hide', 'unhide'];
const WRITE = [...DOMAIN, 'previous', 'protect', 'unprotect', 'changed'];
const RESPONSE = ['setResponseData', 'addResponseField', 'addResponseMessage', 'setResponseStatus'];

/** Compiled variants: BeforeRequest has `data` only for POST and PUT. */
export type HookVariant = HookEvent | 'beforerequest-nodata';

export const HOOK_PARAMS: Record<HookVariant, string[]> = {
  beforerequest: [...COMMON, 'event', 'data'],
  'beforerequest-nodata': [...COMMON, 'event'],
  get: [...COMMON, 'data', ...DOMAIN],
  delete: [...COMMON, 'data', ...DOMAIN],
  validate: [...COMMON, 'data', ...WRITE],
  post: [...COMMON, 'data', ...WRITE],
  put: [...COMMON, 'data', ...WRITE],
  aftercommit: [...COMMON, 'data', 'method', 'previous', ...RESPONSE],
  login: [...COMMON, 'data', 'success'],
};

export function variantFor(event: HookEvent, requestEvent: string): HookVariant {
  return event === 'beforerequest' && requestEvent !== 'POST' && requestEvent !== 'PUT' ? 'beforerequest-nodata' : event;
}

/**
 * Wraps a hook file so that a go-deployd `function Run(context)` declared in it is handed back to
 * the runtime. The body starts on line 2: compile with `lineOffset: -1` so positions match the file.
 */
export function wrapHookSource(variant: HookVariant, source: string): string {
  return `(function (${HOOK_PARAMS[variant].join(', ')}) {\n${source}\n;return typeof Run === 'function' ? Run : undefined;\n})`;
}
