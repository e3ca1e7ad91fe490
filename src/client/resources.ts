/**
 * A collection (or any resource path) on `dpd`: Deployd's get/post/put/del/exec, the users
 * collection's login/logout/me, and on/once/off for its real-time events (`<path>:<event>`).
 */
import type { Callback, DpdError, DpdPromise, Listener, Query, Resource } from './index.js';
import { asCallback, bodyArgs, getArgs, invoke, isPathArg, joinPath } from './signatures.js';

/** What a resource asks of the client: requests, listeners, and the session after a logout. */
export interface ResourceHost {
  request(method: string, path: string, query: Query | undefined, body: unknown, fn: Callback | undefined): DpdPromise<any>;
  on(event: string, fn: Listener, once: boolean): void;
  off(event: string, fn?: Listener): void;
  setSessionToken(token: string | null): void;
}

export function makeResource(path: string, core: ResourceHost): Resource {
  const base = '/' + path.split('/').map(encodeURIComponent).join('/');
  const resource = {
    path,
    get(...args: unknown[]) {
      const a = getArgs(args);
      return core.request('GET', base + a.path, a.query, undefined, a.fn);
    },
    post(...args: unknown[]) {
      const a = bodyArgs(args);
      return core.request('POST', base + a.path, a.query, a.body, a.fn);
    },
    put(...args: unknown[]) {
      const a = bodyArgs(args);
      return core.request('PUT', base + a.path, a.query, a.body, a.fn);
    },
    del(...args: unknown[]) {
      const a = getArgs(args);
      return core.request('DELETE', base + a.path, a.query, undefined, a.fn);
    },
    exec(func: string, ...rest: unknown[]) {
      let i = 0;
      let sub = joinPath('', func);
      if (isPathArg(rest[i])) sub = joinPath(sub, rest[i++]);
      const body = typeof rest[i] === 'object' ? rest[i++] : undefined;
      return core.request('POST', base + sub, undefined, body, asCallback(rest[i]));
    },
    login(credentials: unknown, fn?: unknown) {
      return core.request('POST', base + '/login', undefined, credentials, asCallback(fn));
    },
    logout(fn?: unknown) {
      const done = asCallback(fn);
      const promise = core.request('POST', base + '/logout', undefined, undefined, undefined).then((result) => {
        core.setSessionToken(null);
        return result;
      });
      if (done) promise.then((result) => queueMicrotask(() => invoke(done, result, undefined)), (error: DpdError) => queueMicrotask(() => invoke(done, null, error)));
      return promise;
    },
    me(fn?: unknown) {
      return core.request('GET', base + '/me', undefined, undefined, asCallback(fn));
    },
    on(event: string, fn: Listener) {
      core.on(`${path}:${event}`, fn, false);
      return resource;
    },
    once(event: string, fn: Listener) {
      core.on(`${path}:${event}`, fn, true);
      return resource;
    },
    off(event: string, fn?: Listener) {
      core.off(`${path}:${event}`, fn);
      return resource;
    },
  } as Resource;
  return resource;
}
