/**
 * The policy as properties (fast-check), against in-process servers through `app.inject`:
 *
 *   writes  random documents × random update bodies in every accepted form (plain, per-field
 *           commands, MongoDB-style commands, mixed; PUT, POST /c/<id>, PUT and POST with the id in
 *           the body, POST with `?_method=PUT`, a hook's `dpd` call) × random callers (anonymous,
 *           owner, another user, root) give the verdict of a small reference model, leave the store
 *           as the model says — and no caller ever changes a protected field of a document it does
 *           not own.
 *   reads   two worlds that differ only in what a reader cannot see (other users' documents, hidden
 *           fields) answer every random filter/sort/projection/paging query identically: no query
 *           lets a reader learn a value it cannot GET.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { hashPassword } from '../src/auth/passwords.js';
import type { DeploydServer } from '../src/server.js';
import type { CollectionStore } from '../src/store/store.js';
import type { Doc } from '../src/core/document.js';
import { makeApp } from './helpers/server.js';

const KEY = randomBytes(24).toString('hex');
const ROOT = { 'x-master-key': KEY };
const RUNS = Number(process.env.POLICY_RUNS ?? 150);

interface Reply { status: number; body: any; text: string }

async function open(appDir: string): Promise<DeploydServer> {
  const { createServer } = await import('../src/server.js');
  const server = await createServer({ appDir, masterKey: KEY, logLevel: 'silent', hookWorkers: 1, watch: false });
  await server.app.ready();
  return server;
}

async function call(server: DeploydServer, method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await server.app.inject({ method: method as 'GET', url, headers: { 'content-type': 'application/json', ...headers }, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) });
  let parsed: unknown;
  try { parsed = res.body === '' ? undefined : JSON.parse(res.body); } catch { parsed = undefined; }
  return { status: res.statusCode, body: parsed, text: res.body };
}

async function handle(server: DeploydServer, name: string): Promise<CollectionStore> {
  return server.store.collection(server.registry.get(name)!.collection!.schema);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

// ---- writes ------------------------------------------------------------------------------------

type Who = 'anonymous' | 'alice' | 'bob' | 'root';
type Via = 'put' | 'post-id' | 'put-body-id' | 'post-body-id' | 'method-override' | 'dpd';
type Cmd = '$set' | '$unset' | '$inc' | '$push' | '$pull' | '$addUnique';
type Op = [field: string, cmd: Cmd, arg: unknown];
type Form = 'plain' | 'field' | 'mongo';

const USER_IDS = { alice: 'a11ce00000000001', bob: 'b0b0000000000002' } as const;
const PASSWORDS = { alice: 'alice-password', bob: 'bob-password' } as const;

/** Encodes distinct-field ops as a body, each op in its own form (plain only carries a $set). */
function encode(ops: Op[], forms: Form[]): Record<string, unknown> {
  const body: Record<string, any> = {};
  ops.forEach(([field, cmd, arg], i) => {
    const form = cmd === '$set' ? forms[i % forms.length] : forms[i % forms.length] === 'mongo' ? 'mongo' : 'field';
    if (form === 'plain') body[field] = arg;
    else if (form === 'field') body[field] = { [cmd]: arg };
    else (body[cmd] ??= {})[field] = arg;
  });
  return body;
}

/** The model's update semantics: one op per field. */
function applyOps(doc: Record<string, unknown>, ops: Op[]): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(doc);
  for (const [field, cmd, arg] of ops) {
    const list = (Array.isArray(out[field]) ? out[field] : []) as unknown[];
    if (cmd === '$set') out[field] = arg;
    else if (cmd === '$unset') delete out[field];
    else if (cmd === '$inc') out[field] = ((out[field] as number | undefined) ?? 0) + (arg as number);
    else if (cmd === '$push') out[field] = [...list, arg];
    else if (cmd === '$pull') out[field] = list.filter((x) => !isDeepStrictEqual(x, arg));
    else if (!list.some((x) => isDeepStrictEqual(x, arg))) out[field] = [...list, arg];
    else out[field] = list;
  }
  return out;
}

const noteOp: fc.Arbitrary<Op> = fc.oneof(
  fc.tuple(fc.constant('title'), fc.constant<Cmd>('$set'), fc.constantFrom('x', 'y', '')),
  fc.tuple(fc.constant('title'), fc.constant<Cmd>('$unset'), fc.constant(1)),
  fc.tuple(fc.constant('n'), fc.constant<Cmd>('$set'), fc.constantFrom(0, 5, -1)),
  fc.tuple(fc.constant('n'), fc.constant<Cmd>('$inc'), fc.constantFrom(1, -2)),
  fc.tuple(fc.constant('tags'), fc.constantFrom<Cmd>('$push', '$pull', '$addUnique'), fc.constantFrom('a', 'b')),
  fc.tuple(fc.constant('tags'), fc.constant<Cmd>('$set'), fc.constant(['a'])),
  fc.tuple(fc.constant('owner'), fc.constant<Cmd>('$set'), fc.constantFrom(USER_IDS.alice, USER_IDS.bob, 'stranger', null)),
  fc.tuple(fc.constant('owner'), fc.constant<Cmd>('$unset'), fc.constant(1)),
);

const userOp: fc.Arbitrary<Op> = fc.oneof(
  fc.tuple(fc.constant('username'), fc.constant<Cmd>('$set'), fc.constantFrom('alice', 'bob', 'carol', '')),
  fc.tuple(fc.constant('username'), fc.constant<Cmd>('$unset'), fc.constant(1)),
  fc.tuple(fc.constant('password'), fc.constant<Cmd>('$set'), fc.constant('a-new-password')),
  fc.tuple(fc.constant('password'), fc.constant<Cmd>('$unset'), fc.constant(1)),
  fc.tuple(fc.constant('team'), fc.constant<Cmd>('$set'), fc.constantFrom('red', 'blue')),
  fc.tuple(fc.constant('team'), fc.constant<Cmd>('$unset'), fc.constant(1)),
);

const opsOf = (op: fc.Arbitrary<Op>) => fc.uniqueArray(op, { minLength: 1, maxLength: 4, selector: (o) => o[0] });
const forms = fc.array(fc.constantFrom<Form>('plain', 'field', 'mongo'), { minLength: 1, maxLength: 4 });
const who = fc.constantFrom<Who>('anonymous', 'alice', 'bob', 'root');
const via = fc.constantFrom<Via>('put', 'post-id', 'put-body-id', 'post-body-id', 'method-override', 'dpd');
/** Outside a users collection a POST whose body names an id creates (the id is ignored). */
const noteVia = fc.constantFrom<Via>('put', 'post-id', 'put-body-id', 'method-override', 'dpd');

/** The reference model for notes: `update: owner`; `read` is `anyone` or `owner`. */
function noteVerdict(read: 'anyone' | 'owner', caller: Who, before: Record<string, unknown>, after: Record<string, unknown>): number {
  if (caller === 'anonymous') return 401;
  if (caller !== 'root' && before.owner !== USER_IDS[caller]) return read === 'owner' ? 404 : 403;
  if (caller !== 'root' && !isDeepStrictEqual(before.owner, after.owner)) return 403;
  return 200;
}

/**
 * The reference model for users (every rule `anyone`): credentials change only by that user, root or
 * a hook; anyone else's credential changes are dropped (Deployd) and the rest applies. The ops that
 * take effect, and the status.
 */
function userVerdict(caller: Who, path: Via, target: 'alice' | 'bob', ops: Op[]): { status: number; applied: Op[] } {
  const mayChange = caller === 'root' || path === 'dpd' || caller === target;
  const applied = mayChange ? ops : ops.filter(([f]) => f !== 'username' && f !== 'password');
  const after = applyOps({ username: target }, applied);
  if (applied.some(([f, c]) => f === 'password' && c !== '$set')) return { status: 400, applied };
  if (typeof after.username !== 'string' || after.username === '') return { status: 400, applied };
  if (after.username === (target === 'alice' ? 'bob' : 'alice')) return { status: 400, applied };
  return { status: 200, applied };
}

describe('write policy: the effective change decides, whatever the form', { timeout: 600_000 }, () => {
  let server: DeploydServer;
  const tokens: Record<string, string> = {};
  const notes = (rule: 'anyone' | 'owner') => ({ type: 'Collection', properties: { title: { type: 'string' }, n: { type: 'number' }, tags: { type: 'array' } }, rules: { read: rule, update: 'owner', create: 'users', delete: 'owner' } });

  const headersOf = (caller: Who): Record<string, string> => caller === 'root' ? ROOT : caller === 'anonymous' ? {} : bearer(tokens[caller]);

  const logIn = async (name: 'alice' | 'bob') => {
    const res = await call(server, 'POST', '/users/login', { username: name, password: PASSWORDS[name] });
    assert.equal(res.status, 200, res.text);
    tokens[name] = res.body.id;
  };

  /** Sends `body` as an update of `collection/id` by `caller`, along `path`; the answer's status. */
  const update = async (caller: Who, path: Via, collection: string, id: string, body: Record<string, unknown>): Promise<Reply> => {
    const headers = headersOf(caller);
    if (path === 'put') return call(server, 'PUT', `/${collection}/${id}`, body, headers);
    if (path === 'post-id') return call(server, 'POST', `/${collection}/${id}`, body, headers);
    if (path === 'put-body-id') return call(server, 'PUT', `/${collection}`, { ...body, id }, headers);
    if (path === 'post-body-id') return call(server, 'POST', `/${collection}`, { ...body, id }, headers);
    if (path === 'method-override') return call(server, 'POST', `/${collection}/${id}?_method=PUT`, body, headers);
    const res = await call(server, 'POST', '/probe', { target: collection, docId: id, changes: body }, headers);
    assert.equal(res.status, 200, res.text);
    return { status: res.body.status, body: undefined, text: JSON.stringify(res.body) };
  };

  before(async () => {
    server = await open(makeApp({
      users: { type: 'UserCollection', properties: { team: { type: 'string' } } },
      open: notes('anyone'),
      closed: notes('owner'),
      probe: { type: 'Collection', noStore: true, properties: { target: { type: 'string' }, docId: { type: 'string' }, changes: { type: 'object' } } },
    }, {
      // A hook's dpd call, as the same caller: reports the status the call got.
      'resources/probe/post.js': `var self = this;
dpd[this.target].put(this.docId, this.changes, function (result, err) { self.status = err ? (err.statusCode || err.status) : 200; });`,
    }));
    const users = await handle(server, 'users');
    for (const name of ['alice', 'bob'] as const) {
      await users.insert({ id: USER_IDS[name], username: name, password: await hashPassword(PASSWORDS[name]), team: 'red' });
      await logIn(name);
    }
  }, { timeout: 60_000 });

  after(async () => {
    await server?.close();
  }, { timeout: 30_000 });

  for (const collection of ['open', 'closed'] as const) {
    const read = collection === 'open' ? 'anyone' : 'owner';
    it(`notes with read "${read}", update "owner": the model's verdict, the model's stored document, the owner never moved by another`, async () => {
      const store = await handle(server, collection);
      await fc.assert(fc.asyncProperty(
        who, noteVia, fc.constantFrom<'alice' | 'bob'>('alice', 'bob'), opsOf(noteOp), forms,
        fc.record({ title: fc.constantFrom('x', 'z'), n: fc.constantFrom(0, 3), tags: fc.constantFrom([], ['a'], ['a', 'b']) }),
        async (caller, path, owner, ops, bodyForms, fields) => {
          const before: Doc = { id: randomBytes(8).toString('hex'), ...fields, owner: USER_IDS[owner] };
          await store.insert(before);
          const expected = noteVerdict(read, caller, before, applyOps(before, ops));
          const res = await update(caller, path, collection, before.id, encode(ops, bodyForms));
          assert.equal(res.status, expected, `${caller} via ${path}: ${JSON.stringify(encode(ops, bodyForms))} → ${res.text}`);
          const [stored] = await store.find({ fields: { id: { $eq: before.id } } });
          assert.deepEqual(stored, expected === 200 ? applyOps(before, ops) : before);
          if (caller !== 'root' && before.owner !== USER_IDS[caller as 'alice']) assert.deepEqual(stored, before, 'not its owner: nothing changed');
        },
      ), { numRuns: RUNS });
    });
  }

  it('users (every rule "anyone"): username and password only by that user, root or a hook (from anyone else dropped); the model\'s verdict and stored document', async () => {
    const users = await handle(server, 'users');
    await fc.assert(fc.asyncProperty(
      who, via, fc.constantFrom<'alice' | 'bob'>('alice', 'bob'), opsOf(userOp), forms,
      async (caller, path, target, ops, bodyForms) => {
        const id = USER_IDS[target];
        const [before] = await users.find({ fields: { id: { $eq: id } } });
        const { status: expected, applied } = userVerdict(caller, path, target, ops);
        const res = await update(caller, path, 'users', id, encode(ops, bodyForms));
        assert.equal(res.status, expected, `${caller} via ${path} on ${target}: ${JSON.stringify(encode(ops, bodyForms))} → ${res.text}`);
        const [stored] = await users.find({ fields: { id: { $eq: id } } });
        if (expected !== 200) {
          assert.deepEqual(stored, before, 'refused: nothing changed');
          return;
        }
        const { password: newHash, ...rest } = stored;
        const { password: _old, ...model } = applyOps(before, applied);
        assert.deepEqual(rest, model);
        if (applied.some(([f]) => f === 'password')) {
          assert.notEqual(newHash, 'a-new-password', 'hashed, never stored as sent');
          assert.notEqual(newHash, before.password);
        } else assert.equal(newHash, before.password);
        // Put the user back (root), and log in again: new credentials ended their sessions.
        await users.update(id, { fields: {} }, { set: { username: target, password: before.password, team: before.team ?? null }, unset: [], inc: {}, push: {}, pull: {}, addUnique: {} });
        if (before.team === undefined) await users.update(id, { fields: {} }, { set: {}, unset: ['team'], inc: {}, push: {}, pull: {}, addUnique: {} });
        if (applied.some(([f]) => f === 'password' || f === 'username')) {
          for (const name of ['alice', 'bob'] as const) {
            if ((await call(server, 'GET', '/users/me', undefined, bearer(tokens[name]))).status !== 200) await logIn(name);
          }
        }
      },
    ), { numRuns: RUNS });
  });
});

// ---- reads -------------------------------------------------------------------------------------

const FIELDS = ['title', 'n', 'ssn', 'pin', 'note', 'owner', 'id'] as const;
type Field = (typeof FIELDS)[number];

const valueOf = (field: Field): fc.Arbitrary<unknown> => {
  switch (field) {
    case 'n': return fc.constantFrom(0, 1, 2, 3);
    case 'owner': return fc.constantFrom(USER_IDS.alice, USER_IDS.bob, null);
    case 'id': return fc.constantFrom('c000000000000001', 'c000000000000002', 'd000000000000001', 'ffffffffffffffff');
    default: return fc.constantFrom('1', '2', '9', 'a');
  }
};

const condition = (field: Field): fc.Arbitrary<unknown> => fc.oneof(
  valueOf(field),
  valueOf(field).map((v) => ({ $ne: v })),
  valueOf(field).filter((v) => v !== null).map((v) => ({ $gt: v })),
  valueOf(field).filter((v) => v !== null).map((v) => ({ $lte: v })),
  fc.array(valueOf(field), { minLength: 1, maxLength: 2 }).map((vs) => ({ $in: vs })),
  fc.array(valueOf(field), { minLength: 1, maxLength: 2 }).map((vs) => ({ $nin: vs })),
  fc.boolean().map((b) => ({ $exists: b })),
  fc.constantFrom('^1', '9$', 'a').map((r) => ({ $regex: r })),
  fc.constantFrom('^1', '^9').map((r) => ({ $not: { $regex: r } })),
);

const fieldConditions: fc.Arbitrary<Record<string, unknown>> = fc.uniqueArray(fc.constantFrom(...FIELDS), { maxLength: 2 })
  .chain((fields) => fc.tuple(...fields.map((f) => condition(f))).map((conds) => Object.fromEntries(fields.map((f, i) => [f, conds[i]]))));

const filter: fc.Arbitrary<Record<string, unknown>> = fc.tuple(
  fieldConditions,
  fc.option(fc.tuple(fc.constantFrom('$or', '$and', '$nor'), fc.array(fieldConditions.filter((c) => Object.keys(c).length > 0), { minLength: 1, maxLength: 2 })), { nil: undefined }),
).map(([conds, logical]) => (logical ? { ...conds, [logical[0]]: logical[1] } : conds));

const options = fc.record({
  $sort: fc.option(fc.tuple(fc.constantFrom(...FIELDS), fc.constantFrom(1, -1)).map(([f, d]) => ({ [f]: d })), { nil: undefined }),
  $limit: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  $skip: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
  $fields: fc.option(fc.constantFrom({ title: 1 }, { ssn: 1 }, { pin: 1, n: 1 }, { note: 0 }, { owner: 1 }), { nil: undefined }),
}, { requiredKeys: [] });

type Ask = { endpoint: 'list' | 'query' | 'count' | 'one' | 'put'; id: string };
const ask: fc.Arbitrary<Ask> = fc.record({
  endpoint: fc.constantFrom<Ask['endpoint']>('list', 'query', 'count', 'one', 'put'),
  id: fc.constantFrom('c000000000000001', 'c000000000000002', 'd000000000000001', 'd000000000000002', 'ffffffffffffffff'),
});

/** What both worlds hold alike, and what differs (the reader cannot see it). */
const visibleDoc = (id: string) => fc.record({ id: fc.constant(id), title: fc.constantFrom('1', '2', 'a'), n: fc.constantFrom(0, 1, 2, 3), owner: fc.constantFrom(USER_IDS.alice, USER_IDS.bob) });
const unseen = fc.record({ ssn: fc.constantFrom('1', '2', '9'), pin: fc.constantFrom('1', '2', '9'), note: fc.constantFrom('1', '9') }, { requiredKeys: [] });

describe('read policy: no query tells apart two worlds that differ only in what the reader cannot see', { timeout: 600_000 }, () => {
  const worlds: DeploydServer[] = [];
  const readers: Record<string, Record<string, string>>[] = [];
  const files = {
    'resources/cards/get.js': `hide('ssn'); hide(['p', 'in'].join(''));`,
  };
  const props = { title: { type: 'string' }, n: { type: 'number' }, ssn: { type: 'string' }, pin: { type: 'string' }, note: { type: 'string', hidden: true }, owner: { type: 'string' } };
  const configs = {
    users: { type: 'UserCollection' },
    // Every document readable; ssn and pin hidden by get.js, note declared hidden.
    cards: { type: 'Collection', properties: props },
    // Only the owner's documents; no hook.
    diaries: { type: 'Collection', properties: props, rules: { read: 'owner', update: 'owner', create: 'users', delete: 'owner' } },
  };

  before(async () => {
    for (let i = 0; i < 2; i++) {
      const world = await open(makeApp(configs, files));
      worlds.push(world);
      const users = await handle(world, 'users');
      await users.insert({ id: USER_IDS.bob, username: 'bob', password: await hashPassword(PASSWORDS.bob) });
      const login = await call(world, 'POST', '/users/login', { username: 'bob', password: PASSWORDS.bob });
      assert.equal(login.status, 200, login.text);
      readers.push({ bob: bearer(login.body.id), anonymous: {} });
    }
  }, { timeout: 60_000 });

  after(async () => {
    await Promise.all(worlds.map((w) => w.close()));
  }, { timeout: 30_000 });

  const request = (world: DeploydServer, headers: Record<string, string>, collection: string, { endpoint, id }: Ask, query: Record<string, unknown>) => {
    const qs = `?${encodeURIComponent(JSON.stringify(query))}`;
    switch (endpoint) {
      case 'list': return call(world, 'GET', `/${collection}${qs}`, undefined, headers);
      case 'query': return call(world, 'POST', `/${collection}/query`, { query }, headers);
      case 'count': return call(world, 'GET', `/${collection}/count${qs}`, undefined, headers);
      case 'one': return call(world, 'GET', `/${collection}/${id}${qs}`, undefined, headers);
      case 'put': return call(world, 'PUT', `/${collection}/${id}${qs}`, {}, headers);
    }
  };

  it('cards: hidden fields (by get.js, by a computed name, declared) cannot be learned by filter, sort, projection or paging', async () => {
    await fc.assert(fc.asyncProperty(
      fc.tuple(visibleDoc('c000000000000001'), visibleDoc('c000000000000002')),
      fc.tuple(unseen, unseen), fc.tuple(unseen, unseen),
      fc.constantFrom('bob', 'anonymous'), ask, filter, options,
      async (docs, hiddenA, hiddenB, reader, what, conditions, opts) => {
        const answers: string[] = [];
        for (const [i, world] of worlds.entries()) {
          const store = await handle(world, 'cards');
          await store.remove({ fields: {} });
          const hidden = i === 0 ? hiddenA : hiddenB;
          for (const [j, doc] of docs.entries()) await store.insert({ ...doc, ...hidden[j] });
          const res = await request(world, readers[i][reader], 'cards', what, { ...conditions, ...opts });
          answers.push(`${res.status} ${res.text}`);
        }
        assert.equal(answers[1], answers[0], `${what.endpoint} ${JSON.stringify({ ...conditions, ...opts })}`);
      },
    ), { numRuns: RUNS });
  });

  it('diaries ("owner" reads): other users\' documents — their number, ids and every field — cannot be learned', async () => {
    const theirs = (prefix: string) => fc.array(fc.record({ title: fc.constantFrom('1', '2'), n: fc.constantFrom(0, 3), ssn: fc.constantFrom('1', '9') }), { maxLength: 3 })
      .map((list) => list.map((d, k) => ({ ...d, id: `${prefix}00000000000000${k + 1}`, owner: USER_IDS.alice })));
    await fc.assert(fc.asyncProperty(
      fc.array(visibleDoc('x').map((d) => ({ ...d, owner: USER_IDS.bob })), { maxLength: 2 }),
      theirs('d'), theirs('d'),
      fc.constantFrom('bob', 'anonymous'), ask, filter, options,
      async (mine, aliceA, aliceB, reader, what, conditions, opts) => {
        const answers: string[] = [];
        for (const [i, world] of worlds.entries()) {
          const store = await handle(world, 'diaries');
          await store.remove({ fields: {} });
          for (const [k, doc] of mine.entries()) await store.insert({ ...doc, id: `c00000000000000${k + 1}` });
          for (const doc of i === 0 ? aliceA : aliceB) await store.insert(doc);
          const res = await request(world, readers[i][reader], 'diaries', what, { ...conditions, ...opts });
          answers.push(`${res.status} ${res.text}`);
        }
        assert.equal(answers[1], answers[0], `${what.endpoint} ${JSON.stringify({ ...conditions, ...opts })}`);
      },
    ), { numRuns: RUNS });
  });
});
