/**
 * Users and sessions as a client sees them (issue #7, spec/users-api.md), black box: real
 * `bin/deployd` processes, real HTTP. Sign-up, login (Deployd's `/users/login` and go-deployd's
 * `/auth/login`), the session cookie and headers, the three ways to present a session, logout,
 * `/users/me` and `/auth/me`, sessions kept in the store (a restart, two instances on one app
 * folder), idle expiry, password and username changes, login throttling, `login.js`, `me` and
 * `isMe` in hooks, and one test per closed hole of Deployd (§7.2 #1, #2, #8, #15) and go-deployd (§5).
 *
 * Servers (started in parallel, one hook worker each):
 *   main      a users collection (per-address throttle raised so failures in other tests never add up)
 *   hooks     users with login.js, collections whose hooks report me / isMe / isRoot
 *   short     sessionIdleDays 0.00002 (≈ 1.7 s), passwordMinLength 4, a 3 s throttle window of 3 failures
 *   throttle  the default throttle (5 per username, 20 per address, 15 minutes)
 *   sharedA / sharedB  two instances on one app folder (one database)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { makeApp, startServer, type ApiResponse, type TestServer } from './helpers/server.js';
import {
  assertError, bearer, cookie, hasKeyDeep, login, newUser, requestFrom, sessionHeader, sidCookie, signup, sleep,
} from './helpers/users.js';

const ID = /^[0-9a-f]{16}$/;
const q = (query: unknown) => `?${encodeURIComponent(JSON.stringify(query))}`;
const ARGS = { args: ['--hook-workers', '1'] };

const USERS = {
  type: 'UserCollection',
  properties: { email: { type: 'string' }, team: { type: 'string' }, role: { type: 'string' } },
};

const MAIN_APP = {
  users: { ...USERS, loginThrottle: { maxFailuresPerUser: 5, maxFailuresPerAddress: 100_000, windowSeconds: 900 } },
  things: { type: 'Collection', properties: { title: { type: 'string' } } },
};

const HOOKS_APP = {
  users: { ...USERS, loginThrottle: { maxFailuresPerUser: 5, maxFailuresPerAddress: 100_000, windowSeconds: 900 } },
  echo: {
    type: 'Collection',
    properties: {
      title: { type: 'string' }, hooked: { type: 'boolean' }, meName: { type: 'string' }, meId: { type: 'string' },
      isRoot: { type: 'boolean' }, isMeSelf: { type: 'boolean' }, isMeOther: { type: 'boolean' }, meHasPassword: { type: 'boolean' },
      target: { type: 'string' }, newPassword: { type: 'string' }, status: { type: 'number' },
    },
  },
  private: { type: 'Collection', properties: { title: { type: 'string' }, author: { type: 'string' } } },
  notes: { type: 'Collection', properties: { title: { type: 'string' }, ownerId: { type: 'string' } } },
  things: { type: 'Collection', properties: { title: { type: 'string' } }, rules: { delete: 'root' } },
  loginlog: {
    type: 'Collection',
    properties: {
      success: { type: 'boolean' }, meName: { type: 'string' }, thisName: { type: 'string' },
      meHasPassword: { type: 'boolean' }, thisHasPassword: { type: 'boolean' }, thisKeys: { type: 'number' },
    },
  },
};

const HOOK_FILES: Record<string, string> = {
  'resources/users/login.js': `
if (this.username === 'banned-bert') cancel('banned', 403);
dpd.loginlog.post({
  success: success,
  meName: me ? me.username : null,
  thisName: this.username || null,
  meHasPassword: !!me && Object.prototype.hasOwnProperty.call(me, 'password'),
  thisHasPassword: Object.prototype.hasOwnProperty.call(this, 'password'),
  thisKeys: Object.keys(this).length
});`,
  'resources/echo/post.js': `
var self = this;
this.hooked = true;
this.meName = me ? me.username : null;
this.meId = me ? me.id : null;
this.isRoot = isRoot;
this.isMeSelf = me ? isMe(me.id) : false;
this.isMeOther = isMe('0000000000000000');
this.meHasPassword = !!me && Object.prototype.hasOwnProperty.call(me, 'password');
if (this.title === 'reset') {
  dpd.users.put(this.target, { password: this.newPassword }, function (user, err) {
    self.status = err ? err.status : 200;
    self.newPassword = null;
  });
}`,
  'resources/private/post.js': `
if (!me) cancel("login first", 401);
this.author = me.username;`,
  'resources/notes/get.js': `
this.viewer = me ? me.username : null;
this.mine = isMe(this.ownerId);
this.viewerHasPassword = !!me && Object.prototype.hasOwnProperty.call(me, 'password');`,
};

let main: TestServer;
let hooks: TestServer;
let short: TestServer;
let throttle: TestServer;
let sharedA: TestServer;
let sharedB: TestServer;

/** Every server this file started, so that `after` stops them even when another failed to start. */
const started: TestServer[] = [];
const start = async (...args: Parameters<typeof startServer>): Promise<TestServer> => {
  const server = await startServer(...args);
  started.push(server);
  return server;
};

before(async () => {
  const shared = makeApp({ users: USERS });
  const starts = [
    start(makeApp(MAIN_APP), ARGS),
    start(makeApp(HOOKS_APP, HOOK_FILES), ARGS),
    start(makeApp({
      users: { ...USERS, sessionIdleDays: 0.00002, passwordMinLength: 4, loginThrottle: { maxFailuresPerUser: 3, maxFailuresPerAddress: 100_000, windowSeconds: 3 } },
    }), ARGS),
    start(makeApp({ users: USERS }), ARGS),
    // Two instances on one app folder: the second starts once the first has created the database.
    (async () => {
      const a = await start(shared, ARGS);
      const b = await start(shared, { ...ARGS, masterKey: a.masterKey });
      return [a, b] as [TestServer, TestServer];
    })(),
  ] as const;
  // Wait for every start to end (started or failed) before failing, so `after` sees them all.
  await Promise.allSettled(starts);
  [main, hooks, short, throttle, [sharedA, sharedB]] = await Promise.all(starts);
}, { timeout: 120_000 });

after(async () => {
  // What started, and what a test put in its place (the restart test starts a new sharedA).
  const all = new Set([...started, main, hooks, short, throttle, sharedA, sharedB].filter(Boolean));
  await Promise.all([...all].map((s) => s.stop()));
}, { timeout: 60_000 });

/** `password` appears nowhere in the answer (any depth). */
function assertNoPassword(res: ApiResponse, what: string): void {
  assert.equal(hasKeyDeep(res.body, 'password'), false, `${what} carries a password: ${res.text}`);
  assert.doesNotMatch(res.text, /"password"/, `${what}: ${res.text}`);
}

/** The user as /users/me sees it with these headers (undefined: anonymous, 204). */
async function me(server: TestServer, headers: Record<string, string>): Promise<Record<string, any> | undefined> {
  const res = await server.get('/users/me', headers);
  if (res.status === 204) return undefined;
  assert.equal(res.status, 200, `/users/me: ${res.status} ${res.text}`);
  return res.body;
}

// ---- sign-up ----------------------------------------------------------------------------------------

describe('sign-up: POST /users', () => {
  it('answers 200 with the user, its id and properties, without the password', async () => {
    const res = await main.post('/users', { username: 'alice', password: 'alice-password', team: 'red' });
    assert.equal(res.status, 200, res.text);
    assert.match(res.body.id, ID);
    assert.deepEqual(res.body, { id: res.body.id, username: 'alice', team: 'red' });
    assertNoPassword(res, 'the sign-up answer');
  });

  it('a taken username is 400 {"errors":{"username":"is already in use"}} (Deployd)', async () => {
    await signup(main, 'taken', 'taken-password');
    const res = await main.post('/users', { username: 'taken', password: 'another-password' });
    assertError(res, 400, 'DPD_ERR_VALIDATION');
    assert.deepEqual(res.body.errors, { username: 'is already in use' });
  });

  it('a missing password is 400 {"errors":{"password":"is required"}}', async () => {
    const res = await main.post('/users', { username: 'nopass' });
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(res.body.errors, { password: 'is required' });
  });

  it('a password that is not a string "is required", as in Deployd', async () => {
    for (const password of [{}, [], true, '']) {
      const res = await main.post('/users', { username: 'oddpass', password });
      assertError(res, 400, 'DPD_ERR_VALIDATION');
      assert.deepEqual(res.body.errors, { password: 'is required' }, JSON.stringify(password));
    }
  });

  it('every missing required field is reported at once', async () => {
    const res = await main.post('/users', {});
    assertError(res, 400, 'DPD_ERR_VALIDATION');
    assert.deepEqual(res.body.errors, { username: 'is required', password: 'is required' });
  });

  it('a POST whose body names a user\'s id updates that user (Deployd), under the same policy', async () => {
    const pia = await newUser(main, 'pia', 'pia-password', { team: 'red' });
    const res = await main.post('/users', { id: pia.uid, team: 'green' }, pia.headers);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual([res.body.id, res.body.team], [pia.uid, 'green']);
    assert.equal((await main.get(`/users${q({ username: 'pia' })}`, main.root)).body.length, 1, 'no second user');
  });

  it('a missing username is 400 {"errors":{"username":"is required"}}', async () => {
    const res = await main.post('/users', { password: 'some-password' });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.errors?.username, 'is required', res.text);
  });

  it('a password shorter than 8 characters is 400 "must be at least 8 characters"; 8 is enough', async () => {
    const res = await main.post('/users', { username: 'shorty', password: '1234567' });
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(res.body.errors, { password: 'must be at least 8 characters' });
    await signup(main, 'shorty', '12345678');
    await login(main, 'shorty', '12345678');
  });

  it('passwordMinLength in the users config changes the minimum', async () => {
    const res = await short.post('/users', { username: 'tiny', password: 'abc' });
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(res.body.errors, { password: 'must be at least 4 characters' });
    await signup(short, 'tiny', 'abcd');
  });

  it('Deployd §7.2 #8 (username race): 20 concurrent sign-ups with one username give exactly one 200', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => main.post('/users', { username: 'racer', password: `racer-password-${i}` })));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses.join(',')}`);
    for (const r of results.filter((x) => x.status !== 200)) {
      assertError(r, 400, 'DPD_ERR_VALIDATION');
      assert.deepEqual(r.body.errors, { username: 'is already in use' });
    }
    const stored = await main.get(`/users${q({ username: 'racer' })}`, main.root);
    assert.equal(stored.status, 200, stored.text);
    assert.equal(stored.body.length, 1, 'one stored user');
    // The one that won is the one whose password works.
    const winner = results.findIndex((r) => r.status === 200);
    await login(main, 'racer', `racer-password-${winner}`);
  });
});

// ---- login ------------------------------------------------------------------------------------------

describe('login: POST /users/login', () => {
  let lou: Record<string, any>;
  before(async () => {
    lou = await signup(main, 'lou', 'lou-password');
  }, { timeout: 120_000 });

  it('answers 200 {"path":"/users","id":<token>,"uid":<user id>} and X-Session-Token: <token>', async () => {
    const res = await main.post('/users/login', { username: 'lou', password: 'lou-password' });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['id', 'path', 'uid']);
    assert.equal(res.body.path, '/users');
    assert.equal(res.body.uid, lou.id);
    assert.equal(typeof res.body.id, 'string');
    assert.ok(res.body.id.length >= 32, `a long random token: ${res.body.id}`);
    assert.equal(res.headers.get('x-session-token'), res.body.id);
    // Two logins are two sessions.
    const again = await main.post('/users/login', { username: 'lou', password: 'lou-password' });
    assert.notEqual(again.body.id, res.body.id);
  });

  it('Deployd §7.2 #15 (cookie flags): Set-Cookie sid=<token>; Path=/; HttpOnly; SameSite=Lax, no Secure over plain HTTP', async () => {
    const res = await main.post('/users/login', { username: 'lou', password: 'lou-password' });
    const sid = sidCookie(res);
    assert.ok(sid, `a sid cookie: ${res.headers.getSetCookie().join(' | ')}`);
    assert.equal(sid.value, res.body.id);
    assert.equal(sid.attributes.get('path'), '/');
    assert.equal(sid.attributes.get('httponly'), true, sid.line);
    assert.equal(String(sid.attributes.get('samesite')).toLowerCase(), 'lax', sid.line);
    assert.equal(sid.attributes.has('secure'), false, sid.line);
  });

  it('X-Forwarded-Proto: https is not trusted: still no Secure flag', async () => {
    const res = await main.post('/users/login', { username: 'lou', password: 'lou-password' }, { 'x-forwarded-proto': 'https' });
    assert.equal(res.status, 200, res.text);
    const sid = sidCookie(res);
    assert.ok(sid, 'a sid cookie');
    assert.equal(sid.attributes.has('secure'), false, sid.line);
  });

  it('behind a TLS proxy (--trust-proxy), X-Forwarded-Proto: https makes the cookie Secure; plain http does not', async () => {
    const proxied = await startServer(makeApp({ users: USERS }), { args: ['--hook-workers', '1', '--trust-proxy'] });
    try {
      assert.equal((await proxied.post('/users', { username: 'tls', password: 'tls-password' })).status, 200);
      const viaTls = sidCookie(await proxied.post('/users/login', { username: 'tls', password: 'tls-password' }, { 'x-forwarded-proto': 'https' }));
      assert.ok(viaTls, 'a sid cookie');
      assert.equal(viaTls.attributes.has('secure'), true, viaTls.line);
      assert.equal(viaTls.attributes.get('samesite'), 'Lax', viaTls.line);
      const plain = sidCookie(await proxied.post('/users/login', { username: 'tls', password: 'tls-password' }));
      assert.ok(plain, 'a sid cookie');
      assert.equal(plain.attributes.has('secure'), false, plain.line);
    } finally {
      await proxied.stop();
    }
  });

  it('missing or non-string username/password is 400 "username or password not specified"', async () => {
    for (const body of [{}, { username: 'lou' }, { password: 'lou-password' }, { username: 1, password: 'lou-password' },
      { username: 'lou', password: { $gt: '' } }, { username: ['lou'], password: 'lou-password' }]) {
      const res = await main.post('/users/login', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
      assert.equal(res.body.message, 'username or password not specified', JSON.stringify(body));
    }
  });

  it('a wrong password and an unknown user both answer 401 "bad credentials"', async () => {
    await signup(main, 'wendy', 'wendy-password');
    const wrong = await main.post('/users/login', { username: 'wendy', password: 'not-the-password' });
    const unknown = await main.post('/users/login', { username: 'nobody-at-all', password: 'wendy-password' });
    for (const res of [wrong, unknown]) {
      assertError(res, 401, undefined, 'bad credentials');
      assert.equal(sidCookie(res), undefined, 'no session cookie');
      assert.equal(res.headers.get('x-session-token'), null);
    }
    assert.deepEqual(wrong.body, unknown.body, 'the same answer');
  });

  it('Deployd §7.2 #15 (constant-time compare): a wrong password of the same length and of another length are both 401 "bad credentials"', async () => {
    await signup(main, 'connie', 'connie-pass-1');
    const sameLength = await main.post('/users/login', { username: 'connie', password: 'connie-pass-2' });
    const shorter = await main.post('/users/login', { username: 'connie', password: 'c' });
    const longer = await main.post('/users/login', { username: 'connie', password: 'connie-pass-1'.repeat(20) });
    for (const res of [sameLength, shorter, longer]) assertError(res, 401, undefined, 'bad credentials');
    await login(main, 'connie', 'connie-pass-1');
  });
});

// ---- authenticating requests ------------------------------------------------------------------------

describe('presenting a session: Bearer, X-Session-Token, cookie', () => {
  let ann: Awaited<ReturnType<typeof newUser>>;
  let ben: Awaited<ReturnType<typeof newUser>>;
  before(async () => {
    ann = await newUser(main, 'ann', 'ann-password', { team: 'a' });
    ben = await newUser(main, 'ben', 'ben-password', { team: 'b' });
  }, { timeout: 120_000 });

  it('Authorization: Bearer <token>, X-Session-Token: <token> and the cookie sid=<token> each authenticate', async () => {
    for (const headers of [bearer(ann.token), sessionHeader(ann.token), cookie(ann.token)]) {
      const res = await main.get('/users/me', headers);
      assert.equal(res.status, 200, `${JSON.stringify(headers)}: ${res.status} ${res.text}`);
      assert.deepEqual(res.body, ann.user);
      assert.equal(res.headers.get('x-session-invalidated'), null);
    }
  });

  it('first match wins: X-Master-Key, then Bearer, then X-Session-Token, then the cookie', async () => {
    assert.equal((await me(main, { ...bearer(ann.token), ...cookie(ben.token) }))?.username, 'ann');
    assert.equal((await me(main, { ...sessionHeader(ann.token), ...cookie(ben.token) }))?.username, 'ann');
    assert.equal((await me(main, { ...bearer(ann.token), ...sessionHeader(ben.token) }))?.username, 'ann');
    // The master key makes root: a root-only bulk delete passes even with a user session beside it.
    await main.post('/things', { title: 'first-match' });
    const bulk = await main.del(`/things${q({ title: 'first-match' })}`, { ...main.root, ...bearer(ann.token) });
    assert.equal(bulk.status, 200, bulk.text);
    assert.deepEqual(bulk.body, { count: 1 });
  });

  it('GET /users/me without a session is 204 with an empty body', async () => {
    const res = await main.get('/users/me');
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    assert.equal(res.headers.get('x-session-invalidated'), null, 'no token was sent, so none was invalidated');
  });

  it('an unknown token is anonymous and the response says X-Session-Invalidated: true', async () => {
    for (const headers of [bearer('0'.repeat(64)), sessionHeader('not-a-session'), cookie('f'.repeat(40))]) {
      const res = await main.get('/users/me', headers);
      assert.equal(res.status, 204, `${JSON.stringify(headers)}: ${res.text}`);
      assert.equal(res.text, '');
      assert.equal(res.headers.get('x-session-invalidated'), 'true', JSON.stringify(headers));
    }
    // Anonymous, not refused: an open collection still answers.
    const list = await main.get('/things', bearer('0'.repeat(64)));
    assert.equal(list.status, 200, list.text);
    assert.equal(list.headers.get('x-session-invalidated'), 'true');
  });

  it('GET /users/me answers the user without the password', async () => {
    const res = await main.get('/users/me', bearer(ben.token));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { id: ben.uid, username: 'ben', team: 'b' });
    assertNoPassword(res, '/users/me');
  });
});

// ---- logout -----------------------------------------------------------------------------------------

describe('logout: /users/logout', () => {
  it('answers {"count":1}, clears the cookie, and the token stops working at once', async () => {
    const { token } = await newUser(main, 'leo', 'leo-password');
    const res = await main.post('/users/logout', {}, bearer(token));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { count: 1 });
    const sid = sidCookie(res);
    assert.ok(sid, `the cookie is cleared: ${res.headers.getSetCookie().join(' | ')}`);
    assert.equal(sid.value, '');
    assert.equal(sid.attributes.get('max-age'), '0', sid.line);
    const after = await main.get('/users/me', bearer(token));
    assert.equal(after.status, 204);
    assert.equal(after.headers.get('x-session-invalidated'), 'true');
  });

  it('works with any method (GET, DELETE) and with the cookie', async () => {
    const a = await login(main, 'leo', 'leo-password');
    const b = await login(main, 'leo', 'leo-password');
    const viaGet = await main.get('/users/logout', cookie(a.token));
    assert.equal(viaGet.status, 200, viaGet.text);
    assert.deepEqual(viaGet.body, { count: 1 });
    const viaDelete = await main.del('/users/logout', sessionHeader(b.token));
    assert.equal(viaDelete.status, 200, viaDelete.text);
    assert.deepEqual(viaDelete.body, { count: 1 });
    assert.equal(await me(main, cookie(a.token)), undefined);
    assert.equal(await me(main, sessionHeader(b.token)), undefined);
  });

  it('without a session answers {"count":0}', async () => {
    const res = await main.post('/users/logout', {});
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { count: 0 });
  });

  it('ends only that session: another session of the same user keeps working', async () => {
    const a = await login(main, 'leo', 'leo-password');
    const b = await login(main, 'leo', 'leo-password');
    assert.deepEqual((await main.post('/users/logout', {}, bearer(a.token))).body, { count: 1 });
    assert.equal((await me(main, bearer(b.token)))?.username, 'leo');
  });
});

// ---- go-deployd's /auth endpoints -----------------------------------------------------------------

describe('go-deployd: POST /auth/login and GET /auth/me', () => {
  let gus: Record<string, any>;
  before(async () => {
    gus = await signup(main, 'gus', 'gus-password', { email: 'gus@example.com' });
  }, { timeout: 120_000 });

  it('POST /auth/login {username,password} answers {token, expiresAt, user} without the password', async () => {
    const res = await main.post('/auth/login', { username: 'gus', password: 'gus-password' });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['expiresAt', 'token', 'user']);
    assert.equal(typeof res.body.token, 'string');
    assert.deepEqual(res.body.user, gus);
    assertNoPassword(res, '/auth/login');
    const expires = typeof res.body.expiresAt === 'number'
      ? (res.body.expiresAt < 1e12 ? res.body.expiresAt * 1000 : res.body.expiresAt)
      : Date.parse(res.body.expiresAt);
    assert.ok(Number.isFinite(expires) && expires > Date.now(), `expiresAt in the future: ${res.body.expiresAt}`);
    // The same sessions as /users/login.
    assert.equal((await me(main, bearer(res.body.token)))?.username, 'gus');
  });

  it('POST /auth/login {email,password} logs in by email', async () => {
    const res = await main.post('/auth/login', { email: 'gus@example.com', password: 'gus-password' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.user.id, gus.id);
  });

  it('a wrong password or unknown user is 401 "bad credentials"', async () => {
    assertError(await main.post('/auth/login', { username: 'gus', password: 'wrong-password' }), 401, undefined, 'bad credentials');
    assertError(await main.post('/auth/login', { email: 'nobody@example.com', password: 'gus-password' }), 401, undefined, 'bad credentials');
  });

  it('GET /auth/me answers the user (no password) with a session from either login, 401 without', async () => {
    const viaAuth = (await main.post('/auth/login', { username: 'gus', password: 'gus-password' })).body.token;
    const viaUsers = (await login(main, 'gus', 'gus-password')).token;
    for (const token of [viaAuth, viaUsers]) {
      const res = await main.get('/auth/me', bearer(token));
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, gus);
      assertNoPassword(res, '/auth/me');
    }
    assert.equal((await main.get('/auth/me')).status, 401);
    assert.equal((await main.get('/auth/me', bearer('0'.repeat(64)))).status, 401);
    // A token from /auth/login is ended by /users/logout.
    await main.post('/users/logout', {}, bearer(viaAuth));
    assert.equal((await main.get('/auth/me', bearer(viaAuth))).status, 401);
  });
});

// ---- the password never leaves, never filters ----------------------------------------------------

describe('the password is never returned', () => {
  let pat: Awaited<ReturnType<typeof newUser>>;
  before(async () => {
    pat = await newUser(main, 'pat', 'pat-password', { team: 'p' });
  }, { timeout: 120_000 });

  it('not in a list, a get, a PUT answer, /users/me, /auth/me — for users and for root', async () => {
    const answers: Array<[string, ApiResponse]> = [
      ['GET /users (anonymous)', await main.get('/users')],
      ['GET /users (root)', await main.get('/users', main.root)],
      ['GET /users/<id>', await main.get(`/users/${pat.uid}`, pat.headers)],
      ['GET /users/<id> (root)', await main.get(`/users/${pat.uid}`, main.root)],
      ['POST /users/query (root)', await main.post('/users/query', { query: {} }, main.root)],
      ['PUT /users/<id>', await main.put(`/users/${pat.uid}`, { team: 'q' }, pat.headers)],
      ['PUT /users/<id> (root)', await main.put(`/users/${pat.uid}`, { team: 'p' }, main.root)],
      ['GET /users/me', await main.get('/users/me', pat.headers)],
      ['GET /auth/me', await main.get('/auth/me', pat.headers)],
    ];
    for (const [what, res] of answers) {
      assert.equal(res.status, 200, `${what}: ${res.text}`);
      assertNoPassword(res, what);
    }
    const listed = answers[1][1].body.find((u: { id: string }) => u.id === pat.uid);
    assert.deepEqual(listed, { id: pat.uid, username: 'pat', team: 'p' });
  });

  it('$fields={"password":1} does not return it, even for root', async () => {
    for (const fields of [{ password: 1 }, { username: 1, password: 1 }]) {
      const res = await main.get(`/users?$fields=${encodeURIComponent(JSON.stringify(fields))}`, main.root);
      assert.equal(res.status, 200, res.text);
      assert.ok(res.body.length > 0);
      assertNoPassword(res, `$fields=${JSON.stringify(fields)}`);
    }
  });

  it('Deployd §7.2 #2 (hash oracle): $regex on password is 400 DPD_ERR_BAD_QUERY, for anyone and for root', async () => {
    const probe = q({ username: 'pat', password: { $regex: '^[0-9a-f]' } });
    for (const headers of [{}, pat.headers, main.root]) {
      const res = await main.get(`/users${probe}`, headers);
      assertError(res, 400, 'DPD_ERR_BAD_QUERY');
      assertNoPassword(res, 'the error');
    }
  });

  it('Deployd §7.2 #2: ... also inside $or / $and branches, as a plain value, and on /users/count', async () => {
    for (const query of [
      { $or: [{ username: 'nobody' }, { password: { $regex: '^a' } }] },
      { $and: [{ username: 'pat' }, { $or: [{ password: { $exists: true } }] }] },
      { password: 'pat-password' },
      { 'password.length': { $gt: 0 } },
    ]) {
      assertError(await main.get(`/users${q(query)}`, main.root), 400, 'DPD_ERR_BAD_QUERY');
      assertError(await main.get(`/users/count${q(query)}`, main.root), 400, 'DPD_ERR_BAD_QUERY');
    }
    assertError(await main.get('/users?password=pat-password'), 400, 'DPD_ERR_BAD_QUERY');
  });

  it('Deployd §7.2 #2: ... also through POST /users/query', async () => {
    for (const body of [
      { query: { password: { $regex: '^' } } },
      { query: { $or: [{ password: { $regex: '^' } }] } },
      { query: {}, options: { $sort: { password: 1 } } },
    ]) {
      assertError(await main.post('/users/query', body, main.root), 400, 'DPD_ERR_BAD_QUERY');
      assertError(await main.post('/users/query', body), 400, 'DPD_ERR_BAD_QUERY');
    }
  });

  it('Deployd §7.2 #2: ... and sorting on password ($sort) is 400 DPD_ERR_BAD_QUERY', async () => {
    assertError(await main.get(`/users?$sort=${encodeURIComponent(JSON.stringify({ password: 1 }))}`, main.root), 400, 'DPD_ERR_BAD_QUERY');
    assertError(await main.get(`/users${q({ $sort: { password: -1 } })}`), 400, 'DPD_ERR_BAD_QUERY');
    assertError(await main.get('/users?$sort[password]=1'), 400, 'DPD_ERR_BAD_QUERY');
    assertError(await main.get('/users?password[$regex]=%5Ea'), 400, 'DPD_ERR_BAD_QUERY');
  });
});

// ---- changing username or password ----------------------------------------------------------------

describe('changing username or password', () => {
  it('Deployd §7.2 #1 (takeover): an id in a PUT body does not make the caller "self"', async () => {
    const victim = await newUser(main, 'victim', 'victim-password');
    const mallory = await newUser(main, 'mallory', 'mallory-password');
    const takeover = { id: victim.uid, username: 'victim', password: 'pwned-password' };
    // Anonymous, with the id in the path and the body, or only in the body; then another logged-in
    // user. As in Deployd, the credentials are dropped silently (200): never applied.
    const dropped = async (res: ApiResponse) => {
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.username, 'victim');
    };
    await dropped(await main.put(`/users/${victim.uid}`, takeover));
    await dropped(await main.put('/users', takeover));
    await dropped(await main.post('/users', takeover));
    await dropped(await main.put(`/users/${victim.uid}`, takeover, mallory.headers));
    await dropped(await main.put('/users', takeover, mallory.headers));
    await dropped(await main.put(`/users/${victim.uid}`, { id: victim.uid, username: 'renamed-victim' }, mallory.headers));
    // Mallory's own id in the path, the victim's in the body: only Mallory's own account is in play.
    const own = await main.put(`/users/${mallory.uid}`, { id: victim.uid, team: 'own' }, mallory.headers);
    assert.equal(own.status, 200, own.text);
    assert.equal(own.body.id, mallory.uid);
    // Nothing changed.
    assertError(await main.post('/users/login', { username: 'victim', password: 'pwned-password' }), 401, undefined, 'bad credentials');
    await login(main, 'victim', 'victim-password');
    assert.equal((await me(main, victim.headers))?.username, 'victim');
  });

  it('the user changes its own password: the new one logs in, the old does not; other sessions end, the current one stays', async () => {
    const sam = await newUser(main, 'sam', 'sam-password-1');
    const other = await login(main, 'sam', 'sam-password-1');
    const third = await login(main, 'sam', 'sam-password-1');
    const res = await main.put(`/users/${sam.uid}`, { password: 'sam-password-2' }, sam.headers);
    assert.equal(res.status, 200, res.text);
    assertNoPassword(res, 'the PUT answer');
    assert.equal((await me(main, sam.headers))?.username, 'sam', 'the session that changed it keeps working');
    for (const token of [other.token, third.token]) {
      const ended = await main.get('/users/me', bearer(token));
      assert.equal(ended.status, 204, 'another session of the user ended');
      assert.equal(ended.headers.get('x-session-invalidated'), 'true');
    }
    assertError(await main.post('/users/login', { username: 'sam', password: 'sam-password-1' }), 401, undefined, 'bad credentials');
    await login(main, 'sam', 'sam-password-2');
  });

  it('the user changes its own username: other sessions end, the current one stays, the new name logs in', async () => {
    const uma = await newUser(main, 'uma', 'uma-password');
    const other = await login(main, 'uma', 'uma-password');
    const res = await main.put(`/users/${uma.uid}`, { username: 'uma2' }, uma.headers);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.username, 'uma2');
    assert.equal((await me(main, uma.headers))?.username, 'uma2');
    assert.equal(await me(main, bearer(other.token)), undefined, 'the other session ended');
    await login(main, 'uma2', 'uma-password');
    assertError(await main.post('/users/login', { username: 'uma', password: 'uma-password' }), 401, undefined, 'bad credentials');
  });

  it('a new password is checked for its minimum length', async () => {
    const ivy = await newUser(main, 'ivy', 'ivy-password');
    const res = await main.put(`/users/${ivy.uid}`, { password: 'short' }, ivy.headers);
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(res.body.errors, { password: 'must be at least 8 characters' });
    await login(main, 'ivy', 'ivy-password');
  });

  it('renaming to a taken username is 400 "is already in use" and changes nothing', async () => {
    const nia = await newUser(main, 'nia', 'nia-password');
    await signup(main, 'nia-taken', 'nia-taken-password');
    const res = await main.put(`/users/${nia.uid}`, { username: 'nia-taken' }, nia.headers);
    assertError(res, 400, 'DPD_ERR_VALIDATION');
    assert.deepEqual(res.body.errors, { username: 'is already in use' });
    assert.equal((await me(main, nia.headers))?.username, 'nia');
    await login(main, 'nia-taken', 'nia-taken-password');
  });

  it('changing other properties does not end other sessions', async () => {
    const tom = await newUser(main, 'tom', 'tom-password');
    const other = await login(main, 'tom', 'tom-password');
    assert.equal((await main.put(`/users/${tom.uid}`, { team: 'blue' }, tom.headers)).status, 200);
    assert.equal((await me(main, bearer(other.token)))?.team, 'blue');
  });

  it('root may change anyone\'s password; that user\'s sessions end', async () => {
    const rex = await newUser(main, 'rex', 'rex-password');
    const res = await main.put(`/users/${rex.uid}`, { password: 'rex-new-password' }, main.root);
    assert.equal(res.status, 200, res.text);
    assertNoPassword(res, 'the PUT answer');
    await login(main, 'rex', 'rex-new-password');
    assertError(await main.post('/users/login', { username: 'rex', password: 'rex-password' }), 401, undefined, 'bad credentials');
    assert.equal(await me(main, rex.headers), undefined, 'the user\'s session ended (it was not the one that changed it)');
  });

  it('an internal dpd call from a hook may change a password (even when the request is anonymous)', async () => {
    const dave = await newUser(hooks, 'dave', 'dave-password');
    const res = await hooks.post('/echo', { title: 'reset', target: dave.uid, newPassword: 'dave-new-password' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, 200, `the hook's dpd.users.put: ${res.text}`);
    await login(hooks, 'dave', 'dave-new-password');
    assertError(await hooks.post('/users/login', { username: 'dave', password: 'dave-password' }), 401, undefined, 'bad credentials');
  });

  it('the password is stored hashed: its text is nowhere in the database file', async () => {
    const { default: Database } = await import('better-sqlite3');
    await signup(main, 'hashed', 'plain-text-secret-42');
    const db = new Database(`${main.appDir}/.deployd/data.sqlite`, { readonly: true, fileMustExist: true });
    try {
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as Array<{ name: string }>;
      assert.ok(tables.length > 0, 'the database has tables');
      let rows = 0;
      for (const { name } of tables) {
        for (const row of db.prepare(`SELECT * FROM "${name.replace(/"/g, '""')}"`).all() as Array<Record<string, unknown>>) {
          rows++;
          assert.doesNotMatch(JSON.stringify(row), /plain-text-secret-42/, `table ${name} holds the password in clear`);
        }
      }
      assert.ok(rows > 0);
    } finally {
      db.close();
    }
  });
});

// ---- sessions in the store ---------------------------------------------------------------------------

describe('sessions live in the store', () => {
  it('a session from one instance works on another instance on the same database', async () => {
    await signup(sharedA, 'shay', 'shay-password');
    const { token } = await login(sharedA, 'shay', 'shay-password');
    assert.equal((await me(sharedB, bearer(token)))?.username, 'shay');
    const viaB = await login(sharedB, 'shay', 'shay-password');
    assert.equal((await me(sharedA, cookie(viaB.token)))?.username, 'shay');
  });

  it('a logout on one instance ends the session on the other at once', async () => {
    const { token } = await login(sharedA, 'shay', 'shay-password');
    assert.equal((await me(sharedB, bearer(token)))?.username, 'shay');
    assert.deepEqual((await sharedB.post('/users/logout', {}, bearer(token))).body, { count: 1 });
    const res = await sharedA.get('/users/me', bearer(token));
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('x-session-invalidated'), 'true');
  });

  it('a password change on one instance ends the user\'s other sessions on the other', async () => {
    await signup(sharedA, 'pia', 'pia-password-1');
    const current = await login(sharedA, 'pia', 'pia-password-1');
    const other = await login(sharedB, 'pia', 'pia-password-1');
    assert.equal((await sharedA.put(`/users/${current.uid}`, { password: 'pia-password-2' }, bearer(current.token))).status, 200);
    assert.equal(await me(sharedB, bearer(other.token)), undefined);
    assert.equal(await me(sharedA, bearer(other.token)), undefined);
    assert.equal((await me(sharedB, bearer(current.token)))?.username, 'pia');
  });

  it('a session survives a restart of the server (same app folder, same MASTER_KEY)', async () => {
    await signup(sharedA, 'rita', 'rita-password');
    const { token } = await login(sharedA, 'rita', 'rita-password');
    const { appDir, masterKey } = sharedA;
    assert.equal(await sharedA.stop(), 0);
    sharedA = await startServer(appDir, { ...ARGS, masterKey });
    assert.equal((await me(sharedA, bearer(token)))?.username, 'rita');
    assert.equal((await me(sharedA, cookie(token)))?.username, 'rita');
  });
});

describe('idle expiry: sessionIdleDays', () => {
  it('a session idle longer than sessionIdleDays (0.00002 ≈ 1.7 s) ends; one in use stays; the default (30 days) keeps one', async () => {
    await signup(short, 'idle', 'idle-password');
    const shortLived = await login(short, 'idle', 'idle-password');
    const inUse = await login(short, 'idle', 'idle-password');
    await signup(main, 'keeper', 'keeper-password');
    const longLived = await login(main, 'keeper', 'keeper-password');
    assert.equal((await me(short, bearer(shortLived.token)))?.username, 'idle', 'valid at first');
    // For 4 s (more than twice the idle time) one session is left alone and the other used every 0.4 s.
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      await sleep(400);
      assert.equal((await me(short, bearer(inUse.token)))?.username, 'idle', 'a session in use does not expire');
    }
    const res = await short.get('/users/me', bearer(shortLived.token));
    assert.equal(res.status, 204, res.text);
    assert.equal(res.headers.get('x-session-invalidated'), 'true');
    assert.equal((await me(main, bearer(longLived.token)))?.username, 'keeper');
    // Logging in again works.
    assert.equal((await me(short, bearer((await login(short, 'idle', 'idle-password')).token)))?.username, 'idle');
  });
});

// ---- login throttling ----------------------------------------------------------------------------------

describe('login throttling', () => {
  it('5 failures for one username: the next login is 429 with Retry-After even with the right password, from any address', async () => {
    await signup(throttle, 'tess', 'tess-password');
    for (let i = 0; i < 5; i++) {
      assertError(await requestFrom(throttle, '127.0.0.2', 'POST', '/users/login', { username: 'tess', password: `wrong-${i}-password` }), 401, undefined, 'bad credentials');
    }
    for (const address of ['127.0.0.2', '127.0.0.4']) {
      const res = await requestFrom(throttle, address, 'POST', '/users/login', { username: 'tess', password: 'tess-password' });
      assertError(res, 429, 'DPD_ERR_TOO_MANY_ATTEMPTS');
      const retry = Number(res.headers.get('retry-after'));
      assert.ok(Number.isInteger(retry) && retry > 0 && retry <= 900, `Retry-After in seconds: ${res.headers.get('retry-after')}`);
      assert.equal(sidCookie(res), undefined, 'no session');
    }
    // /auth/login shares the throttle.
    assertError(await requestFrom(throttle, '127.0.0.4', 'POST', '/auth/login', { username: 'tess', password: 'tess-password' }), 429, 'DPD_ERR_TOO_MANY_ATTEMPTS');
    // Another user from the same address is not affected.
    await signup(throttle, 'tim', 'tim-password');
    const tim = await requestFrom(throttle, '127.0.0.2', 'POST', '/users/login', { username: 'tim', password: 'tim-password' });
    assert.equal(tim.status, 200, tim.text);
  });

  it('20 failures from one address: any username is 429 from there, other addresses still log in', async () => {
    await signup(throttle, 'ada', 'ada-password');
    for (let i = 0; i < 20; i++) {
      const res = await requestFrom(throttle, '127.0.0.3', 'POST', '/users/login', { username: `ghost-${i}`, password: 'whatever-password' });
      assertError(res, 401, undefined, 'bad credentials');
    }
    const blocked = await requestFrom(throttle, '127.0.0.3', 'POST', '/users/login', { username: 'ada', password: 'ada-password' });
    assertError(blocked, 429, 'DPD_ERR_TOO_MANY_ATTEMPTS');
    assert.ok(Number(blocked.headers.get('retry-after')) > 0, `Retry-After: ${blocked.headers.get('retry-after')}`);
    const elsewhere = await requestFrom(throttle, '127.0.0.5', 'POST', '/users/login', { username: 'ada', password: 'ada-password' });
    assert.equal(elsewhere.status, 200, elsewhere.text);
  });

  it('once the window (loginThrottle.windowSeconds) has passed, the right password logs in again', async () => {
    await signup(short, 'wes', 'wes-password');
    for (let i = 0; i < 3; i++) assertError(await short.post('/users/login', { username: 'wes', password: `bad-${i}` }), 401, undefined, 'bad credentials');
    const blocked = await short.post('/users/login', { username: 'wes', password: 'wes-password' });
    assertError(blocked, 429, 'DPD_ERR_TOO_MANY_ATTEMPTS');
    const retry = Number(blocked.headers.get('retry-after'));
    assert.ok(retry > 0 && retry <= 3, `Retry-After within the 3 s window: ${blocked.headers.get('retry-after')}`);
    await sleep(retry * 1000 + 600);
    const res = await short.post('/users/login', { username: 'wes', password: 'wes-password' });
    assert.equal(res.status, 200, res.text);
  });
});

// ---- hooks: login.js, me, isMe ---------------------------------------------------------------------

describe('login.js', () => {
  let lena: Record<string, any>;
  before(async () => {
    lena = await signup(hooks, 'lena', 'lena-password');
    await signup(hooks, 'banned-bert', 'bert-password');
  }, { timeout: 120_000 });

  /** Runs `attempt` and returns the one loginlog entry it wrote. */
  async function logged(attempt: () => Promise<ApiResponse>): Promise<[ApiResponse, Record<string, any>]> {
    const before = new Set(((await hooks.get('/loginlog', hooks.root)).body as Array<{ id: string }>).map((d) => d.id));
    const res = await attempt();
    const entries = ((await hooks.get('/loginlog', hooks.root)).body as Array<{ id: string }>).filter((d) => !before.has(d.id));
    assert.equal(entries.length, 1, `one login.js run: ${JSON.stringify(entries)}`);
    const { id: _id, ...entry } = entries[0] as Record<string, any>;
    return [res, entry];
  }

  it('on success: success true, me and this are the user, without the password', async () => {
    const [res, entry] = await logged(() => hooks.post('/users/login', { username: 'lena', password: 'lena-password' }));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(entry, { success: true, meName: 'lena', thisName: 'lena', meHasPassword: false, thisHasPassword: false, thisKeys: Object.keys(lena).length });
  });

  it('on a wrong password: success false, me is the user trying to log in (no password)', async () => {
    const [res, entry] = await logged(() => hooks.post('/users/login', { username: 'lena', password: 'wrong-password' }));
    assertError(res, 401, undefined, 'bad credentials');
    assert.deepEqual(entry, { success: false, meName: 'lena', thisName: 'lena', meHasPassword: false, thisHasPassword: false, thisKeys: Object.keys(lena).length });
  });

  it('for an unknown user: success false, me null, this {}', async () => {
    const [res, entry] = await logged(() => hooks.post('/users/login', { username: 'nobody-here', password: 'lena-password' }));
    assertError(res, 401, undefined, 'bad credentials');
    assert.deepEqual(entry, { success: false, meName: null, thisName: null, meHasPassword: false, thisHasPassword: false, thisKeys: 0 });
  });

  it('cancel("banned", 403) answers that error even with the right password, and no session is made', async () => {
    const res = await hooks.post('/users/login', { username: 'banned-bert', password: 'bert-password' });
    assertError(res, 403, undefined, 'banned');
    assert.equal(sidCookie(res), undefined, 'no session cookie');
    assert.equal(res.headers.get('x-session-token'), null);
    const viaAuth = await hooks.post('/auth/login', { username: 'banned-bert', password: 'bert-password' });
    assertError(viaAuth, 403, undefined, 'banned');
  });
});

describe('me and isMe in hooks', () => {
  let hank: Awaited<ReturnType<typeof newUser>>;
  before(async () => {
    hank = await newUser(hooks, 'hank', 'hank-password', { team: 'h' });
  }, { timeout: 120_000 });

  it('post.js sees me (no password) and isMe(me.id); anonymous sees me null', async () => {
    const res = await hooks.post('/echo', { title: 'who' }, hank.headers);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.meName, 'hank');
    assert.equal(res.body.meId, hank.uid);
    assert.equal(res.body.isMeSelf, true);
    assert.equal(res.body.isMeOther, false);
    assert.equal(res.body.meHasPassword, false);
    assert.equal(res.body.isRoot, false);
    const anonymous = await hooks.post('/echo', { title: 'who' });
    assert.equal(anonymous.status, 200, anonymous.text);
    assert.equal(anonymous.body.meName, null);
    assert.equal(anonymous.body.isMeOther, false);
  });

  it('the same through the cookie and X-Session-Token', async () => {
    for (const headers of [cookie(hank.token), sessionHeader(hank.token)]) {
      const res = await hooks.post('/echo', { title: 'who' }, headers);
      assert.equal(res.body.meName, 'hank', JSON.stringify(headers));
    }
  });

  it('get.js: isMe(this.ownerId) and me.username show in the answer', async () => {
    const other = await newUser(hooks, 'olga', 'olga-password');
    const mine = (await hooks.post('/notes', { title: 'hank-note', ownerId: hank.uid })).body;
    const theirs = (await hooks.post('/notes', { title: 'olga-note', ownerId: other.uid })).body;
    const one = await hooks.get(`/notes/${mine.id}`, hank.headers);
    assert.equal(one.status, 200, one.text);
    assert.equal(one.body.viewer, 'hank');
    assert.equal(one.body.mine, true);
    assert.equal(one.body.viewerHasPassword, false);
    const list = await hooks.get(`/notes${q({ id: { $in: [mine.id, theirs.id] }, $sort: { title: 1 } })}`, hank.headers);
    assert.deepEqual(list.body.map((n: any) => [n.title, n.viewer, n.mine]), [['hank-note', 'hank', true], ['olga-note', 'hank', false]]);
    const anonymous = await hooks.get(`/notes/${mine.id}`);
    assert.equal(anonymous.body.viewer, null);
    assert.equal(anonymous.body.mine, false);
  });

  it('if (!me) cancel("login first", 401): anonymous is refused, a user is the author', async () => {
    assertError(await hooks.post('/private', { title: 'x' }), 401, undefined, 'login first');
    const res = await hooks.post('/private', { title: 'x' }, hank.headers);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.author, 'hank');
  });

  it('a dead token in a hook\'s request is anonymous', async () => {
    const res = await hooks.post('/echo', { title: 'who' }, bearer('f'.repeat(64)));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.meName, null);
    assert.equal(res.headers.get('x-session-invalidated'), 'true');
  });
});

describe('go-deployd holes', () => {
  it('go-deployd §5: registering with "role":"admin" does not make root (isRoot false, bulk delete 403)', async () => {
    const eve = await newUser(hooks, 'eve', 'eve-password', { role: 'admin' });
    const echo = await hooks.post('/echo', { title: 'am-i-root' }, eve.headers);
    assert.equal(echo.status, 200, echo.text);
    assert.equal(echo.body.isRoot, false);
    assert.equal(echo.body.meName, 'eve');
    await hooks.post('/things', { title: 'keep-me' });
    assertError(await hooks.del(`/things${q({ title: 'keep-me' })}`, eve.headers), 403);
    assert.equal((await hooks.get(`/things/count${q({ title: 'keep-me' })}`)).body.count, 1, 'nothing deleted');
    // /auth/login does not call it root either.
    const viaAuth = await hooks.post('/auth/login', { username: 'eve', password: 'eve-password' });
    assert.equal(viaAuth.status, 200, viaAuth.text);
    assert.notEqual(viaAuth.body.isRoot, true);
    assertError(await hooks.del(`/things${q({ title: 'keep-me' })}`, bearer(viaAuth.body.token)), 403);
  });

  it('go-deployd §5: $skipEvents from anonymous callers and users is ignored (hooks run); root\'s is honoured', async () => {
    const uri = await newUser(hooks, 'uri', 'uri-password');
    const anonymous = await hooks.post('/echo', { title: 'skip', $skipEvents: true });
    assert.equal(anonymous.status, 200, anonymous.text);
    assert.equal(anonymous.body.hooked, true, 'anonymous: the hook ran');
    const user = await hooks.post('/echo', { title: 'skip', $skipEvents: true }, uri.headers);
    assert.equal(user.body.hooked, true, 'a user: the hook ran');
    assert.equal(user.body.meName, 'uri');
    const viaQuery = await hooks.post('/echo?$skipEvents=true', { title: 'skip' }, uri.headers);
    assert.equal(viaQuery.body.hooked, true, 'in the query string too');
    const root = await hooks.post('/echo', { title: 'skip', $skipEvents: true }, hooks.root);
    assert.equal(root.status, 200, root.text);
    assert.notEqual(root.body.hooked, true, 'root: no hook ran');
  });

  it('go-deployd §5: the hash never leaks through /auth/me or /auth/login', async () => {
    const gwen = await newUser(hooks, 'gwen', 'gwen-password', { email: 'gwen@example.com' });
    const loginRes = await hooks.post('/auth/login', { email: 'gwen@example.com', password: 'gwen-password' });
    assertNoPassword(loginRes, '/auth/login');
    const meRes = await hooks.get('/auth/me', gwen.headers);
    assert.equal(meRes.status, 200, meRes.text);
    assertNoPassword(meRes, '/auth/me');
    assert.deepEqual(meRes.body, gwen.user);
  });
});
