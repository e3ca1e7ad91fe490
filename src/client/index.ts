/**
 * The Deployd client (`dpd.js`) over deployd-ts's plain WebSocket, for browsers, bundlers and
 * Node 20+. One source serves both: this module is imported as `deployd-ts/client`, and the
 * server's `/dpd.js` is src/client/ bundled by esbuild (scripts/build-client.mjs, wrapped per app by
 * ./browser-bundle.ts), so it must stay dependency-free and free of Node APIs. This module declares
 * the whole public surface (the npm package ships its .d.ts alone); ./resources.ts (a
 * collection's methods), ./subscriptions.ts (collections and rooms to restore), ./emitter.ts, ./signatures.ts and ./http.ts hold internals.
 *
 * Deployd's API (dpd-clientlib):
 *   dpd.todos.get([id], [path], [query], fn)    dpd.todos.post([id], [query], body, fn)
 *   dpd.todos.put([id], [query], body, fn)      dpd.todos.del([id], [query], fn)
 *   dpd.todos.exec(func, [path], [body], fn)    dpd('todos') for any resource path
 * Callbacks are `fn(result)` on success and `fn(null, error)` on failure; every call also returns a
 * promise (`then`/`catch`, and Deployd's `fail`) that rejects with the server's JSON error body.
 *
 * Real time: `dpd.todos.on('created' | 'updated' | 'deleted' | 'changed', fn(document, change))`,
 * `dpd.on(event, fn(data, message))` for hook `emit()`s (Deployd's `emit('todos:x')` convention
 * reaches `dpd.todos.on('x')`), plus local events: 'connect', 'reconnect', 'disconnect', 'error'
 * and 'resync' (events may have been missed: refetch). The socket opens lazily on the first
 * `on`/`once`/`socketReady`, reconnects with exponential backoff and jitter, and resumes with
 * `/ws?since=<last event id>`; events are delivered at most once even if the server repeats one.
 * `dpd.subscribe(['todos'])` / `unsubscribe` narrow which collections' changes the socket receives,
 * `dpd.join('lobby')` / `leave` follow rooms; both are kept across reconnects.
 *
 * Typed: `deployd types` writes an app's document, body and event types and a `createAppClient`
 * that returns a `TypedDpd` (see `TypedDpd` below); plain `createClient` stays untyped (`any`).
 */
import { Emitter } from './emitter.js';
import { defaultBase, errorBody, normalizeBase } from './http.js';
import { makeResource } from './resources.js';
import { ACKS, Subscriptions } from './subscriptions.js';
import { invoke } from './signatures.js';

export interface DpdError {
  /** HTTP status; 0 when the server could not be reached. */
  status: number;
  message?: string;
  statusCode?: number;
  code?: string;
  /** Validation errors per property. */
  errors?: Record<string, string>;
  [key: string]: unknown;
}

/** Deployd's callback: `fn(result)` on success, `fn(null, error)` on failure. */
export type Callback<T = any> = (result: T | null, error?: DpdError) => void;
export type Query = Record<string, unknown>;
export type Listener = (...args: any[]) => void;

/** The fields of a `collection_change` frame, given to listeners after the document. */
export interface ChangeMessage<T = any> {
  type: 'collection_change';
  collection: string;
  action: 'created' | 'updated' | 'deleted';
  document: T;
  timestamp: string;
  userId: string | null;
  id: string;
}

/** The fields of a `custom_event` frame, given to listeners after the data. */
export interface CustomEventMessage<T = any> {
  type: 'custom_event';
  event: string;
  data: T;
  timestamp: string;
  room?: string;
  id: string;
}

/** What the client needs of a WebSocket: the browser's, Node 22's global, or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** What the client needs of `fetch` (the global one in browsers and Node 18+). */
export type FetchLike = (url: string, init: {
  method: string;
  headers: Record<string, string>;
  body?: string;
  credentials?: 'include' | 'omit' | 'same-origin';
}) => Promise<{ status: number; statusText?: string; headers: { get(name: string): string | null }; text(): Promise<string> }>;

export interface ReconnectOptions {
  /** First retry delay (default 500 ms); doubles (`factor`) per failed attempt up to `maxDelayMs`. */
  minDelayMs?: number;
  /** Longest delay between attempts (default 10 s). */
  maxDelayMs?: number;
  factor?: number;
  /** Fraction of each delay that is random (default 0.5: between half and all of it). */
  jitter?: number;
}

export interface ClientOptions {
  /** The server, e.g. `http://localhost:2403` (default in a browser: the page's origin). */
  baseUrl?: string;
  /** A WebSocket class; needed on Node 20, which has no global one (`import { WebSocket } from 'ws'`). */
  WebSocket?: WebSocketConstructor;
  fetch?: FetchLike;
  /** Extra headers on every HTTP request (Deployd's `_dpd.ajax.headers`). */
  headers?: Record<string, string>;
  /** A session token to start with (sent as `X-Session-Token`). */
  sessionToken?: string;
  /** Collection paths to expose as `dpd.<name without non-alphanumerics>`. */
  collections?: readonly string[];
  /**
   * Collections whose app emits its own `<path>:<name>` events (Deployd apps do, from their scripts):
   * for those the client sends only what the server emits, no `created`/`updated`/`deleted`/`changed`
   * of its own, so a listener is not called twice. /dpd.js fills this in from the app's hooks.
   */
  ownChangeEvents?: readonly string[];
  reconnect?: ReconnectOptions;
  /** Client ping period; a socket silent for two periods is dropped and reopened (0: off; default 20 s). */
  heartbeatMs?: number;
}

/** A promise with Deployd's (ayepromise's) `fail`. */
export class DpdPromise<T> extends Promise<T> {
  override then<A = T, B = never>(
    onFulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: any) => B | PromiseLike<B>) | null,
  ): DpdPromise<A | B> {
    return super.then(onFulfilled, onRejected) as DpdPromise<A | B>;
  }

  override catch<B = never>(onRejected?: ((reason: any) => B | PromiseLike<B>) | null): DpdPromise<T | B> {
    return this.then(undefined, onRejected);
  }

  fail<B = never>(onRejected: (error: DpdError) => B | PromiseLike<B>): DpdPromise<T | B> {
    return this.then(undefined, onRejected);
  }
}

export interface Resource<T = any> {
  /** The resource path, e.g. `todos` or `shop/orders`. */
  readonly path: string;
  get(id: string | number, callback?: Callback<T>): DpdPromise<T>;
  get(id: string | number, query: Query, callback?: Callback<T>): DpdPromise<T>;
  get(id: string | number, path: string | number, query?: Query, callback?: Callback): DpdPromise<any>;
  get(query: Query, callback?: Callback<T[]>): DpdPromise<T[]>;
  get(callback?: Callback<T[]>): DpdPromise<T[]>;
  post(body: Partial<T> | Query, callback?: Callback<T>): DpdPromise<T>;
  post(idOrQuery: string | number | Query, body: Partial<T> | Query, callback?: Callback<T>): DpdPromise<T>;
  post(id: string | number, query: Query, body: Partial<T> | Query, callback?: Callback<T>): DpdPromise<T>;
  put(body: Partial<T> | Query, callback?: Callback<T>): DpdPromise<T>;
  put(idOrQuery: string | number | Query, body: Partial<T> | Query, callback?: Callback<T>): DpdPromise<T>;
  put(id: string | number, query: Query, body: Partial<T> | Query, callback?: Callback<T>): DpdPromise<T>;
  del(id: string | number, callback?: Callback<{ count: number }>): DpdPromise<{ count: number }>;
  del(query: Query, callback?: Callback<{ count: number }>): DpdPromise<{ count: number }>;
  del(id: string | number, query: Query, callback?: Callback<{ count: number }>): DpdPromise<{ count: number }>;
  /** POST to `/<resource>/<func>[/<path>]`. */
  exec(func: string, callback?: Callback): DpdPromise<any>;
  exec(func: string, body: unknown, callback?: Callback): DpdPromise<any>;
  exec(func: string, path: string | number, body?: unknown, callback?: Callback): DpdPromise<any>;
  /** Users collections: POST `/<resource>/login`; the session then also authenticates the socket. */
  login(credentials: { username: string; password: string }, callback?: Callback): DpdPromise<{ path: string; id: string; uid: string }>;
  /** Users collections: ends the session; the socket goes back to anonymous. */
  logout(callback?: Callback): DpdPromise<{ count: number }>;
  /** Users collections: the logged-in user (`''` when nobody is). */
  me(callback?: Callback<T>): DpdPromise<T>;
  /** 'created' | 'updated' | 'deleted' | 'changed' → `fn(document, change)`; other names: `emit('<path>:<name>')`. */
  on(event: string, fn: Listener): Resource<T>;
  once(event: string, fn: Listener): Resource<T>;
  off(event: string, fn?: Listener): Resource<T>;
}

export interface Dpd {
  /** Any resource by path: `dpd('todo-lists')`, `dpd('shop/orders')`. */
  <T = any>(path: string): Resource<T>;
  on(event: string, fn: Listener): Dpd;
  once(event: string, fn: Listener): Dpd;
  /** Without `fn`, removes every listener of `event`. */
  off(event: string, fn?: Listener): Dpd;
  /** Calls `fn` once the socket is open (at once, asynchronously, if it already is). */
  socketReady(fn: () => void): void;
  setBaseUrl(url?: string | { protocol?: string; hostname: string; port?: string | number }): void;
  getBaseUrl(): string;
  /** Sent as `X-Session-Token` and to the socket (`{"type":"auth"}`); set from responses that carry one. */
  setSessionToken(token: string | null): void;
  getSessionToken(): string | null;
  /** Opens the socket (resuming from the last event seen) and keeps it open. */
  connect(): void;
  /** Closes the socket and stops reconnecting until `connect()` or a new listener. */
  disconnect(): void;
  /** Closes for good: no socket, no timers. */
  close(): void;
  /**
   * Only these collections' changes from now on (added to earlier `subscribe`s); resolves when the
   * server confirms. Kept across reconnects. Before any subscribe, every collection's arrive.
   */
  subscribe(collections: string | readonly string[]): DpdPromise<void>;
  /** Stop receiving these collections' changes. */
  unsubscribe(collections: string | readonly string[]): DpdPromise<void>;
  /** Join a room (`.deployd/realtime.json` "rooms" says which may be joined); rejects if refused. */
  join(room: string): DpdPromise<void>;
  leave(room: string): DpdPromise<void>;
  /** The raw socket, or null between connections. */
  readonly socket: WebSocketLike | null;
  readonly connected: boolean;
  /** Id of the last real-time event received (what `?since=` resumes from). */
  readonly lastEventId: string | null;
}

type Alphanumeric =
  | 'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g' | 'h' | 'i' | 'j' | 'k' | 'l' | 'm' | 'n' | 'o' | 'p' | 'q' | 'r' | 's' | 't' | 'u' | 'v' | 'w' | 'x' | 'y' | 'z'
  | 'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G' | 'H' | 'I' | 'J' | 'K' | 'L' | 'M' | 'N' | 'O' | 'P' | 'Q' | 'R' | 'S' | 'T' | 'U' | 'V' | 'W' | 'X' | 'Y' | 'Z'
  | '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9';
/** `shop/orders` → `shoporders`, `todo-lists` → `todolists` (Deployd's generated names). */
export type JsName<S extends string> = S extends `${infer H}${infer T}` ? (H extends Alphanumeric ? `${H}${JsName<T>}` : JsName<T>) : '';
export type CollectionsOf<C extends string> = string extends C ? {} : { [K in C as JsName<K>]: Resource };

/** The client's own events: `dpd.on('connect' | 'reconnect' | 'disconnect' | 'error' | 'resync', fn)`. */
export type LocalEvent = 'connect' | 'reconnect' | 'disconnect' | 'error' | 'resync';

/** What `deployd types` generates per collection. */
export interface CollectionTypes {
  document: object;
  create: object;
  update: object;
  /** Custom events declared in the collection's config.json `"events"`, name → data. */
  events: object;
}

/** A resource whose documents, bodies and events are the app's types. */
export interface TypedResource<T extends CollectionTypes> extends Omit<Resource<T['document']>, 'post' | 'put' | 'on' | 'once' | 'off'> {
  post(body: T['create'], callback?: Callback<T['document']>): DpdPromise<T['document']>;
  post(id: string | number, body: T['update'], callback?: Callback<T['document']>): DpdPromise<T['document']>;
  put(id: string | number, body: T['update'], callback?: Callback<T['document']>): DpdPromise<T['document']>;
  put(id: string | number, query: Query, body: T['update'], callback?: Callback<T['document']>): DpdPromise<T['document']>;
  on(event: 'created' | 'updated' | 'deleted' | 'changed', fn: (document: T['document'], change: ChangeMessage<T['document']>) => void): TypedResource<T>;
  on<E extends keyof T['events'] & string>(event: E, fn: (data: T['events'][E], message: CustomEventMessage<T['events'][E]>) => void): TypedResource<T>;
  once(event: 'created' | 'updated' | 'deleted' | 'changed', fn: (document: T['document'], change: ChangeMessage<T['document']>) => void): TypedResource<T>;
  once<E extends keyof T['events'] & string>(event: E, fn: (data: T['events'][E], message: CustomEventMessage<T['events'][E]>) => void): TypedResource<T>;
  off(event: string, fn?: Listener): TypedResource<T>;
}

/**
 * A client typed for an app: `dpd.<collection>` per collection (Deployd's names), and `dpd.on`
 * for the custom events the app declares (`E`: name → data) and the client's local events.
 */
export type TypedDpd<C extends { [K in keyof C]: CollectionTypes }, E extends object = {}> =
  Omit<Dpd, 'on' | 'once'>
  & { [K in keyof C & string as JsName<K>]: TypedResource<C[K]> }
  & {
    on<N extends keyof E & string>(event: N, fn: (data: E[N], message: CustomEventMessage<E[N]>) => void): TypedDpd<C, E>;
    on(event: LocalEvent, fn: Listener): TypedDpd<C, E>;
    once<N extends keyof E & string>(event: N, fn: (data: E[N], message: CustomEventMessage<E[N]>) => void): TypedDpd<C, E>;
    once(event: LocalEvent, fn: Listener): TypedDpd<C, E>;
  };

/** Deployd's name for a resource path on `dpd`: every non-alphanumeric character removed. */
export function jsName(path: string): string {
  return path.replace(/[^A-Za-z0-9]/g, '');
}

/** The gateway's refusals of subscribe/unsubscribe/join/leave (src/realtime/gateway.ts). */
const CONTROL_REFUSAL = /^(?:(?:subscribe|unsubscribe|join|leave) needs|room "|a connection can)/;
const DEFAULT_RECONNECT: Required<ReconnectOptions> = { minDelayMs: 500, maxDelayMs: 10_000, factor: 2, jitter: 0.5 };
const OPEN = 1;

/**
 * A client for the server at `options.baseUrl`:
 *
 *   import { WebSocket } from 'ws';
 *   const dpd = createClient({ baseUrl: 'http://localhost:2403', WebSocket, collections: ['todos'] });
 *   const todo = await dpd.todos.post({ title: 'x' });
 *   dpd.todos.on('created', (doc) => console.log(doc));
 */
export function createClient<const C extends string = never>(options: ClientOptions & { collections?: readonly C[] } = {}): Dpd & CollectionsOf<C> {
  const core = new ClientCore(options);
  const dpd = function (path: string) {
    return core.resource(path);
  } as Dpd;
  const methods: Record<string, unknown> = {
    on: (event: string, fn: Listener) => (core.on(event, fn, false), dpd),
    once: (event: string, fn: Listener) => (core.on(event, fn, true), dpd),
    off: (event: string, fn?: Listener) => (core.off(event, fn), dpd),
    socketReady: (fn: () => void) => core.socketReady(fn),
    setBaseUrl: (url?: Parameters<Dpd['setBaseUrl']>[0]) => core.setBaseUrl(url),
    getBaseUrl: () => core.baseUrl,
    setSessionToken: (token: string | null) => core.setSessionToken(token),
    getSessionToken: () => core.sessionToken,
    connect: () => core.connect(),
    disconnect: () => core.disconnect(),
    close: () => core.close(),
    subscribe: (names: string | readonly string[]) => core.control('subscribe', names),
    unsubscribe: (names: string | readonly string[]) => core.control('unsubscribe', names),
    join: (room: string) => core.control('join', room),
    leave: (room: string) => core.control('leave', room),
  };
  for (const [key, value] of Object.entries(methods)) Object.defineProperty(dpd, key, { value, enumerable: false });
  Object.defineProperty(dpd, 'socket', { get: () => core.socket });
  // Deployd's dpd.js keeps its extra request headers here (`dpd._dpd.ajax.headers.Authorization = …`).
  Object.defineProperty(dpd, '_dpd', { value: Object.freeze({ ajax: Object.freeze({ headers: core.headers }) }), enumerable: false });
  Object.defineProperty(dpd, 'connected', { get: () => core.isOpen });
  Object.defineProperty(dpd, 'lastEventId', { get: () => core.lastId });
  // Collections whose name would hide a member (`on`, `get`...) or a function property (`name`,
  // `length`) are only reachable as dpd('<path>'). Exact names first, so `shoporders` beats `shop/orders`.
  const paths = [...(options.collections ?? [])].sort((a, b) => Number(jsName(b) === b) - Number(jsName(a) === a));
  for (const path of paths) {
    const name = jsName(path);
    if (name === '' || name in dpd) continue;
    Object.defineProperty(dpd, name, { value: core.resource(path), enumerable: true });
  }
  return dpd as Dpd & CollectionsOf<C>;
}

// ---- internals ----------------------------------------------------------------------------------

type Timer = ReturnType<typeof setTimeout>;

class ClientCore {
  baseUrl: string;
  sessionToken: string | null;
  lastId: string | null = null;
  private lastEpoch: string | null = null;
  private lastSeq = 0;
  private readonly fetchImpl: FetchLike | undefined;
  private readonly WebSocketImpl: WebSocketConstructor | undefined;
  /** Sent with every HTTP request; mutable (Deployd's `dpd._dpd.ajax.headers`). */
  readonly headers: Record<string, string>;
  private readonly reconnect: Required<ReconnectOptions>;
  private readonly heartbeatMs: number;
  private readonly emitter = new Emitter();
  private readonly ownChangeEvents: ReadonlySet<string>;
  private readonly resources = new Map<string, Resource>();
  private ws: WebSocketLike | null = null;
  private open = false;
  /** Whether a socket should be kept open (a listener, socketReady or connect() asked for one). */
  private wanted = false;
  private closed = false;
  private everOpened = false;
  private attempts = 0;
  private retryTimer: Timer | null = null;
  private heartbeat: Timer | null = null;
  private lastHeard = 0;
  private ready: Array<() => void> = [];
  private readonly onOnline = () => this.retryNow();
  /** What the socket should receive, replayed on every (re)connect. */
  private readonly subscriptions = new Subscriptions();
  /** Control messages sent and not yet confirmed, in order (the server answers them in order). */
  private acks: Array<{ expect: string; waiters: Array<(error?: DpdError) => void> }> = [];
  /** Calls made while the socket was closed: settled once the reconnect has replayed the state. */
  private waiting: Array<(error?: DpdError) => void> = [];

  constructor(options: ClientOptions) {
    this.ownChangeEvents = new Set(options.ownChangeEvents ?? []);
    this.baseUrl = normalizeBase(options.baseUrl ?? defaultBase());
    this.sessionToken = options.sessionToken ?? null;
    this.fetchImpl = options.fetch ?? (typeof fetch === 'function' ? (fetch.bind(globalThis) as unknown as FetchLike) : undefined);
    this.WebSocketImpl = options.WebSocket;
    this.headers = { ...options.headers };
    this.reconnect = { ...DEFAULT_RECONNECT, ...options.reconnect };
    this.heartbeatMs = options.heartbeatMs ?? 20_000;
  }

  get socket(): WebSocketLike | null {
    return this.ws;
  }

  get isOpen(): boolean {
    return this.open;
  }

  // ---- HTTP -------------------------------------------------------------------------------------

  resource(path: string): Resource {
    const clean = String(path).split('/').filter(Boolean).join('/');
    let resource = this.resources.get(clean);
    if (!resource) {
      resource = makeResource(clean, this);
      this.resources.set(clean, resource);
    }
    return resource;
  }

  request(method: string, path: string, query: Query | undefined, body: unknown, fn: Callback | undefined): DpdPromise<any> {
    const url = this.baseUrl + path + encodeQuery(query);
    const headers: Record<string, string> = { Accept: 'application/json', ...this.headers };
    if (this.sessionToken) headers['X-Session-Token'] = this.sessionToken;
    let payload: string | undefined;
    if (method === 'POST' || method === 'PUT') {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body ?? {});
    }
    const fetchImpl = this.fetchImpl;
    const promise = new DpdPromise<any>((resolveWith, rejectWith) => {
      // Deployd's dpd.js calls the callback itself, not from a promise handler: an exception it throws
      // is an ordinary uncaught error (test frameworks see it), not an unhandled rejection.
      const resolve = (data: unknown) => {
        resolveWith(data);
        if (fn) queueMicrotask(() => invoke(fn, data, undefined));
      };
      const reject = (error: DpdError) => {
        rejectWith(error);
        if (fn) queueMicrotask(() => invoke(fn, null, error));
      };
      if (!fetchImpl) {
        reject({ status: 0, message: 'no fetch implementation: pass createClient({ fetch })' });
        return;
      }
      fetchImpl(url, { method, headers, body: payload, credentials: 'include' }).then(async (res) => {
        const token = res.headers.get('X-Session-Token');
        if (token) this.setSessionToken(token);
        const text = await res.text();
        let data: unknown = text;
        if (/^application\/json\b/i.test(res.headers.get('Content-Type') ?? '') && text !== '') {
          try {
            data = JSON.parse(text);
          } catch {
            // keep the text
          }
        }
        if ((res.status >= 200 && res.status < 300) || res.status === 304) resolve(data);
        else reject(errorBody(res.status, res.statusText, data));
      }).catch((err: unknown) => {
        reject({ status: 0, message: `could not reach ${this.baseUrl}: ${err instanceof Error ? err.message : String(err)}` });
      });
    });
    // With a callback the promise counts as handled: callers of the callback style never see an
    // unhandled rejection.
    if (fn) promise.then(undefined, () => {});
    return promise;
  }

  // ---- real time --------------------------------------------------------------------------------

  on(event: string, fn: Listener, once: boolean): void {
    if (typeof fn !== 'function') throw new TypeError(`dpd.on("${event}", fn): fn must be a function`);
    this.emitter.add(event, fn, once);
    this.connect();
  }

  off(event: string, fn?: Listener): void {
    this.emitter.remove(event, fn);
  }

  control(type: 'subscribe' | 'unsubscribe' | 'join' | 'leave', arg: string | readonly string[]): DpdPromise<void> {
    const names = typeof arg === 'string' ? [arg] : [...arg];
    if (names.length === 0 || !names.every((n) => typeof n === 'string' && n !== '')) {
      return DpdPromise.reject({ status: 0, message: `${type} needs ${type === 'join' || type === 'leave' ? 'a room name' : 'collection names'}` }) as DpdPromise<void>;
    }
    this.subscriptions.apply(type, names);
    return new DpdPromise<void>((resolve, reject) => {
      const settle = (error?: DpdError) => (error ? reject(error) : resolve());
      if (this.closed) return reject({ status: 0, message: 'the client is closed' });
      if (this.open) {
        const message = type === 'join' || type === 'leave' ? { type, room: names[0] } : { type, collections: names };
        this.acks.push({ expect: ACKS[type], waiters: [settle] });
        this.send(message);
      } else {
        this.waiting.push(settle);
        this.connect();
      }
    });
  }

  /** After a (re)connect: the subscriptions and rooms again, then the calls made meanwhile settle. */
  private restore(): void {
    const messages = this.subscriptions.messages();
    const waiting = this.waiting;
    this.waiting = [];
    messages.forEach((message, i) => {
      this.acks.push({ expect: ACKS[message.type], waiters: i === messages.length - 1 ? waiting : [] });
      this.send(message);
    });
    if (messages.length === 0) for (const settle of waiting) settle();
  }

  socketReady(fn: () => void): void {
    if (this.open) {
      setTimeout(fn, 0);
      return;
    }
    this.ready.push(fn);
    this.connect();
  }

  setSessionToken(token: string | null): void {
    if (token === this.sessionToken) return;
    const had = this.sessionToken !== null;
    this.sessionToken = token;
    // A new session authenticates the socket; dropping it (logout) makes the socket anonymous again.
    if (this.open && (token || had)) this.send({ type: 'auth', token });
  }

  setBaseUrl(url?: Parameters<Dpd['setBaseUrl']>[0]): void {
    // No argument: back to the default, the page's origin (Deployd).
    const next = normalizeBase(url === undefined || url === null || url === ''
      ? defaultBase()
      : typeof url === 'string'
        ? url
        : `${(url.protocol ?? 'http').replace(/:$/, '')}://${url.hostname}${url.port ? `:${url.port}` : ''}`);
    if (next === this.baseUrl) return;
    this.baseUrl = next;
    // Another server: another event stream.
    this.lastId = null;
    this.lastEpoch = null;
    this.everOpened = false;
    if (this.ws || this.retryTimer) {
      this.teardown();
      if (this.wanted) this.openSocket();
    }
  }

  connect(): void {
    if (this.closed) return;
    this.wanted = true;
    if (typeof window !== 'undefined' && typeof window.addEventListener === 'function') {
      window.removeEventListener('online', this.onOnline);
      window.addEventListener('online', this.onOnline);
    }
    if (this.heartbeat === null && this.heartbeatMs > 0) {
      this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
      (this.heartbeat as { unref?: () => void }).unref?.();
    }
    if (!this.ws && !this.retryTimer) this.openSocket();
  }

  disconnect(): void {
    this.wanted = false;
    this.teardown();
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (typeof window !== 'undefined' && typeof window.removeEventListener === 'function') window.removeEventListener('online', this.onOnline);
  }

  close(): void {
    this.disconnect();
    this.closed = true;
    this.ready = [];
    for (const settle of this.waiting.splice(0)) settle({ status: 0, message: 'the client is closed' });
  }

  /** Stops the current socket or pending retry; reports a disconnect if one was open. */
  private teardown(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    ws.onerror = () => {}; // a socket still connecting may report an error after close()
    try {
      ws.close(1000, 'client disconnect');
    } catch {
      // already closed
    }
    this.lost(1000, 'client disconnect');
  }

  private wsUrl(): string {
    const url = this.baseUrl.replace(/^http(s?):/i, 'ws$1:') + '/ws';
    return this.lastId ? `${url}?since=${encodeURIComponent(this.lastId)}` : url;
  }

  private openSocket(): void {
    const Impl = this.WebSocketImpl ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Impl) throw new Error('no WebSocket implementation: pass createClient({ WebSocket }) (on Node 20: `import { WebSocket } from "ws"`)');
    const resumed = this.lastId !== null;
    let ws: WebSocketLike;
    try {
      ws = new Impl(this.wsUrl());
    } catch (err) {
      this.emitter.emit('error', err);
      this.schedule();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      const reconnect = this.everOpened;
      this.open = true;
      this.everOpened = true;
      this.attempts = 0;
      this.lastHeard = Date.now();
      if (this.sessionToken) this.send({ type: 'auth', token: this.sessionToken });
      this.restore();
      this.emitter.emit('connect');
      if (reconnect) {
        this.emitter.emit('reconnect');
        // Without a position to resume from, what happened while away is unknown.
        if (!resumed) this.emitter.emit('resync', { reason: 'no event id to resume from' });
      }
      const ready = this.ready;
      this.ready = [];
      for (const fn of ready) fn();
    };
    ws.onmessage = (event: { data: unknown }) => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      this.receive(typeof event.data === 'string' ? event.data : String(event.data));
    };
    ws.onerror = () => {
      // The close event follows; it decides what to do.
    };
    ws.onclose = (event: { code?: number; reason?: string }) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.lost(event?.code ?? 1006, event?.reason ?? '');
      this.schedule();
    };
  }

  /** Bookkeeping for a socket that is gone. */
  private lost(code: number, reason: string): void {
    if (!this.open) return;
    this.open = false;
    // Unconfirmed calls are confirmed by the next connection's replay instead.
    for (const ack of this.acks) this.waiting.push(...ack.waiters);
    this.acks = [];
    this.emitter.emit('disconnect', { code, reason });
  }

  /** The next attempt, after an exponentially growing, partly random delay. */
  private schedule(): void {
    if (!this.wanted || this.closed || this.retryTimer) return;
    const { minDelayMs, maxDelayMs, factor, jitter } = this.reconnect;
    const ceiling = Math.min(maxDelayMs, minDelayMs * Math.pow(factor, this.attempts));
    this.attempts++;
    const delay = ceiling * (1 - jitter * Math.random());
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.wanted && !this.closed && !this.ws) this.openSocket();
    }, delay);
  }

  /** The network is back (browsers): skip the rest of the backoff. */
  private retryNow(): void {
    if (!this.retryTimer) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempts = 0;
    if (this.wanted && !this.closed && !this.ws) this.openSocket();
  }

  /** Pings the server; a socket that stayed silent for two periods is dropped and reopened. */
  private beat(): void {
    const ws = this.ws;
    if (!ws || !this.open) return;
    if (Date.now() - this.lastHeard > 2 * this.heartbeatMs) {
      this.ws = null;
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.onerror = () => {};
      try {
        ws.close(4000, 'heartbeat timeout');
      } catch {
        // already closed
      }
      this.lost(1006, 'heartbeat timeout');
      this.schedule();
      return;
    }
    this.send({ type: 'ping' });
  }

  private send(message: Record<string, unknown>): void {
    const ws = this.ws;
    if (ws && ws.readyState === OPEN) ws.send(JSON.stringify(message));
  }

  private receive(text: string): void {
    let message: Record<string, any>;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null) return;
    switch (message.type) {
      case 'collection_change': {
        if (!this.fresh(message.id)) return;
        const change = message as ChangeMessage;
        if (this.ownChangeEvents.has(change.collection)) return; // the app names its own events
        this.emitter.emit(`${change.collection}:${change.action}`, change.document, change);
        this.emitter.emit(`${change.collection}:changed`, change.document, change);
        return;
      }
      case 'custom_event': {
        if (!this.fresh(message.id)) return;
        this.emitter.emit(String(message.event), message.data, message);
        return;
      }
      case 'connected':
        // The stream position at connect: resuming from here misses nothing that follows.
        if (typeof message.id === 'string' && this.lastId === null) this.fresh(message.id);
        return;
      case 'resync_required':
        // The server cannot replay what was missed (it restarted, or too much time passed).
        this.lastId = null;
        this.lastEpoch = null;
        this.emitter.emit('resync', { reason: 'the server cannot replay the missed events' });
        return;
      case 'subscribed':
      case 'unsubscribed':
      case 'joined':
      case 'left':
        if (this.acks[0]?.expect === message.type) for (const settle of this.acks.shift()!.waiters) settle();
        return;
      case 'error':
        // The gateway answers control messages in order, so a refusal of one is for the oldest unconfirmed.
        if (this.acks.length > 0 && CONTROL_REFUSAL.test(String(message.message))) {
          const error: DpdError = { status: 400, message: String(message.message) };
          for (const settle of this.acks.shift()!.waiters) settle(error);
        }
        this.emitter.emit('error', message);
        return;
      case 'authenticated':
        // Deployd's socket says the session is bound with `server:acksession`.
        this.emitter.emit('server:acksession', message);
        return;
      default:
        return; // pong, subscribed...
    }
  }

  /** Records an event's stream position; false for one already delivered (a repeated replay). */
  private fresh(id: unknown): boolean {
    if (typeof id !== 'string') return true;
    const cut = id.lastIndexOf(':');
    const epoch = cut >= 0 ? id.slice(0, cut) : '';
    const seq = Number(id.slice(cut + 1));
    if (Number.isFinite(seq) && epoch === this.lastEpoch && seq <= this.lastSeq) return false;
    this.lastId = id;
    this.lastEpoch = epoch;
    this.lastSeq = Number.isFinite(seq) ? seq : 0;
    return true;
  }
}

/**
 * Deployd's query encoding: `?k=v&…` when every value is a string, otherwise the whole query as
 * URL-encoded JSON (`?%7B%22n%22%3A%7B%22%24gt%22%3A1%7D%7D`), which keeps types and operators.
 */
export function encodeQuery(query: Query | undefined): string {
  if (!query || typeof query !== 'object') return '';
  const keys = Object.keys(query).filter((k) => query[k] !== undefined);
  if (keys.length === 0) return '';
  if (keys.every((k) => typeof query[k] === 'string')) {
    return '?' + keys.map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(query[k] as string)}`).join('&');
  }
  return '?' + encodeURIComponent(JSON.stringify(query));
}
