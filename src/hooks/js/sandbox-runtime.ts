/* eslint-disable */
/**
 * Code that runs INSIDE each hook isolate (it is serialized with `toString()` and evaluated there;
 * it must not reference anything outside its own body). It:
 *   - freezes every built-in and the global object, so no hook can change what the next request
 *     sees (`Array.prototype.push = …` and implicit globals have no lasting effect);
 *   - builds the hook API for each invocation (Deployd's identifiers, go-deployd's `context`, the
 *     seed's response functions) and collects a HookResult;
 *   - tracks the invocation's callbacks and promises (`dpd` calls, `$addCallback`) and reports the
 *     result to the host once they have all settled, as Deployd does.
 * The host calls `start` and `deliver` with a time limit; microtasks run inside those calls, so a
 * loop inside a `.then` is stopped by the same limit.
 */
export function sandboxRuntime(paramsJson: string, hostCall: any, hostDone: any): any {
  'use strict';
  const PARAMS: Record<string, string[]> = JSON.parse(paramsJson);
  const CANCEL = Symbol('cancel');
  const COLLECTION = Symbol('collection');
  const stringify = JSON.stringify;
  const parse = JSON.parse;

  // ---- lockdown -------------------------------------------------------------------------------
  // Assigning to an inherited frozen property would otherwise fail (the "override mistake"):
  // turn the ones ordinary code assigns into accessors that define an own property instead.
  const overridable: Array<[any, string[]]> = [
    [Object.prototype, ['toString', 'valueOf', 'constructor', 'toLocaleString', 'hasOwnProperty']],
    [Function.prototype, ['toString', 'name']],
    [Array.prototype, ['toString', 'push', 'join']],
    [Promise.prototype, ['then', 'catch', 'finally']],
  ];
  for (const E of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]) {
    overridable.push([E.prototype, ['message', 'name', 'toString', 'constructor']]);
  }
  for (const [proto, names] of overridable) {
    for (const name of names) {
      const desc = Object.getOwnPropertyDescriptor(proto, name);
      if (!desc || !('value' in desc) || !desc.configurable) continue;
      const value = desc.value;
      Object.defineProperty(proto, name, {
        configurable: false,
        enumerable: desc.enumerable,
        get() { return value; },
        set(this: any, v: unknown) {
          if (this === proto) throw new TypeError(`Cannot assign to read only property '${name}' of a built-in`);
          Object.defineProperty(this, name, { value: v, writable: true, enumerable: true, configurable: true });
        },
      });
    }
  }
  // Built-ins that carry state between calls or crash the engine: the legacy RegExp statics
  // (`RegExp.$1`, `RegExp.input` hold the last match, e.g. another request's password) and
  // `Atomics.waitAsync` (with a timeout it aborts isolated-vm 5.0.4).
  for (const name of Object.getOwnPropertyNames(RegExp)) {
    const d = Object.getOwnPropertyDescriptor(RegExp, name);
    if (d && (d.get || d.set) && d.configurable) delete (RegExp as any)[name];
  }
  if (typeof Atomics !== 'undefined') delete (Atomics as any).waitAsync;
  const hidden = [
    Object.getPrototypeOf(function* () {}),
    Object.getPrototypeOf(async function () {}),
    Object.getPrototypeOf(async function* () {}),
    Object.getPrototypeOf([][Symbol.iterator]()),
    Object.getPrototypeOf(new Map()[Symbol.iterator]()),
    Object.getPrototypeOf(new Set()[Symbol.iterator]()),
    Object.getPrototypeOf(''[Symbol.iterator]()),
    Object.getPrototypeOf(/a/[Symbol.matchAll]('a')),
    Object.getPrototypeOf(Int8Array),
  ];
  function harden(roots: unknown[]) {
    const seen = new Set<unknown>();
    const stack = [...roots];
    while (stack.length) {
      const o: any = stack.pop();
      if ((typeof o !== 'object' && typeof o !== 'function') || o === null || seen.has(o)) continue;
      seen.add(o);
      Object.freeze(o);
      stack.push(Object.getPrototypeOf(o));
      for (const key of Reflect.ownKeys(o)) {
        const d: any = Object.getOwnPropertyDescriptor(o, key);
        if ('value' in d) stack.push(d.value);
        else stack.push(d.get, d.set);
      }
    }
  }

  // ---- helpers ----------------------------------------------------------------------------------
  function isObject(v: unknown): v is Record<string, any> {
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  }
  function deepFreeze<T>(v: T): T {
    if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const key of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[key]);
    }
    return v;
  }
  function deepEqual(a: any, b: any): boolean {
    if (a === b) return true;
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    for (const k of ka) if (!Object.prototype.hasOwnProperty.call(b, k) || !deepEqual(a[k], b[k])) return false;
    return true;
  }
  function toJsonValue(v: unknown): unknown {
    if (v === undefined) return null;
    const text = stringify(v);
    return text === undefined ? null : parse(text);
  }
  /** Text for a log line: strings as they are, Errors as `Name: message`, anything else as JSON when it can be. */
  function logText(v: unknown): string {
    if (typeof v === 'string') return v;
    try {
      if (v instanceof Error) return `${v.name}: ${v.message}`;
      const text = stringify(v);
      if (text !== undefined) return text;
    } catch {
      // circular, BigInt, a throwing toJSON: fall back to String()
    }
    try {
      return String(v);
    } catch {
      return '[unprintable]';
    }
  }
  /** `fields` of a log line as JSON, or undefined when they are not representable. */
  function logFields(v: unknown): unknown {
    try {
      return isObject(v) ? toJsonValue(v) : undefined;
    } catch {
      return { value: logText(v) };
    }
  }
  function errorMessage(e: any): string {
    if (e && typeof e.message === 'string') return e.message;
    try {
      return String(e);
    } catch {
      return 'hook failed';
    }
  }

  // ---- invocations ------------------------------------------------------------------------------
  interface Invocation {
    id: number;
    result: any;
    doc: any;
    previous: any;
    pending: number;
    topLevelDone: boolean;
    finished: boolean;
    calls: Map<number, (result: any, error: any) => void>;
    nextCall: number;
    hiddenProps: Set<string>;
    protectedProps: Set<string>;
    /** True while `start` runs: an outcome reached then is returned, not sent through hostDone. */
    sync: boolean;
    /** The hook file (`todos/post.js`). */
    file: string;
    /** Errors thrown in promise handlers that no later handler of the chain has caught (yet). */
    thrown: unknown[];
    output?: string;
  }
  const hooks = new Map<string, Function>();
  /** variant → its file; and every hook file name, to find the user's frames in a stack. */
  const variantFiles = new Map<string, string>();
  const hookFiles = new Set<string>();
  const invocations = new Map<number, Invocation>();

  class CancelSignal {
    [CANCEL] = true;
    constructor(readonly message: string, readonly status: number, readonly isError: boolean) {}
  }

  /** The stack's first frame in a hook file (`todos/validate.js:3:7`), and the stack without runtime frames. */
  function placeOf(e: any): { place?: string; stack?: string } {
    let stack: unknown;
    try {
      stack = isObject(e) || typeof e === 'function' ? e.stack : undefined;
    } catch {
      return {};
    }
    if (typeof stack !== 'string') return {};
    const lines = stack.split('\n').filter((line) => !line.includes('deployd:'));
    for (const line of lines.slice(1)) {
      const m = /\(?([^\s()]+):(\d+):(\d+)\)?\s*$/.exec(line);
      if (m && hookFiles.has(m[1])) return { place: `${m[1]}:${m[2]}:${m[3]}`, stack: lines.join('\n') };
    }
    return { stack: lines.join('\n') };
  }

  /**
   * A deliberate cancel keeps its status: `cancel()`, and a thrown string or plain object (what
   * Deployd's cancel throws). An Error (a TypeError from a typo, `throw new Error(…)`) is a
   * failure: 500, with the file:line:col where it was thrown.
   */
  function toCancel(inv: Invocation, e: any): { message: string; status: number; isError: boolean; stack?: string } {
    if (e instanceof CancelSignal) return { message: e.message, status: e.status, isError: e.isError };
    if (e instanceof Error) {
      let text: string;
      try {
        text = `${e.name === 'Error' ? '' : e.name + ': '}${e.message}`;
      } catch {
        text = 'an unprintable Error was thrown';
      }
      const { place, stack } = placeOf(e);
      return { message: `${place ?? inv.file}: ${text}`, status: 500, isError: true, ...(stack ? { stack } : {}) };
    }
    if (isObject(e)) {
      return { message: typeof e.message === 'string' ? e.message : '', status: Number(e.statusCode ?? e.status) || 400, isError: false };
    }
    return { message: e === undefined ? '' : String(e), status: 400, isError: false };
  }

  /** Ends the invocation (first outcome wins) and reports it. */
  function finish(inv: Invocation, failure?: unknown) {
    if (inv.finished) return;
    if (failure !== undefined) {
      const { stack, ...cancel } = toCancel(inv, failure);
      inv.result.cancel = cancel;
      if (stack) inv.result.stack = stack;
    }
    inv.finished = true;
    invocations.delete(inv.id);
    const data: Record<string, unknown> = {};
    if (isObject(inv.doc)) {
      for (const key of Object.keys(inv.doc)) data[key] = inv.doc[key];
      for (const key of inv.hiddenProps) if (Object.prototype.hasOwnProperty.call(inv.doc, key)) data[key] = inv.doc[key];
      for (const key of inv.protectedProps) {
        if (inv.previous && Object.prototype.hasOwnProperty.call(inv.previous, key)) data[key] = inv.previous[key];
        else delete data[key];
      }
    }
    inv.result.data = data;
    inv.result.hidden = [...inv.hiddenProps];
    inv.result.protected = [...inv.protectedProps];
    let text: string;
    try {
      text = stringify(inv.result);
    } catch (e) {
      text = stringify({ data: {}, errors: {}, hidden: [], protected: [], emits: [], logs: [], cancel: { message: `hook result is not JSON: ${errorMessage(e)}`, status: 500, isError: true } });
    }
    if (inv.sync) inv.output = text;
    else hostDone(inv.id, text);
  }

  function settle(inv: Invocation) {
    // Deployd: an error thrown in a `.then` fails the event only if the chain never caught it.
    if (!inv.finished && inv.topLevelDone && inv.pending <= 0) finish(inv, ...inv.thrown.slice(0, 1));
  }

  /** Runs user code belonging to `inv`; a throw becomes the event's outcome. */
  function guard(inv: Invocation, fn: () => unknown): unknown {
    if (inv.finished) return undefined;
    try {
      return fn();
    } catch (e) {
      finish(inv, e);
      return undefined;
    }
  }

  /** A promise whose handlers run with `this` = the document and are counted until they finish. */
  function tracked(inv: Invocation, promise: Promise<any>): any {
    const wrap = (handler: any, rethrow: boolean) => (value: any) => {
      try {
        if (typeof handler !== 'function') {
          if (rethrow) throw value;
          return value;
        }
        if (inv.finished) return undefined;
        if (rethrow) inv.thrown = inv.thrown.filter((e) => e !== value); // caught by this handler
        return handler.call(inv.doc, value);
      } catch (e) {
        if (!(typeof handler !== 'function' && rethrow)) {
          // A cancel() ends the event at once; any other error waits to see whether the chain catches it.
          if (e && (e as any)[CANCEL]) finish(inv, e);
          else inv.thrown.push(e);
        }
        throw e;
      } finally {
        inv.pending--;
        Promise.resolve().then(() => settle(inv));
      }
    };
    const thenable: any = {
      then(onFulfilled: any, onRejected: any) {
        inv.pending++;
        const next = promise.then(wrap(onFulfilled, false), wrap(onRejected, true));
        next.catch(() => {});
        return tracked(inv, next);
      },
      catch(onRejected: any) {
        return thenable.then(undefined, onRejected);
      },
      fail(onRejected: any) {
        return thenable.then(undefined, onRejected);
      },
      finally(onFinally: any) {
        return thenable.then(
          (v: any) => { if (typeof onFinally === 'function') onFinally.call(inv.doc); return v; },
          (e: any) => { if (typeof onFinally === 'function') onFinally.call(inv.doc); throw e; },
        );
      },
    };
    promise.catch(() => {});
    return thenable;
  }

  /** The collections and their `dpd` keys, parsed once per list (the host sends the same text every call). */
  let collectionsText = '';
  let collectionKeys: Array<{ name: string; key: string }> = [];
  function collectionsOf(json: string): Array<{ name: string; key: string }> {
    if (json !== collectionsText) {
      collectionKeys = (parse(json) as string[]).map((name) => ({ name, key: name.replace(/[^A-Za-z0-9]/g, '') }));
      collectionsText = json;
    }
    return collectionKeys;
  }

  function makeDpd(inv: Invocation, collections: Array<{ name: string; key: string }>): any {
    const dpd: Record<string, any> = {};
    for (const { name, key } of collections) {
      const call = (method: string, args: any[]) => {
        // Deployd's signature: [id|path], [query], [body], [fn] — objects in order query then body.
        let fn: any;
        if (typeof args[args.length - 1] === 'function') fn = args.pop();
        let id: string | undefined;
        if (typeof args[0] === 'string' || typeof args[0] === 'number') id = String(args.shift());
        let query: any;
        let body: any;
        const objects = args.filter((a) => a !== undefined && a !== null);
        if (method === 'POST' || method === 'PUT') {
          if (objects.length >= 2) [query, body] = objects;
          else body = objects[0];
        } else query = objects[0];
        inv.pending++;
        const callId = inv.nextCall++;
        const promise = new Promise((resolve, reject) => {
          inv.calls.set(callId, (result: any, error: any) => {
            try {
              if (typeof fn === 'function') guard(inv, () => fn.call(inv.doc, error ? null : result, error ?? undefined));
            } finally {
              if (error) reject(error);
              else resolve(result);
            }
          });
        });
        hostCall(inv.id, callId, stringify({ collection: name, method, id, query: toJsonValue(query ?? {}), body: toJsonValue(body ?? {}) }));
        return tracked(inv, promise);
      };
      dpd[key] = Object.freeze({
        [COLLECTION]: name,
        get: (...args: any[]) => call('GET', args),
        post: (...args: any[]) => call('POST', args),
        put: (...args: any[]) => call('PUT', args),
        del: (...args: any[]) => call('DELETE', args),
        exec: (...args: any[]) => call('POST', args),
      });
    }
    return Object.freeze(dpd);
  }

  /**
   * go-deployd reads `context.data` back after `Run`: an object assigned to it has its fields merged
   * into the document (merge-only, as there; protected fields keep their value). BeforeRequest's
   * `context.data` is the request, whose changes are discarded.
   */
  function adoptRunData(inv: Invocation, context: { data: unknown }, request: unknown): void {
    const next = context.data;
    if (request || !isObject(next) || next === inv.doc) return;
    for (const key of Object.keys(next)) {
      if (inv.protectedProps.has(key)) continue;
      Object.defineProperty(inv.doc, key, { value: next[key], writable: true, enumerable: !inv.hiddenProps.has(key), configurable: true });
    }
  }

  /** A protected property reads the stored document's value: the document → that stored document. */
  const protectedSources = new WeakMap<object, Record<string, unknown>>();
  const protectedAccessors = new Map<string, PropertyDescriptor>();
  /**
   * The accessor of a protected property, one per name (shared for the map's sake, as RunContext;
   * frozen, so no request can leave anything on it for the next).
   */
  function protectedAccessor(p: string): PropertyDescriptor {
    const known = protectedAccessors.get(p);
    if (known) return known;
    const accessor: PropertyDescriptor = {
      enumerable: true,
      configurable: true,
      get(this: object) {
        for (let o: any = this; o !== null && o !== undefined; o = Object.getPrototypeOf(o)) {
          const source = protectedSources.get(o);
          if (source) return source[p];
        }
        return undefined;
      },
      set() { throw new CancelSignal(`Cannot modify protected property '${p}'`, 400, true); },
    };
    Object.freeze(accessor.get);
    Object.freeze(accessor.set);
    if (protectedAccessors.size < 256) protectedAccessors.set(p, accessor);
    return accessor;
  }

  /** Runs a hook; returns the result when it settled synchronously, else reports it via hostDone. */
  function start(invId: number, variant: string, ctxJson: string, collectionsJson: string): string | undefined {
    const ctx = parse(ctxJson);
    const fn = hooks.get(variant);
    const result: any = { errors: {}, emits: [], logs: [] };
    const inv: Invocation = {
      id: invId, result, doc: isObject(ctx.data) ? ctx.data : {}, previous: ctx.previous, pending: 0,
      topLevelDone: false, finished: false, calls: new Map(), nextCall: 1, hiddenProps: new Set(), protectedProps: new Set(), sync: true, thrown: [],
      file: variantFiles.get(variant) ?? `${ctx.collection}/${variant}.js`,
    };
    invocations.set(invId, inv);
    if (!fn) {
      finish(inv, new CancelSignal(`no ${variant} hook is loaded`, 500, true));
      return inv.output;
    }
    const doc = inv.doc;
    const me = ctx.caller.me ?? undefined;
    const query = isObject(ctx.query) ? ctx.query : {};
    result.query = query;
    const cancel = (msg?: any, status?: any) => {
      if (msg instanceof Error) throw new CancelSignal(msg.message, Number(status ?? (msg as any).statusCode ?? (msg as any).status) || 400, true);
      if (isObject(msg) && status === undefined) throw new CancelSignal(typeof msg.message === 'string' ? msg.message : '', Number(msg.statusCode ?? msg.status) || 400, false);
      throw new CancelSignal(msg === undefined ? '' : String(msg), Number(status) || 400, false);
    };
    const log = (level: string) => (...args: any[]) => {
      if (result.logs.length >= 100) return;
      result.logs.push({ level, message: args.map(logText).join(' ').slice(0, 4000) });
    };
    const emit = (...args: any[]) => {
      if (result.emits.length >= 1000) throw new CancelSignal('too many emits in one event', 500, true);
      // Deployd dispatches on the number of arguments; any other count sends nothing.
      if (args.length === 4) {
        // emit(dpd.users, query, event, data)
        if (!isObject(args[0]) || !(args[0] as any)[COLLECTION]) throw new TypeError('emit(collection, query, event, data) needs a dpd collection first');
        result.emits.push({ event: String(args[2]), data: toJsonValue(args[3]), usersCollection: (args[0] as any)[COLLECTION], usersQuery: toJsonValue(args[1] ?? {}) });
      } else if (args.length === 3) {
        result.emits.push({ room: String(args[0]), event: String(args[1]), data: toJsonValue(args[2]) });
      } else if (args.length === 1 || args.length === 2) {
        result.emits.push({ event: String(args[0]), data: toJsonValue(args[1]) });
      }
    };
    // Deployd ignores error() in On Get (defect 7.2 #11, not copied): here it counts everywhere.
    const error = (field: any, message?: any) => {
      result.errors[String(field)] = message === undefined || message === true ? 'is invalid' : String(message);
    };
    const hide = (prop: any, toggle?: any) => {
      const p = String(prop);
      const visible = toggle === false;
      // A field the document lacks is still reported hidden: the server then treats a query on it the
      // same whether or not a document has it (no oracle for its existence).
      if (!Object.prototype.hasOwnProperty.call(doc, p)) {
        if (visible) inv.hiddenProps.delete(p);
        else inv.hiddenProps.add(p);
        return;
      }
      const value = doc[p];
      Object.defineProperty(doc, p, { value, enumerable: visible, writable: true, configurable: true });
      if (visible) inv.hiddenProps.delete(p);
      else inv.hiddenProps.add(p);
    };
    const previous = isObject(ctx.previous) ? ctx.previous : {};
    /** The values protected properties had, for unprotect(). */
    const unprotected = new Map<string, unknown>();
    const protect = (prop: any, toggle?: any) => {
      const p = String(prop);
      if (toggle === false) {
        // unprotect: the property holds again the value it had before protect()
        if (inv.protectedProps.delete(p)) {
          Object.defineProperty(doc, p, { value: unprotected.get(p), writable: true, enumerable: !inv.hiddenProps.has(p), configurable: true });
          unprotected.delete(p);
        }
        return;
      }
      if (!Object.prototype.hasOwnProperty.call(doc, p)) return;
      if (!inv.protectedProps.has(p)) unprotected.set(p, doc[p]);
      inv.protectedProps.add(p);
      protectedSources.set(doc, previous);
      Object.defineProperty(doc, p, protectedAccessor(p));
    };
    // Deployd: a PUT protects `id` before Validate and Put, so `this.id = …` throws there.
    if (ctx.method === 'PUT' && (ctx.event === 'validate' || ctx.event === 'put')) protect('id');
    const response = () => (result.response ??= { replaceData: false, addFields: {}, messages: [], status: 0 });
    // Deployd's session.joinRoom(s)(name | [names]) and leaveRoom(s): the server applies them to the caller's session.
    const rooms = () => (result.sessionRooms ??= { join: [], leave: [], leaveAll: false });
    const roomNames = (names: any): string[] => (Array.isArray(names) ? names : [names]).map((n) => String(n)).filter((n) => n.length > 0 && n.length <= 200).slice(0, 100);
    const joinRooms = (names: any) => { const r = rooms(); for (const n of roomNames(names)) { r.join.push(n); r.leave = r.leave.filter((x: string) => x !== n); } };
    const leaveRooms = (names: any) => { const r = rooms(); for (const n of roomNames(names)) { r.leave.push(n); r.join = r.join.filter((x: string) => x !== n); } };
    const api: Record<string, any> = {
      me,
      isMe: (id: any) => !!me && me.id === id,
      query,
      cancel,
      cancelIf: (cond: any, msg?: any, status?: any) => { if (cond) cancel(msg, status); },
      cancelUnless: (cond: any, msg?: any, status?: any) => { if (!cond) cancel(msg, status); },
      emit,
      internal: ctx.internal ? true : undefined,
      isRoot: !!ctx.caller.isRoot,
      session: Object.freeze({
        isRoot: !!ctx.caller.isRoot, user: me,
        joinRoom: joinRooms, joinRooms, leaveRoom: leaveRooms, leaveRooms,
        leaveAllRooms: () => { const r = rooms(); r.leaveAll = true; r.join = []; r.leave = []; },
      }),
      console: Object.freeze({ log: log('info'), info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') }),
      dpd: makeDpd(inv, collectionsOf(collectionsJson)),
      $addCallback: () => { inv.pending++; },
      $finishCallback: () => { inv.pending--; Promise.resolve().then(() => settle(inv)); },
      data: doc,
      event: ctx.requestEvent,
      error,
      errorIf: (cond: any, field: any, msg?: any) => { if (cond) error(field, msg); },
      errorUnless: (cond: any, field: any, msg?: any) => { if (!cond) error(field, msg); },
      hasErrors: () => Object.keys(result.errors).length > 0,
      hide,
      unhide: (prop: any) => hide(prop, false),
      previous: ctx.previous ?? (variant === 'aftercommit' ? undefined : {}),
      protect,
      unprotect: (prop: any) => protect(prop, false),
      changed: (prop: any) => Object.prototype.hasOwnProperty.call(doc, prop) && !deepEqual(previous[prop], doc[prop]),
      method: ctx.method,
      success: !!ctx.success,
      setResponseData: (obj: any) => { const r = response(); r.replaceData = true; r.data = toJsonValue(obj); },
      addResponseField: (key: any, value: any) => { response().addFields[String(key)] = toJsonValue(value); },
      addResponseMessage: (msg: any) => { response().messages.push(String(msg)); },
      setResponseStatus: (code: any) => {
        const n = Number(code);
        if (!Number.isInteger(n) || n < 100 || n > 599) throw new CancelSignal(`setResponseStatus needs an HTTP status, got ${String(code)}`, 500, true);
        response().status = n;
      },
    };
    // Deployd's `ctx`, read-only: what a script may know of the request (no headers, never a password).
    // `ctx` was parsed for this invocation alone: its body is nobody else's object, frozen as it is.
    const body = deepFreeze(isObject(ctx.body) ? ctx.body : {});
    const url = typeof ctx.url === 'string' ? ctx.url : '/';
    // Data properties only: an object literal with its own getter gets a map of its own on every
    // call (V8 keeps accessors in the map), which cost ~30 µs per invocation (bench/PROFILE.md).
    api.ctx = Object.freeze({
      query, body, url, method: ctx.method, session: api.session, me, dpd: api.dpd,
      req: Object.freeze({ method: ctx.method, url, query, body, headers: Object.freeze({}), internal: !!ctx.internal, isRoot: !!ctx.caller.isRoot }),
    });
    const args = PARAMS[variant].map((name) => api[name]);
    guard(inv, () => {
      const Run = fn.apply(doc, args);
      if (typeof Run === 'function') {
        // go-deployd style: Run(context); changes to context.data are kept.
        // Its BeforeRequest sees the request instead of a document — {event, method, query, user} —
        // and what it changes there is discarded (never stored as fields of the document).
        const request = variant.startsWith('beforerequest')
          ? { event: ctx.requestEvent, method: ctx.method, query: JSON.parse(JSON.stringify(query ?? {})), user: me ?? null, isRoot: !!api.isRoot }
          : undefined;
        // A plain object: own accessors would give each invocation's context a map of its own
        // (V8 keeps accessors in the map), ~25 µs per call (bench/PROFILE.md); `data` is read back instead.
        const context = {
          data: request ?? doc,
          previous: api.previous, query, me: me ?? null, isRoot: api.isRoot, internal: !!ctx.internal,
          method: ctx.method, event: variant.startsWith('beforerequest') ? ctx.requestEvent : variant, collection: ctx.collection,
          cancel, error, hasErrors: api.hasErrors, hide, protect, emit,
          log: (msg: any, fields?: any) => { if (result.logs.length < 100) result.logs.push({ level: 'info', message: logText(msg).slice(0, 4000), fields: logFields(fields) }); },
          setResponseData: api.setResponseData, addResponseField: api.addResponseField, addResponseMessage: api.addResponseMessage, setResponseStatus: api.setResponseStatus,
        };
        const returned = Run.call(doc, context);
        if (returned && typeof returned.then === 'function') {
          inv.pending++;
          returned.then(
            () => { inv.pending--; if (!inv.finished) adoptRunData(inv, context, request); settle(inv); },
            (e: any) => { inv.pending--; finish(inv, e); },
          );
        } else adoptRunData(inv, context, request);
      }
    });
    inv.topLevelDone = true;
    settle(inv);
    inv.sync = false;
    if (inv.finished) return inv.output;
    Promise.resolve().then(() => settle(inv));
    return undefined;
  }

  function deliver(invId: number, callId: number, resultJson: string | undefined, errorJson: string | undefined): void {
    const inv = invocations.get(invId);
    if (!inv) return;
    const callback = inv.calls.get(callId);
    if (!callback) return;
    inv.calls.delete(callId);
    const result = resultJson === undefined ? null : parse(resultJson);
    const error = errorJson === undefined ? undefined : parse(errorJson);
    try {
      callback(result, error);
    } finally {
      inv.pending--;
      Promise.resolve().then(() => settle(inv));
    }
  }

  /** Forgets an invocation the host gave up on (time limit). */
  function abort(invId: number): void {
    const inv = invocations.get(invId);
    if (inv) {
      inv.finished = true;
      invocations.delete(invId);
    }
  }

  function register(variant: string, fn: Function, file: string): void {
    variantFiles.set(variant, file);
    hookFiles.add(file);
    // Frozen with its prototype, so nothing (`arguments.callee.stash = …`) outlives a request.
    if ((fn as any).prototype) Object.freeze((fn as any).prototype);
    hooks.set(variant, Object.freeze(fn));
  }

  const runtime = Object.freeze({ start, deliver, abort, register });
  harden([globalThis, ...hidden]);
  return runtime;
}
