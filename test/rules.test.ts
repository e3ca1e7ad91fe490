/**
 * Declarative access rules (issue #7, spec/users-api.md "Access rules"), black box through real
 * HTTP: config.json `"rules": {"read","create","update","delete"}` with `"anyone"` (the default),
 * `"users"`, `"owner"` (with `"ownerField"`), `"root"`; 401 for anonymous and 403 for users when
 * denied, 404 for a document the caller may not read (as for one that does not exist); owner filtering done in the store (so `$limit`/`$skip` pages are right); the owner set on
 * create; the owner field unchangeable except by root; a UserCollection's "owner" meaning the user
 * itself; the same rules for the `dpd` client inside hooks; an invalid rule answering 500.
 *
 * One server; alice, bob and carol are users, root is the master key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, makeApp, startServer, type ApiResponse, type TestServer } from './helpers/server.js';
import { assertError, newUser } from './helpers/users.js';

const q = (query: unknown) => `?${encodeURIComponent(JSON.stringify(query))}`;
const OWNER_RULES = { read: 'owner', create: 'owner', update: 'owner', delete: 'owner' };
const titled = (extra: Record<string, unknown> = {}) => ({ title: { type: 'string' }, n: { type: 'number' }, ...extra });

const CONFIGS = {
  users: {
    type: 'UserCollection',
    properties: { team: { type: 'string' } },
    rules: { read: 'owner', update: 'owner', delete: 'owner' },
  },
  open: { type: 'Collection', properties: titled() },
  notes: { type: 'Collection', properties: titled(), rules: OWNER_RULES },
  diary: { type: 'Collection', properties: titled(), rules: OWNER_RULES },
  posts: {
    type: 'Collection',
    properties: titled({ author: { type: 'string' } }),
    ownerField: 'author',
    rules: { read: 'anyone', create: 'users', update: 'owner', delete: 'root' },
  },
  members: { type: 'Collection', properties: titled(), rules: { read: 'users' } },
  vault: { type: 'Collection', properties: titled(), rules: { read: 'root', create: 'root', update: 'root', delete: 'root' } },
  bad: { type: 'Collection', properties: titled(), rules: { read: 'everyone' } },
  probe: {
    type: 'Collection',
    properties: titled({ target: { type: 'string' }, status: { type: 'number' }, titles: { type: 'array' }, owner: { type: 'string' } }),
  },
};

const FILES: Record<string, string> = {
  // Each branch makes one internal dpd call and reports its outcome in the stored probe document.
  'resources/probe/post.js': `
var self = this;
function done(result, err) { self.status = err ? err.status : 200; return result; }
if (this.title === 'list-diary') {
  dpd.diary.get({ $sort: { title: 1 } }, function (list, err) { if (done(list, err)) self.titles = list.map(function (d) { return d.title; }); });
}
if (this.title === 'count-diary') {
  dpd.diary.get({ $sort: { title: 1 }, $limit: 1, $skip: 1 }, function (list, err) { if (done(list, err)) self.titles = list.map(function (d) { return d.title; }); });
}
if (this.title === 'get-diary') dpd.diary.get(this.target, done);
if (this.title === 'create-diary') {
  dpd.diary.post({ title: 'from-hook', owner: 'forged-owner' }, function (doc, err) { if (done(doc, err)) self.owner = doc.owner; });
}
if (this.title === 'update-diary') dpd.diary.put(this.target, { n: 99 }, done);
if (this.title === 'delete-diary') dpd.diary.del(this.target, done);
if (this.title === 'read-vault') dpd.vault.get({}, done);`,
};

let server: TestServer;
let alice: Awaited<ReturnType<typeof newUser>>;
let bob: Awaited<ReturnType<typeof newUser>>;
let carol: Awaited<ReturnType<typeof newUser>>;

before(async () => {
  server = await startServer(makeApp(CONFIGS, FILES), { args: ['--hook-workers', '1'] });
  alice = await newUser(server, 'alice', 'alice-password', { team: 'red' });
  bob = await newUser(server, 'bob', 'bob-password', { team: 'blue' });
  carol = await newUser(server, 'carol', 'carol-password', { team: 'red' });
}, { timeout: 120_000 });

after(async () => {
  await server?.stop();
}, { timeout: 60_000 });

const unauthorized = (res: ApiResponse) => assertError(res, 401, 'DPD_ERR_UNAUTHORIZED');
const notFound = (res: ApiResponse) => assertError(res, 404, 'DPD_ERR_NOT_FOUND');
const forbidden = (res: ApiResponse) => assertError(res, 403, 'DPD_ERR_FORBIDDEN');

function ok(res: ApiResponse, what = 'request'): any {
  assert.equal(res.status, 200, `${what}: ${res.status} ${res.text}`);
  return res.body;
}

// ---- rule values ---------------------------------------------------------------------------------

describe('rule values', () => {
  it('no rules: "anyone" — anonymous callers read, create, update and delete', async () => {
    const doc = ok(await server.post('/open', { title: 'free' }));
    ok(await server.get('/open'));
    ok(await server.get(`/open/${doc.id}`));
    assert.equal(ok(await server.put(`/open/${doc.id}`, { n: 1 })).n, 1);
    assert.deepEqual(ok(await server.del(`/open/${doc.id}`)), { count: 1 });
  });

  it('"users": anonymous is 401 on list, count and get; a logged-in user reads', async () => {
    const doc = ok(await server.post('/members', { title: 'club' }, alice.headers));
    unauthorized(await server.get('/members'));
    unauthorized(await server.get('/members/count'));
    unauthorized(await server.get(`/members/${doc.id}`));
    unauthorized(await server.post('/members/query', { query: {} }));
    assert.ok(ok(await server.get('/members', bob.headers)).some((d: { id: string }) => d.id === doc.id));
    assert.equal(ok(await server.get(`/members/${doc.id}`, bob.headers)).title, 'club');
    assert.ok(ok(await server.get('/members/count', bob.headers)).count >= 1);
  });

  it('"users" on create: anonymous is 401 and nothing is stored; a user creates', async () => {
    unauthorized(await server.post('/posts', { title: 'anonymous post' }));
    assert.equal(ok(await server.get(`/posts/count${q({ title: 'anonymous post' })}`)).count, 0);
    ok(await server.post('/posts', { title: 'signed post' }, alice.headers));
  });

  it('"root": anonymous is 401, a user 403, root passes — for read, create, update and delete', async () => {
    const doc = ok(await server.post('/vault', { title: 'gold' }, server.root));
    unauthorized(await server.get('/vault'));
    unauthorized(await server.get(`/vault/${doc.id}`));
    unauthorized(await server.post('/vault', { title: 'x' }));
    unauthorized(await server.put(`/vault/${doc.id}`, { n: 1 }));
    unauthorized(await server.del(`/vault/${doc.id}`));
    forbidden(await server.get('/vault', alice.headers));
    forbidden(await server.get('/vault/count', alice.headers));
    forbidden(await server.get(`/vault/${doc.id}`, alice.headers));
    forbidden(await server.post('/vault', { title: 'x' }, alice.headers));
    forbidden(await server.put(`/vault/${doc.id}`, { n: 1 }, alice.headers));
    forbidden(await server.del(`/vault/${doc.id}`, alice.headers));
    assert.equal(ok(await server.get(`/vault/${doc.id}`, server.root)).n, undefined, 'the denied update changed nothing');
    assert.equal(ok(await server.put(`/vault/${doc.id}`, { n: 2 }, server.root)).n, 2);
    assert.deepEqual(ok(await server.del(`/vault/${doc.id}`, server.root)), { count: 1 });
  });

  it('an invalid rule value makes that collection answer 500 naming its config file; others work', async () => {
    const res = await server.get('/bad');
    assert.equal(res.status, 500, res.text);
    assert.match(res.body.message, /resources\/bad\/config\.json/);
    assert.match(res.body.message, /everyone|rule/);
    assert.equal(res.body.code, 'DPD_ERR_CONFIG_INVALID');
    ok(await server.get('/open'));
  });

  it('a rule value fixed while running takes effect (hot reload)', async () => {
    const fs = await import('node:fs');
    const file = `${server.appDir}/resources/bad/config.json`;
    fs.writeFileSync(file, JSON.stringify({ type: 'Collection', properties: titled(), rules: { read: 'users' } }));
    await eventually(async () => (await server.get('/bad')).status === 401, 5000, '/bad to answer 401 with the repaired rules');
    unauthorized(await server.get('/bad'));
    ok(await server.get('/bad', alice.headers));
  });
});

// ---- owner ----------------------------------------------------------------------------------------

describe('"owner"', () => {
  /** alice owns n0, n2, n4, n6, n8; bob owns n1, n3, n5, n7, n9 (created interleaved). */
  const notes: Record<string, any> = {};
  before(async () => {
    for (let i = 0; i < 10; i++) {
      const who = i % 2 === 0 ? alice : bob;
      notes[`n${i}`] = ok(await server.post('/notes', { title: `n${i}`, n: i }, who.headers), `create n${i}`);
    }
  }, { timeout: 120_000 });

  it('create sets the owner to the caller\'s user id, overwriting a value the client sent', async () => {
    assert.equal(notes.n0.owner, alice.uid);
    assert.equal(notes.n1.owner, bob.uid);
    const forged = ok(await server.post('/notes', { title: 'forged', owner: bob.uid }, carol.headers));
    assert.equal(forged.owner, carol.uid);
    assert.equal(ok(await server.get(`/notes/${forged.id}`, carol.headers)).owner, carol.uid);
  });

  it('create needs a logged-in user: anonymous is 401', async () => {
    unauthorized(await server.post('/notes', { title: 'nobody', owner: alice.uid }));
    assert.equal(ok(await server.get(`/notes/count${q({ title: 'nobody' })}`, server.root)).count, 0);
  });

  it('root may set the owner on create', async () => {
    const doc = ok(await server.post('/notes', { title: 'given by root', owner: carol.uid }, server.root));
    assert.equal(doc.owner, carol.uid);
    assert.ok(ok(await server.get('/notes', carol.headers)).some((d: { id: string }) => d.id === doc.id));
  });

  it('a list holds only the caller\'s documents', async () => {
    const list = ok(await server.get(`/notes${q({ $sort: { n: 1 }, n: { $gte: 0 } })}`, alice.headers));
    assert.deepEqual(list.map((d: { title: string }) => d.title), ['n0', 'n2', 'n4', 'n6', 'n8']);
    for (const d of list) assert.equal(d.owner, alice.uid);
  });

  it('$limit/$skip page through the caller\'s documents (filtered in the store, not after the page)', async () => {
    const page = (skip: number, limit: number) => server.get(`/notes${q({ $sort: { n: 1 }, $skip: skip, $limit: limit, n: { $gte: 0 } })}`, alice.headers);
    assert.deepEqual(ok(await page(0, 2)).map((d: { title: string }) => d.title), ['n0', 'n2']);
    assert.deepEqual(ok(await page(2, 2)).map((d: { title: string }) => d.title), ['n4', 'n6']);
    assert.deepEqual(ok(await page(4, 2)).map((d: { title: string }) => d.title), ['n8']);
    assert.deepEqual(ok(await page(1, 3)).map((d: { title: string }) => d.title), ['n2', 'n4', 'n6']);
    const bobPage = ok(await server.get(`/notes${q({ $sort: { n: -1 }, $skip: 1, $limit: 2, n: { $gte: 0 } })}`, bob.headers));
    assert.deepEqual(bobPage.map((d: { title: string }) => d.title), ['n7', 'n5']);
  });

  it('POST /notes/query is filtered the same way', async () => {
    const res = ok(await server.post('/notes/query', { query: { n: { $gte: 0 } }, options: { $sort: { n: 1 }, $skip: 1, $limit: 2 } }, bob.headers));
    assert.deepEqual(res.map((d: { title: string }) => d.title), ['n3', 'n5']);
  });

  it('count counts only the caller\'s documents', async () => {
    assert.deepEqual(ok(await server.get(`/notes/count${q({ n: { $gte: 0 } })}`, alice.headers)), { count: 5 });
    assert.deepEqual(ok(await server.get(`/notes/count${q({ n: { $gte: 5 } })}`, bob.headers)), { count: 3 });
    assert.deepEqual(ok(await server.get(`/notes/count${q({ n: { $gte: 0 } })}`, server.root)), { count: 10 });
  });

  it('asking for another\'s documents by owner, $or or id does not widen the filter', async () => {
    assert.deepEqual(ok(await server.get(`/notes${q({ owner: bob.uid })}`, alice.headers)), []);
    assert.deepEqual(ok(await server.get(`/notes${q({ $or: [{ owner: bob.uid }, { title: 'n1' }] })}`, alice.headers)), []);
    // Deployd: a query with an id is a read of that one document, so it is the GET /c/<id> answer.
    notFound(await server.get(`/notes${q({ id: notes.n1.id })}`, alice.headers));
    assert.deepEqual(ok(await server.get(`/notes${q({ id: { $in: [notes.n1.id, notes.n3.id] } })}`, alice.headers)), []);
    assert.deepEqual(ok(await server.get(`/notes/count${q({ owner: bob.uid })}`, alice.headers)), { count: 0 });
    assert.deepEqual(ok(await server.post('/notes/query', { query: { $or: [{ owner: { $ne: alice.uid } }] } }, alice.headers)), []);
  });

  it('anonymous list, count and query are 401', async () => {
    unauthorized(await server.get('/notes'));
    unauthorized(await server.get('/notes/count'));
    unauthorized(await server.post('/notes/query', { query: {} }));
  });

  it('GET /notes/<id>: the owner 200, another user 404 (as if it did not exist), anonymous 401, root 200', async () => {
    assert.equal(ok(await server.get(`/notes/${notes.n0.id}`, alice.headers)).title, 'n0');
    notFound(await server.get(`/notes/${notes.n0.id}`, bob.headers));
    notFound(await server.get('/notes/00000000000000ff', bob.headers));
    unauthorized(await server.get(`/notes/${notes.n0.id}`));
    assert.equal(ok(await server.get(`/notes/${notes.n0.id}`, server.root)).title, 'n0');
  });

  it('update: the owner 200, another user 404 (it cannot read it), anonymous 401; a denied update changes nothing', async () => {
    notFound(await server.put(`/notes/${notes.n2.id}`, { title: 'bob was here' }, bob.headers));
    notFound(await server.put('/notes', { id: notes.n2.id, title: 'bob was here' }, bob.headers));
    unauthorized(await server.put(`/notes/${notes.n2.id}`, { title: 'anonymous was here' }));
    notFound(await server.post(`/notes/${notes.n2.id}`, { title: 'bob via POST /c/id' }, bob.headers));
    assert.equal(ok(await server.get(`/notes/${notes.n2.id}`, server.root)).title, 'n2');
    assert.equal(ok(await server.put(`/notes/${notes.n2.id}`, { title: 'n2', n: 2 }, alice.headers)).owner, alice.uid);
  });

  it('a non-root caller cannot change the owner field (403); root can', async () => {
    forbidden(await server.put(`/notes/${notes.n4.id}`, { owner: bob.uid }, alice.headers));
    forbidden(await server.put(`/notes/${notes.n4.id}`, { title: 'give away', owner: carol.uid }, alice.headers));
    const stored = ok(await server.get(`/notes/${notes.n4.id}`, server.root));
    assert.equal(stored.owner, alice.uid);
    assert.equal(stored.title, 'n4');
    // Root moves it to carol: alice loses it, carol has it.
    assert.equal(ok(await server.put(`/notes/${notes.n4.id}`, { owner: carol.uid }, server.root)).owner, carol.uid);
    notFound(await server.get(`/notes/${notes.n4.id}`, alice.headers));
    assert.equal(ok(await server.get(`/notes/${notes.n4.id}`, carol.headers)).title, 'n4');
    // ... and back, so the list tests see alice's five.
    ok(await server.put(`/notes/${notes.n4.id}`, { owner: alice.uid }, server.root));
  });

  it('delete: another user 404, anonymous 401, the owner {"count":1}, root any', async () => {
    const mine = ok(await server.post('/notes', { title: 'to delete', n: -1 }, alice.headers));
    const theirs = ok(await server.post('/notes', { title: 'root deletes', n: -2 }, bob.headers));
    notFound(await server.del(`/notes/${mine.id}`, bob.headers));
    unauthorized(await server.del(`/notes/${mine.id}`));
    ok(await server.get(`/notes/${mine.id}`, alice.headers), 'still there');
    assert.deepEqual(ok(await server.del(`/notes/${mine.id}`, alice.headers)), { count: 1 });
    assert.deepEqual(ok(await server.del(`/notes/${theirs.id}`, server.root)), { count: 1 });
    assert.equal((await server.get(`/notes/${theirs.id}`, server.root)).status, 404);
  });

  it('root passes every rule: it lists, counts and reads everyone\'s documents', async () => {
    const list = ok(await server.get(`/notes${q({ n: { $gte: 0 }, $sort: { n: 1 } })}`, server.root));
    assert.deepEqual(list.map((d: { title: string }) => d.title), ['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'n9']);
  });

  it('"ownerField" names the field: posts are owned through "author"', async () => {
    const post = ok(await server.post('/posts', { title: 'by author', author: bob.uid }, alice.headers));
    assert.equal(post.author, alice.uid, 'set from the caller');
    assert.equal(post.owner, undefined);
    // read anyone: bob and anonymous read it.
    assert.equal(ok(await server.get(`/posts/${post.id}`)).title, 'by author');
    // update owner (author): bob 403, alice 200; alice cannot hand it to bob.
    forbidden(await server.put(`/posts/${post.id}`, { title: 'bob edit' }, bob.headers));
    unauthorized(await server.put(`/posts/${post.id}`, { title: 'anonymous edit' }));
    assert.equal(ok(await server.put(`/posts/${post.id}`, { title: 'edited' }, alice.headers)).title, 'edited');
    forbidden(await server.put(`/posts/${post.id}`, { author: bob.uid }, alice.headers));
    // delete root: even the author is 403.
    forbidden(await server.del(`/posts/${post.id}`, alice.headers));
    assert.deepEqual(ok(await server.del(`/posts/${post.id}`, server.root)), { count: 1 });
  });

  it('bulk DELETE stays root only with an owner rule', async () => {
    forbidden(await server.del(`/notes${q({ owner: alice.uid })}`, alice.headers));
    assert.equal(ok(await server.get(`/notes/count${q({ n: { $gte: 0 } })}`, alice.headers)).count, 5);
  });
});

describe('"owner" in a UserCollection means the user document itself', () => {
  it('a user lists and reads only itself; another\'s document is 404; anonymous 401', async () => {
    assert.deepEqual(ok(await server.get('/users', alice.headers)).map((u: { id: string }) => u.id), [alice.uid]);
    assert.deepEqual(ok(await server.get('/users/count', bob.headers)), { count: 1 });
    assert.equal(ok(await server.get(`/users/${alice.uid}`, alice.headers)).username, 'alice');
    notFound(await server.get(`/users/${bob.uid}`, alice.headers));
    unauthorized(await server.get('/users'));
    unauthorized(await server.get(`/users/${bob.uid}`));
    assert.equal(ok(await server.get('/users/me', alice.headers)).username, 'alice', '/users/me still answers');
    assert.equal(ok(await server.get('/users', server.root)).length >= 3, true);
  });

  it('a user updates and deletes only itself', async () => {
    notFound(await server.put(`/users/${bob.uid}`, { team: 'hijacked' }, alice.headers));
    unauthorized(await server.put(`/users/${bob.uid}`, { team: 'hijacked' }));
    assert.equal(ok(await server.get(`/users/${bob.uid}`, server.root)).team, 'blue');
    assert.equal(ok(await server.put(`/users/${alice.uid}`, { team: 'green' }, alice.headers)).team, 'green');
    notFound(await server.del(`/users/${bob.uid}`, alice.headers));
    unauthorized(await server.del(`/users/${bob.uid}`));
    const temp = await newUser(server, 'temp', 'temp-password');
    assert.deepEqual(ok(await server.del(`/users/${temp.uid}`, temp.headers)), { count: 1 });
    assert.equal((await server.get(`/users/${temp.uid}`, server.root)).status, 404);
  });

  it('sign-up (create "anyone") still works for anonymous callers', async () => {
    ok(await server.post('/users', { username: 'newcomer', password: 'newcomer-password' }));
  });
});

// ---- through the dpd client in hooks -------------------------------------------------------------

describe('rules apply to the dpd client inside hooks (same caller)', () => {
  const diary: Record<string, any> = {};
  before(async () => {
    diary.a1 = ok(await server.post('/diary', { title: 'a1' }, alice.headers));
    diary.a2 = ok(await server.post('/diary', { title: 'a2' }, alice.headers));
    diary.b1 = ok(await server.post('/diary', { title: 'b1' }, bob.headers));
  }, { timeout: 120_000 });

  const probe = (body: Record<string, unknown>, headers?: Record<string, string>) => server.post('/probe', body, headers);

  it('a list through dpd is filtered for the caller; anonymous gets 401; root sees all', async () => {
    const asAlice = ok(await probe({ title: 'list-diary' }, alice.headers));
    assert.equal(asAlice.status, 200, JSON.stringify(asAlice));
    assert.deepEqual(asAlice.titles, ['a1', 'a2']);
    const asBob = ok(await probe({ title: 'list-diary' }, bob.headers));
    assert.deepEqual(asBob.titles, ['b1']);
    assert.equal(ok(await probe({ title: 'list-diary' })).status, 401);
    const asRoot = ok(await probe({ title: 'list-diary' }, server.root));
    assert.deepEqual(asRoot.titles.filter((t: string) => ['a1', 'a2', 'b1'].includes(t)), ['a1', 'a2', 'b1']);
  });

  it('paging through dpd is right for the caller', async () => {
    assert.deepEqual(ok(await probe({ title: 'count-diary' }, alice.headers)).titles, ['a2']);
  });

  it('get through dpd: another\'s document 404, own 200', async () => {
    assert.equal(ok(await probe({ title: 'get-diary', target: diary.b1.id }, alice.headers)).status, 404);
    assert.equal(ok(await probe({ title: 'get-diary', target: diary.a1.id }, alice.headers)).status, 200);
    assert.equal(ok(await probe({ title: 'get-diary', target: diary.a1.id })).status, 401);
  });

  it('create through dpd sets the owner to the caller (a forged owner is overwritten); anonymous 401', async () => {
    const res = ok(await probe({ title: 'create-diary' }, bob.headers));
    assert.equal(res.status, 200, JSON.stringify(res));
    assert.equal(res.owner, bob.uid);
    assert.equal(ok(await probe({ title: 'create-diary' })).status, 401);
  });

  it('update and delete through dpd: another\'s document 404 and unchanged, own 200', async () => {
    assert.equal(ok(await probe({ title: 'update-diary', target: diary.b1.id }, alice.headers)).status, 404);
    assert.equal(ok(await probe({ title: 'delete-diary', target: diary.b1.id }, alice.headers)).status, 404);
    const b1 = ok(await server.get(`/diary/${diary.b1.id}`, bob.headers));
    assert.equal(b1.n, undefined);
    assert.equal(ok(await probe({ title: 'update-diary', target: diary.a2.id }, alice.headers)).status, 200);
    assert.equal(ok(await server.get(`/diary/${diary.a2.id}`, alice.headers)).n, 99);
    assert.equal(ok(await probe({ title: 'delete-diary', target: diary.a2.id }, alice.headers)).status, 200);
    assert.equal((await server.get(`/diary/${diary.a2.id}`, server.root)).status, 404);
  });

  it('a root-only collection through dpd: user 403, anonymous 401, root 200', async () => {
    assert.equal(ok(await probe({ title: 'read-vault' }, alice.headers)).status, 403);
    assert.equal(ok(await probe({ title: 'read-vault' })).status, 401);
    assert.equal(ok(await probe({ title: 'read-vault' }, server.root)).status, 200);
  });
});
