/**
 * Who is calling, for HTTP requests and WebSocket connections alike:
 *   1. root: the master key in `X-Master-Key` (or Deployd's `dpd-ssh-key`; with `--dev`, any
 *      `dpd-ssh-key` value, as Deployd's development mode). A wrong key is a 401, never anonymous.
 *   2. a user: a session token from `Authorization: Bearer`, `X-Session-Token`, the `sid` cookie
 *      (or, on /ws, `?token=`). An unknown or ended token is anonymous, flagged `invalidated`.
 *   3. anonymous.
 * `me` is the user's stored document without secret fields, loaded on every request, so a change to
 * the user (or its deletion) applies at once.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { parseCookie } from 'cookie';
import type { Caller, JsonObject } from '../hooks/protocol.js';
import { Errors } from '../errors.js';
import type { MasterKey } from './master-key.js';
import { ROOT_SESSIONS, type Sessions } from './sessions.js';

/** A users collection, as login sessions need it. */
export interface UserAccounts {
  /** The stored user without secret fields, or undefined when there is none with this id. */
  loadUser(uid: string): Promise<JsonObject | undefined>;
}

/** Finds a session's users collection by name (the registry, injected: auth sits below collections). */
export interface UserDirectory {
  accounts(collection: string): UserAccounts | undefined;
}

export interface SessionRef {
  /** Hashed session id (never the token). */
  id: string;
  uid: string;
  collection: string;
  rooms: string[];
}

export interface RequestIdentity {
  caller: Caller;
  session?: SessionRef;
  /** A session token was sent but is not (or no longer) valid: Deployd's `X-Session-Invalidated`. */
  invalidated?: boolean;
}

export const ANONYMOUS: Caller = Object.freeze({ isRoot: false, me: null });
/** Root via the master key; hooks see it as `me` (go-deployd), so `me.username` works for root. */
export const ROOT: Caller = Object.freeze({ isRoot: true, me: Object.freeze({ id: 'root', username: 'root', isRoot: true }) });

export class Authenticator {
  constructor(
    private readonly key: MasterKey,
    private readonly dev: boolean,
    private readonly sessions: Sessions,
    private readonly users: UserDirectory,
  ) {}

  /** From request headers; `token` is an extra candidate (the WebSocket's `?token=`). */
  async identify(headers: IncomingHttpHeaders, token?: string): Promise<RequestIdentity> {
    const masterKey = header(headers, 'x-master-key');
    const sshKey = header(headers, 'dpd-ssh-key');
    if (masterKey !== undefined || sshKey !== undefined) {
      if (this.dev && sshKey !== undefined) return { caller: ROOT };
      if (this.key.matches(masterKey ?? sshKey ?? '')) return { caller: ROOT };
      throw Errors.unauthorized('invalid master key');
    }
    const candidate = bearer(headers) ?? header(headers, 'x-session-token') ?? token ?? cookieSid(headers);
    if (candidate === undefined || candidate === '') return { caller: ANONYMOUS };
    return (await this.fromSession(candidate)) ?? { caller: ANONYMOUS, invalidated: true };
  }

  /** From a WebSocket `{"type":"auth","token"}`: the master key or a session token; undefined when neither. */
  async fromToken(token: string): Promise<RequestIdentity | undefined> {
    if (this.key.matches(token)) return { caller: ROOT };
    return this.fromSession(token);
  }

  private async fromSession(token: string): Promise<RequestIdentity | undefined> {
    const session = await this.sessions.resolve(token);
    if (!session) return undefined;
    if (session.collection === ROOT_SESSIONS) return { caller: ROOT }; // a dashboard login (src/admin)
    const users = this.users.accounts(session.collection);
    if (!users) return undefined;
    const me = await users.loadUser(session.uid);
    if (!me) {
      await this.sessions.end(session.id); // the user was deleted
      return undefined;
    }
    return {
      caller: { isRoot: false, me },
      session: { id: session.id, uid: session.uid, collection: session.collection, rooms: session.rooms },
    };
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function bearer(headers: IncomingHttpHeaders): string | undefined {
  const value = header(headers, 'authorization');
  const match = value ? /^Bearer\s+(\S+)\s*$/i.exec(value) : null;
  return match ? match[1] : undefined;
}

function cookieSid(headers: IncomingHttpHeaders): string | undefined {
  const value = header(headers, 'cookie');
  if (!value) return undefined;
  try {
    return parseCookie(value).sid;
  } catch {
    return undefined;
  }
}
