/**
 * A users collection (`"type": "UserCollection"`): a collection whose documents can log in.
 * Deployd's routes and shapes (deployd-behaviour.md §3) with its holes closed:
 *   POST /users               sign up (the store's unique index decides a username race)
 *   POST /users/login         → {"path","id","uid"} + `sid` cookie + X-Session-Token
 *   *    /users/logout        ends the session everywhere (it lives in the store)
 *   GET  /users/me            the user, or 204
 * Passwords are scrypt hashes that never leave the server; only the user, root or a hook may change
 * a username or password (src/policy/write-policy.ts decides), and doing so ends that user's other
 * sessions.
 */
import type { UserAccounts } from '../auth/authenticator.js';
import type { LoginThrottle } from '../auth/login-throttle.js';
import { hashPassword, verifyPassword } from '../auth/passwords.js';
import type { Session, Sessions } from '../auth/sessions.js';
import { DeploydError, Errors, uniqueViolation, validationError } from '../errors.js';
import type { JsonObject } from '../hooks/protocol.js';
import { emptyUpdate } from '../core/update.js';
import { type Doc } from '../core/document.js';
import type { Answer } from '../pipeline/answer.js';
import type { RequestScope } from '../pipeline/request-scope.js';
import { cancelled } from '../pipeline/hook-outcome.js';
import { Publication } from '../pipeline/publication.js';
import { Collection, type CollectionDeps } from './collection.js';
import type { Credentials } from './credentials.js';
import type { CollectionSchema, UserSettings } from '../core/schema.js';

export interface UserCollectionDeps extends CollectionDeps {
  sessions: Sessions;
  throttle: LoginThrottle;
}

export interface LoginResult {
  token: string;
  session: Session;
  user: JsonObject;
}

export class UserCollection extends Collection implements UserAccounts {
  readonly settings: UserSettings;

  constructor(schema: CollectionSchema, private readonly userDeps: UserCollectionDeps) {
    super(schema, userDeps, new Passwords(schema, userDeps));
    this.settings = schema.users!;
  }

  /** The stored user without secret fields (how the authenticator reads a session's user). */
  async loadUser(uid: string): Promise<JsonObject | undefined> {
    const stored = await this.loadStored(uid);
    return stored ? (this.strip(stored) as JsonObject) : undefined;
  }

  /** `POST /users/login`: Deployd's answer, the session in a cookie and X-Session-Token. */
  async loginRoute(scope: RequestScope, body: Record<string, unknown>, address: string): Promise<Answer> {
    const { token, session } = await this.login(scope, body.username, body.password, address);
    return { body: { path: `/${this.name}`, id: token, uid: session.uid }, session: { token, maxAgeMs: this.settings.sessionIdleMs } };
  }

  /**
   * Checks the credentials (throttled), runs the Login event (which can refuse even a right
   * password) and starts a session.
   */
  async login(scope: RequestScope, username: unknown, password: unknown, address: string, byEmail = false): Promise<LoginResult> {
    const before = await this.step.run(scope, 'beforerequest', { data: {}, method: 'POST', requestEvent: 'LOGIN', query: {} });
    if (before) this.step.accept(scope, before);
    if (typeof username !== 'string' || typeof password !== 'string' || username === '' || password === '') {
      throw Errors.badRequest('username or password not specified');
    }
    // Counted before the password is checked, so concurrent guesses cannot outrun the limit.
    const attempt = await this.userDeps.throttle.begin(this.settings.throttle, username, address);
    let outcome: 'wrong' | 'right' | 'void' = 'void';
    try {
      let [stored] = await this.deps.store.find({ fields: { username: { $eq: username } } }, { limit: 1 });
      if (!stored && byEmail && this.schema.properties.get('email')?.type === 'string') {
        // go-deployd's /auth/login takes an email in place of the username.
        [stored] = await this.deps.store.find({ fields: { email: { $eq: username } } }, { limit: 1 });
      }
      const success = await verifyPassword(password, stored?.password);
      const user = stored ? this.strip(stored) : undefined;
      if (!success || !user) outcome = 'wrong';
      // Deployd: Login runs on success and failure; `me` is the user trying to log in.
      const loginScope: RequestScope = { ...scope, caller: { isRoot: false, me: (user as JsonObject | undefined) ?? null } };
      const result = await this.step.run(loginScope, 'login', { data: (user ?? {}) as JsonObject, method: 'POST', requestEvent: 'LOGIN', query: {}, success });
      if (result) {
        this.publication.queueHookResult(loginScope, result);
        if (result.cancel) throw cancelled(result); // a right password refused by the app is not a failure
        if (user) await this.saveLoginChanges(user, result.data as Record<string, unknown>);
      }
      if (!success || !user) throw Errors.badCredentials();
      const { token, session } = await this.userDeps.sessions.create(this.name, user.id, this.settings.sessionIdleMs);
      outcome = 'right';
      const fresh = this.strip((await this.loadStored(user.id)) ?? user) as JsonObject;
      // The user as they could GET themselves (their Get hook and hidden fields apply).
      const view = await this.readableBy({ isRoot: false, me: fresh }, fresh);
      return { token, session, user: view ?? { id: user.id } };
    } finally {
      if (outcome === 'right') await attempt.succeeded();
      else if (outcome === 'void') await attempt.release();
    }
  }

  /** `/users/logout` (any method): ends the caller's session on every instance and clears the cookie. */
  async logout(scope: RequestScope): Promise<Answer> {
    const before = await this.step.run(scope, 'beforerequest', { data: {}, method: 'POST', requestEvent: 'LOGOUT', query: {} });
    if (before) this.step.accept(scope, before);
    let count = 0;
    if (scope.session && (await this.userDeps.sessions.end(scope.session.id))) {
      count = 1;
      this.publication.queueSessionsEnded(scope, [scope.session.id]);
    }
    return { body: { count }, session: { clear: true } };
  }

  /** `GET /users/me`: the logged-in user through the Get event, or 204 when there is none (or Get cancels). */
  async me(scope: RequestScope): Promise<Answer> {
    const uid = this.sessionUser(scope);
    if (!uid) return { body: undefined, status: 204 };
    try {
      return await this.get(scope, uid, {}, 'json');
    } catch (err) {
      if (err instanceof DeploydError && err.statusCode < 500) return { body: undefined, status: 204 };
      throw err;
    }
  }

  /** The caller's user id when their session belongs to this collection. */
  private sessionUser(scope: RequestScope): string | undefined {
    return scope.session?.collection === this.name ? scope.session.uid : undefined;
  }

  // ---- writes -----------------------------------------------------------------------------------

  override async create(scope: RequestScope, body: Record<string, unknown>, query: Record<string, unknown> = {}): Promise<Answer> {
    try {
      return await super.create(scope, body, query);
    } catch (err) {
      throw inUse(err);
    }
  }

  override async update(scope: RequestScope, id: string, body: Record<string, unknown>, raw: Record<string, unknown>, source: 'url' | 'json'): Promise<Answer> {
    try {
      return await super.update(scope, id, body, raw, source);
    } catch (err) {
      throw inUse(err);
    }
  }

  /** Deployd: what Login changed on `this` is saved, without events, except the identity fields. */
  private async saveLoginChanges(user: Doc, data: Record<string, unknown>): Promise<void> {
    const set: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(data)) {
      if (key === 'id' || key === 'username' || this.secrets.includes(key) || !this.schema.properties.has(key)) continue;
      if (JSON.stringify(value) !== JSON.stringify(user[key])) set[key] = value;
    }
    if (Object.keys(set).length === 0) return;
    await this.deps.store.update(user.id, { fields: {} }, { ...emptyUpdate(), set });
  }
}

/**
 * A users collection's secret field: the password, stored as a scrypt hash. New credentials end the
 * user's other sessions, and a deleted user's sessions end with the delete.
 */
class Passwords implements Credentials {
  private readonly settings: UserSettings;
  private readonly publication: Publication;

  constructor(schema: CollectionSchema, private readonly deps: UserCollectionDeps) {
    this.settings = schema.users!;
    this.publication = new Publication(schema.name, deps);
  }

  /** Deployd's messages: a missing, empty or non-string password "is required". */
  check(input: Record<string, unknown>, creating: boolean): Record<string, string> {
    const password = input.password;
    if (password === undefined && !creating) return {};
    if (typeof password !== 'string' || password === '') return { password: 'is required' };
    if (password.length < this.settings.passwordMinLength) return { password: `must be at least ${this.settings.passwordMinLength} characters` };
    if (password.length > 1024) return { password: 'must be at most 1024 characters' };
    return {};
  }

  /** The password's hash, from whatever form the body set it in (who may set it is the write policy's call). */
  async stored(input: Record<string, unknown>): Promise<Record<string, unknown>> {
    return typeof input.password === 'string' ? { password: await hashPassword(input.password) } : {};
  }

  async updated(scope: RequestScope, before: Doc, after: Doc): Promise<void> {
    if (before.username === after.username && before.password === after.password) return;
    // New credentials end every other session of this user (the caller's own stays).
    const ended = await this.deps.sessions.endAllOf(after.id, scope.session?.id);
    this.publication.queueSessionsEnded(scope, ended);
  }

  async removed(scope: RequestScope, removed: Doc[]): Promise<void> {
    const ended: string[] = [];
    for (const user of removed) ended.push(...(await this.deps.sessions.endAllOf(user.id)));
    this.publication.queueSessionsEnded(scope, ended);
  }
}

/** Deployd's answer for a taken username: 400 {"errors":{"username":"is already in use"}}. */
function inUse(err: unknown): unknown {
  if (err instanceof DeploydError && err.code === uniqueViolation.code && err.errors?.username) {
    return validationError({ username: 'is already in use' });
  }
  return err;
}
