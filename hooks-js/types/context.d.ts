/**
 * Types for deployd-ts JavaScript hooks: `resources/<collection>/<event>.js`.
 *
 * This file is a module: use it from JSDoc with `import()` types, e.g. in a go-deployd-style hook
 *
 *     /** @param {import('../../types/context').HookContext} context *\/
 *     function Run(context) { context.data.title = String(context.data.title).trim(); }
 *
 * and narrow the document with a type argument: `HookContext<{ title: string, priority: number }>`.
 * The globals of Deployd's classic style (`me`, `emit`, `dpd`, `cancel`, …) are in ./classic.d.ts.
 *
 * Everything a hook receives or hands back crosses the sandbox as JSON: dates arrive as ISO
 * strings, and values passed to `emit`, `dpd`, `setResponseData`, `addResponseField` are copied as
 * `JSON.parse(JSON.stringify(value))` (`undefined` becomes `null`, functions are dropped).
 */

/**
 * A stored document (or a request body), as hooks see it: a plain JSON object. Narrow it with
 * JSDoc where you know the shape, e.g. `HookContext<Todo>` or `/** @type {Todo} *\/ (data)`.
 * Documents have a string `id` (16 hex characters) once stored, and `createdAt`/`updatedAt` ISO
 * strings when the collection has `"timestamps": true`.
 */
export type HookDocument = Record<string, any>;

/** A parsed query: `?status=open&$limit=10` or `{"priority":{"$gte":3}}`, including `$sort`, `$limit`, `$skip`, `$fields`. */
export type HookQuery = Record<string, any>;

/**
 * The caller (`me`): the logged-in user without secrets. Root (the master key in `X-Master-Key`)
 * is `{ id: 'root', username: 'root', isRoot: true }`.
 */
export interface HookUser {
  id: string;
  username?: string;
  isRoot?: boolean;
  [key: string]: any;
}

/** The files a collection can have, one per event. */
export type HookEventName = 'beforerequest' | 'validate' | 'post' | 'put' | 'get' | 'delete' | 'aftercommit' | 'login';

/**
 * What a BeforeRequest hook is running for (`event`): `QUERY` is `POST /<collection>/query`;
 * `LOGIN` and `LOGOUT` belong to users collections.
 */
export type RequestEvent = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'QUERY' | 'LOGIN' | 'LOGOUT';

/** The request's HTTP method. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/**
 * The first argument of `cancel`: a message, an `Error` (its message is kept), or an object such
 * as a `dpd` error `{ message, status }` (passed through as it is).
 */
export type CancelReason = string | Error | { message?: string; status?: number; statusCode?: number };

/** An error from the internal client: the error body the same HTTP request would have answered. */
export interface DpdError {
  message: string;
  status?: number;
  statusCode?: number;
  /** e.g. `DPD_ERR_NOT_FOUND`, `DPD_ERR_VALIDATION`, `DPD_ERR_HOOK_CANCELLED`. */
  code?: string;
  /** Field messages of a validation failure. */
  errors?: Record<string, string>;
  [key: string]: any;
}

/**
 * A `dpd` callback: Deployd's order, **result first**. On failure it is called as
 * `(null, error)`. `this` is the hook's document. A throw inside it ends the event with that error.
 */
export type DpdCallback<R> = (this: HookDocument, result: R, error?: DpdError) => void;

/**
 * What `dpd.<collection>.<method>()` returns: a promise-like whose handlers run with
 * `this` = the hook's document (as Deployd's Bluebird promise bound to the document). The event
 * waits for every `dpd` call and handler to finish, within the hook time limit. A throw inside a
 * handler ends the event with that error. Works with `await` in an `async function Run(context)`.
 */
export interface DpdPromise<T> extends PromiseLike<T> {
  then<R1 = T, R2 = never>(
    onfulfilled?: ((this: HookDocument, value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((this: HookDocument, reason: DpdError) => R2 | PromiseLike<R2>) | null,
  ): DpdPromise<R1 | R2>;
  catch<R = never>(onrejected?: ((this: HookDocument, reason: DpdError) => R | PromiseLike<R>) | null): DpdPromise<T | R>;
  /** Deployd's alias of `catch`. */
  fail<R = never>(onrejected?: ((this: HookDocument, reason: DpdError) => R | PromiseLike<R>) | null): DpdPromise<T | R>;
  finally(onfinally?: ((this: HookDocument) => void) | null): DpdPromise<T>;
}

/**
 * One collection in the internal client, `dpd.<collection path without non-alphanumerics>`
 * (`resources/shop/orders` → `dpd.shoporders`). Deployd's signature: `([id], [query], [body],
 * [callback])`. A call runs the target collection exactly as an HTTP request would, its hooks
 * included, as the same caller and with `internal` set; the same `METHOD /collection` may be on the
 * call stack at most twice (`$limitRecursion` in the outer query or body raises that).
 *
 * Narrow the document type with JSDoc: `/** @type {DpdCollection<Todo>} *\/ (dpd.todos)`.
 */
export interface DpdCollection<T extends object = HookDocument> {
  /** `GET /<collection>/count`: `{ count }` of the documents matching `query` (root only if the collection has a Get hook). */
  get(path: 'count', query?: HookQuery, callback?: DpdCallback<{ count: number }>): DpdPromise<{ count: number }>;
  /** `GET /<collection>/<id>`: one document; a missing one is a `DPD_ERR_NOT_FOUND` error (404). */
  get(id: string | number, callback?: DpdCallback<T>): DpdPromise<T>;
  get(id: string | number, query: HookQuery, callback?: DpdCallback<T>): DpdPromise<T>;
  /** `GET /<collection>?<query>`: the matching documents (after each one's Get hook). */
  get(query?: HookQuery, callback?: DpdCallback<T[]>): DpdPromise<T[]>;
  get(callback: DpdCallback<T[]>): DpdPromise<T[]>;

  /** `POST /<collection>`: creates a document; the result is the stored document. */
  post(body: Partial<T>, callback?: DpdCallback<T>): DpdPromise<T>;
  post(query: HookQuery, body: Partial<T>, callback?: DpdCallback<T>): DpdPromise<T>;
  /** `POST /<collection>/<id>`: updates that document (Deployd). `post('query', { query, options })` lists. */
  post(id: string | number, body: Partial<T> | HookQuery, callback?: DpdCallback<any>): DpdPromise<any>;
  post(id: string | number, query: HookQuery, body: Partial<T>, callback?: DpdCallback<T>): DpdPromise<T>;

  /** `PUT /<collection>/<id>`: shallow-merges `body` (update commands such as `{ $inc: 1 }` work). */
  put(id: string | number, body: Partial<T> | HookQuery, callback?: DpdCallback<T>): DpdPromise<T>;
  put(id: string | number, query: HookQuery, body: Partial<T> | HookQuery, callback?: DpdCallback<T>): DpdPromise<T>;
  /** Without an id, the id comes from `query.id` or `body.id`. */
  put(query: HookQuery, body: Partial<T> | HookQuery, callback?: DpdCallback<T>): DpdPromise<T>;
  put(body: Partial<T> | HookQuery, callback?: DpdCallback<T>): DpdPromise<T>;

  /** `DELETE /<collection>/<id>` → `{ count: 1 }`; with a query and no id, root only: every match. */
  del(id: string | number, callback?: DpdCallback<{ count: number }>): DpdPromise<{ count: number }>;
  del(id: string | number, query: HookQuery, callback?: DpdCallback<{ count: number }>): DpdPromise<{ count: number }>;
  del(query: HookQuery, callback?: DpdCallback<{ count: number }>): DpdPromise<{ count: number }>;

  /** Always a POST: `exec(path, body)` is `POST /<collection>/<path>` (for event-only `noStore` collections). */
  exec(path: string, body?: HookQuery, callback?: DpdCallback<any>): DpdPromise<any>;
  exec(body?: HookQuery, callback?: DpdCallback<any>): DpdPromise<any>;
  exec(callback: DpdCallback<any>): DpdPromise<any>;
}

/** The internal client: one `DpdCollection` per collection of the app. */
export interface Dpd {
  [collection: string]: DpdCollection;
}

/**
 * Sends a real-time event to WebSocket clients once the request succeeds (a cancelled or failed
 * event sends nothing). `data` is copied as JSON. At most 1000 emits per event.
 */
export interface EmitFunction {
  /** To every connected client: `emit('todo_done', { id })`; `emit('ping')` sends `null` data. */
  (event: string, data?: unknown): void;
  /** To the clients in `room`. */
  (room: string, event: string, data: unknown): void;
  /** To the sessions of the users matching `query`: `emit(dpd.users, { role: 'admin' }, 'alert', data)`. */
  (users: DpdCollection<any>, query: HookQuery, event: string, data?: unknown): void;
}

/** `console` in hooks: lines go to the server log, tagged with the collection and event. */
export interface HookConsole {
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  debug(...args: unknown[]): void;
}

/** Deployd's `ctx` in a script: what the request was (read-only). */
export interface HookRequestContext {
  readonly query: HookQuery;
  /** The body as the client sent it (undeclared keys too), never a password; `{}` without one. */
  readonly body: Readonly<Record<string, unknown>>;
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** The path after the resource's: `/` for the collection, `/<id>`, an Event resource's `/top-score`. */
  readonly url: string;
  readonly session: HookSession;
  readonly me: HookUser | undefined;
  readonly dpd: Dpd;
  readonly req: {
    readonly method: string;
    readonly url: string;
    readonly query: HookQuery;
    readonly body: Readonly<Record<string, unknown>>;
    /** Always empty: request headers are not part of the hook protocol. */
    readonly headers: Readonly<Record<string, string>>;
    readonly internal: boolean;
    readonly isRoot: boolean;
  };
}

/**
 * Deployd's `session`. The room functions change the rooms of the caller's login session: every
 * WebSocket connection of that session joins or leaves at once (on every instance), and a reconnect
 * with the session rejoins them; `emit(room, event, data)` then reaches them. Rooms joined this way
 * need not be listed as joinable in `.deployd/realtime.json`. Nothing happens for anonymous callers.
 */
export interface HookSession {
  readonly isRoot: boolean;
  /** The same as `me`. */
  readonly user: HookUser | undefined;
  joinRoom(room: string | string[]): void;
  joinRooms(rooms: string | string[]): void;
  leaveRoom(room: string | string[]): void;
  leaveRooms(rooms: string | string[]): void;
  leaveAllRooms(): void;
}

/**
 * The argument of a go-deployd-style hook, `function Run(context) { … }` (or `async function Run`,
 * whose returned promise the event waits for). `this` inside `Run` is the document too. The file
 * is still a Deployd script body, so the classic identifiers (`dpd`, `console`, …, see
 * ./classic.d.ts) are in scope inside `Run` as well.
 *
 * @template T the document's shape; defaults to any JSON object.
 */
export interface HookContext<T extends object = HookDocument> {
  /**
   * The document (`this`); changes are kept, as in the classic style's `this`. Assigning an object
   * (`context.data = { ...context.data, title }`) merges its fields into the document when `Run`
   * returns (or its promise settles), as go-deployd reads `context.data` back after `Run` (fields
   * are not removed; protected ones keep their value).
   */
  data: T;
  /**
   * The stored document before this PUT (Validate, Put, and AfterCommit after a PUT). `{}` on POST
   * and in Get, Delete and BeforeRequest; `undefined` in AfterCommit after a POST or DELETE.
   */
  previous: Partial<T>;
  /** The request's query; BeforeRequest may change it to change what is read, updated or deleted. */
  query: HookQuery;
  /** The caller, or `null` when anonymous. */
  me: HookUser | null;
  /** The request carries the master key. */
  isRoot: boolean;
  /** The request comes from a `dpd` call in another hook. */
  internal: boolean;
  method: HttpMethod;
  /** The event: `validate`, `post`, `put`, `get`, `delete`, `aftercommit`; in BeforeRequest, the request event (`GET`, `POST`, `PUT`, `DELETE`, `QUERY`). */
  event: Exclude<HookEventName, 'beforerequest'> | RequestEvent;
  /** The collection's path, e.g. `todos` or `shop/orders`. */
  collection: string;

  /**
   * Stops the event and answers an error: `message` (default empty) and `status` (default 400).
   * In a list's Get hook it drops just that document; in Delete of several, it keeps that one;
   * in AfterCommit it is only logged.
   */
  cancel(message?: CancelReason, status?: number): never;
  /**
   * Records a field error and goes on; once the event ends, a write (Validate, Post, Put) or Delete
   * fails with 400 `{ errors: { field: message } }`. `message` defaults to `"is invalid"`.
   */
  error(field: string, message?: string | true): void;
  /** Whether `error()` was called in this event. */
  hasErrors(): boolean;
  /** Leaves `prop` out of this response (the stored value is kept); `hide(prop, false)` shows it again. */
  hide(prop: keyof T & string, toggle?: boolean): void;
  /** Keeps `prop` at its stored value: a change is not saved (on POST, it is not stored at all); `protect(prop, false)` undoes it. */
  protect(prop: keyof T & string, toggle?: boolean): void;
  emit: EmitFunction;
  /** A line in the server log (info), with optional structured fields. At most 100 lines per event. */
  log(message: unknown, fields?: Record<string, unknown>): void;

  /** Response functions (they shape the HTTP answer in AfterCommit and in event-only `noStore` collections). Replaces the whole response body. */
  setResponseData(data: unknown): void;
  /** Adds `key: value` to the response object. */
  addResponseField(key: string, value: unknown): void;
  /** Appends to the response's `messages` array. */
  addResponseMessage(message: string): void;
  /** Sets the HTTP status (an integer from 100 to 599). */
  setResponseStatus(status: number): void;
}
