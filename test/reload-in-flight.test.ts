/**
 * A request keeps the version of its collection it resolved, hooks included, even when a reload
 * replaces that version before the request has started running it. The window: the REST route
 * (and POST /auth/login) resolves the collection, then identifies the caller, which for a session
 * token reads the store. A reload in between used to release the old version's hooks at once (no
 * request was counted on it yet), and the request then failed with a 500 "no hooks loaded".
 *
 * The test holds a request in that window deterministically: in this process, the user lookup of
 * the caller's session waits on a gate while a hook file is rewritten and the new version applies.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, makeApp, startInProcess, type ApiResponse, type TestServer } from './helpers/server.js';
import { bearer, newUser } from './helpers/users.js';

const APP = {
  users: { type: 'UserCollection', properties: { email: { type: 'string' }, version: { type: 'string' } } },
  hot: { type: 'Collection', properties: { title: { type: 'string' }, version: { type: 'string' } } },
};
const stamp = (version: string) => `this.version = '${version}';\n`;

type Started = Awaited<ReturnType<typeof startInProcess>>;
type Accounts = Started['server']['registry']['accounts'];

describe('a reload while a request identifies its caller', { timeout: 120_000 }, () => {
  let started: Started | undefined;
  let api: TestServer;
  let appDir: string;
  let token: string;
  /** While set, the session's user lookup waits on it (and counts how many did). */
  let gate: { opened: Promise<void>; open: () => void; waiting: number } | undefined;

  before(async () => {
    appDir = makeApp(APP, { 'resources/hot/post.js': stamp('v0'), 'resources/users/login.js': "if (false) cancel('never');\n" });
    started = await startInProcess(appDir);
    api = started.api;
    ({ token } = await newUser(api, 'ann', 'correct horse'));
    const registry = started.server.registry;
    const accounts: Accounts = registry.accounts.bind(registry);
    registry.accounts = ((name: string) => {
      const real = accounts(name);
      if (!real || !gate) return real;
      const held = gate;
      return Object.assign(Object.create(real), {
        loadUser: async (uid: string) => {
          held.waiting++;
          await held.opened;
          return real.loadUser(uid);
        },
      });
    }) as Accounts;
  }, { timeout: 120_000 });

  after(async () => {
    gate?.open();
    await started?.close();
    if (appDir) fs.rmSync(appDir, { recursive: true, force: true });
  }, { timeout: 60_000 });

  function closeGate(): NonNullable<typeof gate> {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => { open = resolve; });
    gate = { opened, open: () => { gate = undefined; open(); }, waiting: 0 };
    return gate;
  }

  /** Rewrites hot/post.js and waits until root's POSTs (no session, so not held) run the new version. */
  async function applyVersion(version: string): Promise<void> {
    fs.writeFileSync(path.join(appDir, 'resources', 'hot', 'post.js'), stamp(version));
    await eventually(async () => (await api.post('/hot', { title: 'probe' }, api.root)).body?.version === version, 30_000, `post.js ${version} to apply`);
  }

  it('a POST resolved before the reload runs the hooks of the version it resolved, and succeeds', async () => {
    const held = closeGate();
    const pending: Promise<ApiResponse> = api.post('/hot', { title: 'held' }, bearer(token));
    await eventually(() => held.waiting === 1, 10_000, 'the POST to wait in identification');
    await applyVersion('v1');
    held.open();
    const res = await pending;
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.version, 'v0', 'it ran the post.js it resolved');
    // Once it has ended, the old version is let go and the new one serves everyone.
    const after = await api.post('/hot', { title: 'next' }, bearer(token));
    assert.equal(after.status, 200, after.text);
    assert.equal(after.body.version, 'v1');
  });

  it('POST /auth/login resolved before a reload of the users collection runs its Login hook, and succeeds', async () => {
    const held = closeGate();
    // A login that carries an old session token: identifying it reads the store (held here).
    const pending = api.post('/auth/login', { username: 'ann', password: 'correct horse' }, bearer(token));
    await eventually(() => held.waiting === 1, 10_000, 'the login to wait in identification');
    const registry = started!.server.registry;
    const before = registry.get('users')?.collection?.hooks.key;
    assert.ok(before, 'the users collection has hooks');
    fs.writeFileSync(path.join(appDir, 'resources', 'users', 'login.js'), "if (false) cancel('never, v1');\n");
    await eventually(() => { const now = registry.get('users')?.collection?.hooks.key; return now !== undefined && now !== before; }, 30_000, 'users/login.js to reload');
    held.open();
    const res = await pending;
    assert.equal(res.status, 200, res.text);
    assert.ok(typeof res.body.token === 'string' && res.body.token.length > 0);
  });
});
