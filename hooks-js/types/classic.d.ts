/**
 * Globals for Deployd classic-style hooks: `resources/<collection>/<event>.js` is a script body,
 * compiled as `function (<identifiers of that event>) { <file> }` and called with `this` = the
 * document. Enable these types with a jsconfig.json that includes this file, or with
 *
 *     /// <reference types="<path to>/hooks-js/types/classic" />
 *
 * at the top of a hook file. A plain script cannot be typed per event, so this file declares the
 * union of every event's identifiers; each one's JSDoc says in which events it exists. Using one in
 * another event is a `ReferenceError` when the hook runs. (src/hooks/hook-params.ts is the source.)
 *
 * Editor limits of the script form:
 *  - `this` at the top level of a script is the global object to the checker: reads of `this.x`
 *    are not checked. `data` is the same object, typed, in every event but BeforeRequest for
 *    GET/DELETE/QUERY.
 *  - The checker sees all hook files as scripts sharing one global scope: top-level `let`/`const`
 *    names must differ between files (or wrap the code in a block), and same-named top-level
 *    `var`s must have the same type.
 *  - A top-level `return` is valid at run time but reported (TS1108); put `// @ts-ignore` above it
 *    or use if/else.
 *
 * Do not add lib "dom" or @types/node to the hooks' jsconfig: hooks have no `window`, `process`,
 * `require`, timers or network, and `console` here is the hooks' own.
 */

// ---- every event ---------------------------------------------------------------------------------

/**
 * The caller: the logged-in user without secrets, or `undefined` when anonymous. With the master
 * key it is `{ id: 'root', username: 'root', isRoot: true }`.
 *
 * Events: all.
 */
declare var me: import('./context').HookUser | undefined;

/**
 * `me && me.id === id`.
 *
 * Events: all.
 */
declare function isMe(id: unknown): boolean;

/**
 * The request's parsed query (`query.id` is set for `/<collection>/<id>`). BeforeRequest may change
 * it to change what is read, updated or deleted.
 *
 * Events: all.
 */
declare var query: import('./context').HookQuery;

/**
 * Stops the event by throwing, and answers an error: `cancel(message, status)` (status 400 by
 * default), `cancel(new Error(message))`, or `cancel({ message, status })` (a `dpd` error passes
 * through as it is). In a list's Get it drops only that document; in a Delete of several it keeps
 * only that one; in AfterCommit it is only logged.
 *
 * Events: all.
 */
declare function cancel(message?: import('./context').CancelReason, status?: number): never;

/**
 * `if (condition) cancel(message, status)`.
 *
 * Events: all.
 */
declare function cancelIf(condition: unknown, message?: import('./context').CancelReason, status?: number): void;

/**
 * `if (!condition) cancel(message, status)`.
 *
 * Events: all.
 */
declare function cancelUnless(condition: unknown, message?: import('./context').CancelReason, status?: number): void;

/**
 * Sends a real-time event once the request succeeds: `emit(event)`, `emit(event, data)`,
 * `emit(room, event, data)`, `emit(dpd.users, query, event, data)`.
 *
 * Events: all.
 */
declare var emit: import('./context').EmitFunction;

/**
 * `true` when the request comes from a `dpd` call in another hook; `undefined` (not `false`) for
 * an HTTP request, as in Deployd.
 *
 * Events: all.
 */
declare var internal: true | undefined;

/**
 * The request carries the master key.
 *
 * Events: all.
 */
declare var isRoot: boolean;

/**
 * Deployd's session: `session.isRoot`, `session.user` (= `me`), `session.joinRoom(s)`/`leaveRoom(s)`/`leaveAllRooms()`
 * for the caller's login session (its WebSocket connections follow at once).
 *
 * Events: all.
 */
declare var session: import('./context').HookSession;

/**
 * Deployd's `ctx`, read-only: the request as a script may know it — `ctx.query`, `ctx.body` (as the
 * client sent it, never a password), `ctx.method`, `ctx.url` (the path after the resource's),
 * `ctx.session`, `ctx.me`, `ctx.dpd`, `ctx.req` (`method`, `url`, `query`, `body`; no headers).
 *
 * Events: all.
 */
declare var ctx: import('./context').HookRequestContext;

/**
 * Log lines for the server log (tagged with the collection and event), at most 100 per event.
 *
 * Events: all.
 */
declare var console: Console;
/**
 * The hooks' console (the same members as `HookConsole` in ./context.d.ts). Declared as the global
 * `Console` so that it merges with Node's instead of clashing if @types/node is loaded too.
 */
interface Console {
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  debug(...args: unknown[]): void;
}

/**
 * The internal client: `dpd.<collection path without non-alphanumerics>.get/post/put/del/exec`,
 * taking `([id], [query], [body], [callback(result, error)])` and returning a promise-like whose
 * handlers run with `this` = the document. The event waits for the calls it starts.
 *
 * Events: all.
 */
declare var dpd: import('./context').Dpd;

/**
 * Tells the event to wait for one more piece of asynchronous work; call `$finishCallback()` when
 * it is done. (`dpd` calls are counted without it.)
 *
 * Events: all.
 */
declare function $addCallback(): void;

/**
 * Ends a piece of work announced with `$addCallback()`.
 *
 * Events: all.
 */
declare function $finishCallback(): void;

/**
 * The document, the same object as `this`: the request body in BeforeRequest (POST, PUT) and in
 * Validate on POST; the body merged over the stored document in Validate and Put on PUT; the new
 * document, with its id, in Post; the stored one in Get, Delete and AfterCommit. Changes are kept
 * in BeforeRequest (POST), Validate, Post and Put.
 *
 * Events: all but BeforeRequest for GET, DELETE and QUERY (there it is a ReferenceError).
 */
declare var data: import('./context').HookDocument;

// ---- BeforeRequest ---------------------------------------------------------------------------------

/**
 * What the request is: `GET`, `POST`, `PUT`, `DELETE`, `QUERY` (`POST /<collection>/query`).
 *
 * Events: beforerequest.
 */
declare var event: import('./context').RequestEvent;

// ---- Get, Delete, Validate, Post, Put --------------------------------------------------------------

/**
 * Records a field error and goes on; once the event ends, a write (Validate, Post, Put) or Delete
 * fails with 400 `{ "errors": { field: message } }`. `message` defaults to `"is invalid"`.
 *
 * Events: get, delete, validate, post, put.
 */
declare function error(field: string, message?: string | true): void;

/**
 * `if (condition) error(field, message)`.
 *
 * Events: get, delete, validate, post, put.
 */
declare function errorIf(condition: unknown, field: string, message?: string | true): void;

/**
 * `if (!condition) error(field, message)`.
 *
 * Events: get, delete, validate, post, put.
 */
declare function errorUnless(condition: unknown, field: string, message?: string | true): void;

/**
 * Whether `error()` was called in this event.
 *
 * Events: get, delete, validate, post, put.
 */
declare function hasErrors(): boolean;

/**
 * Leaves `prop` out of this response (nothing happens if the document has no such property);
 * `hide(prop, false)` shows it again. The stored value is kept.
 *
 * Events: get, delete, validate, post, put.
 */
declare function hide(prop: string, toggle?: boolean): void;

/**
 * `hide(prop, false)`.
 *
 * Events: get, delete, validate, post, put.
 */
declare function unhide(prop: string): void;

// ---- Validate, Post, Put (and AfterCommit) -----------------------------------------------------------

/**
 * The stored document before this PUT; `{}` on POST. In AfterCommit: the document before a PUT,
 * `undefined` after a POST or DELETE.
 *
 * Events: validate, post, put, aftercommit.
 */
declare var previous: import('./context').HookDocument;

/**
 * Keeps `prop` at its stored value: assigning it throws, and a change is not saved (on POST the
 * property is not stored at all). `protect(prop, false)` undoes it.
 *
 * Events: validate, post, put.
 */
declare function protect(prop: string, toggle?: boolean): void;

/**
 * `protect(prop, false)`.
 *
 * Events: validate, post, put.
 */
declare function unprotect(prop: string): void;

/**
 * Whether the document has `prop` and its value differs (deeply) from `previous[prop]`. On POST
 * every present property counts as changed.
 *
 * Events: validate, post, put.
 */
declare function changed(prop: string): boolean;

// ---- AfterCommit ---------------------------------------------------------------------------------------

/**
 * The write that was committed: `POST`, `PUT` or `DELETE`.
 *
 * Events: aftercommit.
 */
declare var method: 'POST' | 'PUT' | 'DELETE';

/**
 * Replaces the whole HTTP response body with `data` (copied as JSON).
 *
 * Events: aftercommit.
 */
declare function setResponseData(data: unknown): void;

/**
 * Adds `key: value` to the response object.
 *
 * Events: aftercommit.
 */
declare function addResponseField(key: string, value: unknown): void;

/**
 * Appends `message` to the response's `messages` array.
 *
 * Events: aftercommit.
 */
declare function addResponseMessage(message: string): void;

/**
 * Sets the HTTP status of the response (an integer from 100 to 599; anything else fails the event).
 *
 * Events: aftercommit.
 */
declare function setResponseStatus(status: number): void;

// ---- Login (users collections) ---------------------------------------------------------------------------

/**
 * Whether the credentials were right.
 *
 * Events: login.
 */
declare var success: boolean;
