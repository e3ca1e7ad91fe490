/**
 * The JavaScript hook API as a client sees it, through real HTTP against real servers: the order of
 * events (Deployd's, with AfterCommit after the commit and before the response, once per deleted
 * document), which identifiers exist in which event and what each does, go-deployd's
 * `Run(context)`, the seed's AfterCommit response functions, `emit()` and what is published on the
 * event bus, and `$skipEvents`.
 *
 * One app (an in-process server, so the bus can be observed) holds one collection per topic, each
 * with its own hook files; the seed's example also runs on a spawned `bin/deployd`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, makeApp, ROOT, startInProcess, startServer, TODOS, type ApiResponse, type TestServer } from './helpers/server.js';

const ID = /^[0-9a-f]{13}[89ab][0-9a-f]{2}$/;

// ---- hook files -------------------------------------------------------------------------------

/** Every identifier the hook API may provide (Deployd's, plus the seed's response functions). */
const ALL_NAMES = [
  'me', 'isMe', 'query', 'cancel', 'cancelIf', 'cancelUnless', 'emit', 'internal', 'isRoot', 'session', 'ctx', 'console', 'dpd',
  '$addCallback', '$finishCallback', 'data', 'event', 'method', 'error', 'errorIf', 'errorUnless', 'hasErrors', 'hide',
  'unhide', 'previous', 'protect', 'unprotect', 'changed', 'setResponseData', 'addResponseField', 'addResponseMessage',
  'setResponseStatus',
];

/** A hook that reports, through `emit('present', …)`, which identifiers exist (a ReferenceError is absence). */
function presenceHook(label: string): string {
  const probes = ALL_NAMES.map((name) => `try { void ${name}; present.push('${name}'); } catch (e) { if (!(e instanceof ReferenceError)) throw e; }`);
  return `var present = [];\n${probes.join('\n')}\nemit('present', { file: ${label}, names: present });\n`;
}

const FILES: Record<string, string> = {
  // ---- order of events: every hook emits a `step`; write hooks append to `trail`
  'resources/trail/beforerequest.js': `if (!internal) emit('step', { event: 'beforerequest', request: event });`,
  'resources/trail/validate.js': `
this.trail = (this.trail || []).concat('validate');
emit('step', { event: 'validate', hasId: typeof this.id === 'string' });`,
  'resources/trail/post.js': `
this.trail = this.trail.concat('post');
emit('step', { event: 'post', hasId: typeof this.id === 'string' });`,
  'resources/trail/put.js': `
this.trail = this.trail.concat('put');
emit('step', { event: 'put' });`,
  'resources/trail/get.js': `if (!internal) emit('step', { event: 'get', title: this.title });`,
  'resources/trail/delete.js': `emit('step', { event: 'delete', title: this.title });`,
  'resources/trail/aftercommit.js': `
emit('step', { event: 'aftercommit', method: method, title: this.title });
// After the commit: the stored document is already what the request wrote (or gone, on DELETE).
dpd.trail.get(this.id, function (stored, error) {
  if (method === 'DELETE') emit('step', { event: 'aftercommit-check', title: this.title, gone: !stored && error.status === 404 });
  else addResponseField('stored', stored.trail);
});`,

  // ---- which identifiers exist, per event
  'resources/probe/beforerequest.js': presenceHook(`'beforerequest:' + event`),
  'resources/probe/validate.js': presenceHook(`'validate'`),
  'resources/probe/post.js': presenceHook(`'post'`),
  'resources/probe/put.js': presenceHook(`'put'`),
  'resources/probe/get.js': presenceHook(`'get'`),
  'resources/probe/delete.js': presenceHook(`'delete'`),
  'resources/probe/aftercommit.js': presenceHook(`'aftercommit:' + method`),

  // ---- using an identifier the event lacks is a ReferenceError, and the request fails
  'resources/refs/beforerequest.js': `
if (query.use === 'error') error('title', 'no');
if (query.use === 'data') data.title = 'x';
if (query.use === 'hide') hide('title');`,
  'resources/refs/get.js': `
if (query.use === 'previous') this.was = previous;
if (query.use === 'protect') protect('title');
if (query.use === 'method') this.m = method;
if (query.use === 'event') this.e = event;`,
  'resources/refs/post.js': `
if (this.title === 'method') this.m = method;
if (this.title === 'query') this.title = 'q:' + JSON.stringify(query);`,
  'resources/refs/put.js': `if (this.title === 'query') this.title = 'q:' + JSON.stringify(query);`,
  'resources/refs/delete.js': `if (this.title === 'previous') this.was = previous;`,

  // ---- me, isMe, isRoot, internal, query, data, session, console; beforerequest rewrites the query
  'resources/who/beforerequest.js': `
if (query.onlyMine) {
  query.owner = 'alice';
  delete query.onlyMine;
}`,
  'resources/who/get.js': `
this.seenMe = me === undefined ? 'undefined' : me;
this.seenIsMeRoot = isMe('root');
this.seenIsRoot = isRoot;
this.seenInternal = internal === undefined ? 'undefined' : internal;
this.seenQuery = query;
this.dataIsThis = data === this;
this.seenSession = { isRoot: session.isRoot, user: session.user === undefined ? 'undefined' : session.user };
session.joinRoom('somewhere');
console.log('who/get.js ran for', this.id, { title: this.title });
console.error('an error line is only a log line');
if (query.relay) {
  dpd.who.get(this.id, function (nested, err) {
    this.nested = { internal: nested.seenInternal, me: nested.seenMe, isRoot: nested.seenIsRoot };
  });
}`,

  // ---- cancel's forms; cancel in a list drops the item, an Error fails the request
  'resources/cancels/get.js': `
switch (query.form) {
  case 'error': cancel(new Error('broken'));
  case 'errorStatus': cancel(Object.assign(new Error('not yours'), { statusCode: 403 }));
  case 'object': cancel({ message: 'pay first', statusCode: 402 });
  case 'args': cancel('go away', 401);
  case 'none': cancel();
  case 'thrown': throw { message: 'thrown object', statusCode: 418 };
  case 'if': cancelIf(this.n > 1, 'too big', 403); break;
  case 'unless': cancelUnless(this.n > 1, 'too small', 409); break;
}
if (this.title === 'drop' && !query.form) cancel('dropped');
if (this.title === 'crash' && query.crash) null.boom;`,

  // ---- error, errorIf, errorUnless, hasErrors
  'resources/errs/validate.js': `
var before = hasErrors();
errorIf(this.title === 'bad', 'title', 'is bad');
errorUnless(this.n > 0, 'n', 'must be positive');
if (hasErrors()) error('summary', 'hasErrors was ' + before + ', now ' + hasErrors());`,
  'resources/errs/get.js': `if (query.flag) error('title', 'is flagged');`,
  'resources/errs/delete.js': `errorIf(this.title === 'keep', 'title', 'cannot be deleted');`,

  // ---- hide / unhide
  'resources/hides/get.js': `
if (!isRoot) hide('secret');
if (query.toggle) { hide('note'); unhide('note'); }
if (query.missing) hide('nothing');`,
  'resources/hides/post.js': `hide('secret');`,
  'resources/hides/validate.js': `if (this.title === 'hide-in-validate') hide('note');`,
  'resources/hides/put.js': `hide('secret');`,
  'resources/hides/aftercommit.js': `if (this.title === 'spread') setResponseData(Object.assign({ spread: true }, this));`,

  // ---- protect / unprotect
  'resources/guards/post.js': `protect('score');`,
  'resources/guards/put.js': `
protect('owner');
protect('n');
if (this.title === 'unprotect') unprotect('n');
if (this.title === 'write-protected') this.owner = 'mallory';`,

  // ---- previous, changed (deep), method
  'resources/changes/post.js': `
emit('changes', { event: 'post', previous: previous, title: changed('title'), n: changed('n') });`,
  'resources/changes/put.js': `
emit('changes', {
  event: 'put', previous: previous, title: changed('title'), n: changed('n'), tags: changed('tags'),
  meta: changed('meta'), missing: changed('nothing'),
});`,
  'resources/changes/aftercommit.js': `
emit('changes', { event: 'aftercommit', method: method, previous: previous === undefined ? 'undefined' : previous, title: this.title });`,

  // ---- emit's four forms
  'resources/emits/post.js': `
emit('ping');
emit('hello', { title: this.title });
emit('room-a', 'roomy', { n: 1 });
emit(dpd.people, { username: 'targeted-user' }, 'targeted', { ok: true });
if (this.title === 'cancel') cancel('not this one');
if (this.title === 'crash') null.boom;`,
  'resources/emits/put.js': `
emit('put-event', { title: this.title });
if (this.title === 'five') emit('a', 'b', 'c', 'd', 'e');
if (this.title === 'zero') emit();
if (this.title === 'four-bad') emit('room', 'event', 'data', 'extra');`,
  'resources/emits/delete.js': `emit('delete-event', { title: this.title });`,
  'resources/emits/aftercommit.js': `
if (this.title === 'after-fails') {
  emit('lost');
  null.boom;
}`,

  // ---- dpd: callbacks, promises, errors, recursion
  'resources/items/post.js': `this.internalSeen = internal === true;`,
  'resources/calls/post.js': `
var self = this;
if (this.title === 'callbacks') {
  var out = this.out = {};
  dpd.items.post({ title: 'cb', n: 1 }, function (created, err) {
    out.postThis = this === self;
    out.created = created;
    dpd.items.put(created.id, { n: 2 }, function (updated) {
      out.updatedN = updated.n;
      dpd.items.get(created.id, function (got) {
        out.gotN = got.n;
        dpd.items.del(created.id, function (res) {
          out.deleted = res;
          dpd.items.get(created.id, function (missing, error) {
            out.missing = missing;
            out.missingError = { status: error.status, message: error.message };
          });
        });
      });
    });
  });
}
if (this.title === 'promises') {
  this.out = {};
  dpd.items.post({ title: 'pr', n: 5 })
    .then(function (created) {
      this.out.thenThis = this === self;
      this.out.created = created.title;
      return dpd.items.get({ title: 'pr' });
    })
    .then(function (list) {
      this.out.listed = list.map(function (d) { return d.n; });
      return dpd.items.get('0000000000000000');
    })
    .then(function () { this.out.unexpected = true; }, function (err) { this.out.rejected = err.status; });
  dpd.items.get('00000000000000ff').catch(function (err) { this.out.caught = err.message; });
}
if (this.title === 'then-throws') {
  dpd.items.get({}).then(function () { throw 'fail'; });
}
if (this.title === 'callback-throws') {
  dpd.items.get({}, function () { null.boom; });
}
if (this.title === 'skip') {
  dpd.items.post({ title: 'skipped', $skipEvents: true }, function (created) { this.out = created; });
}
if (this.title === 'manual') {
  $addCallback();
  Promise.resolve().then(function () {
    self.out = { manual: true };
    $finishCallback();
  });
}`,
  'resources/fan/get.js': `
dpd.fan.get(function (result, error) {
  this.nested = error ? error.message : result;
});`,
  'resources/rec/get.js': `
dpd.rec.get(function (result, error) {
  this.nested = error ? error.message : result[0];
});`,

  // ---- BeforeRequest's this (the body) on POST and PUT
  'resources/stamps/beforerequest.js': `if (event === 'POST' || event === 'PUT') this.stamp = 'br-' + event;`,

  // ---- console never crashes
  'resources/talk/post.js': `
var o = { a: 1 };
o.self = o;
console.log('circular', o);
console.log(1n, undefined, null, function f() {}, Symbol('s'));
console.warn(new Error('as text'));
console.info({ toJSON: function () { throw new Error('no JSON'); } });`,

  // ---- go-deployd's Run(context)
  'resources/gostyle/beforerequest.js': `
function Run(context) {
  if (context.query.goBlock) context.cancel('blocked by Run', 403);
}`,
  'resources/gostyle/validate.js': `
function Run(context) {
  if (context.data.title === 'invalid') context.error('title', 'is invalid here');
  if (context.data.title === 'invalid' && context.hasErrors()) context.error('other', 'hasErrors() was true');
}`,
  'resources/gostyle/post.js': `
function Run(context) {
  if (context.data.title === 'cancel') context.cancel('not allowed', 409);
  context.log('go post', { title: context.data.title });
  context.data.slug = context.data.title.toLowerCase().replace(/ /g, '-');
  context.hide('secret');
  context.protect('owner');
  context.emit('go-posted', { slug: context.data.slug });
  context.emit('room-1', 'go-room', { slug: context.data.slug });
  context.data.report = {
    keys: Object.keys(context).sort(), method: context.method, event: context.event, collection: context.collection,
    isRoot: context.isRoot, internal: context.internal, me: context.me, query: context.query, previous: context.previous,
    thisIsData: this === context.data,
  };
}`,
  'resources/gostyle/put.js': `
function Run(context) {
  context.protect('owner');
  if (context.data.title === 'Reassigned') context.data = Object.assign({}, context.data, { slug: 'via-reassign', owner: 'mallory' });
  context.data.report = { previousTitle: context.previous.title, event: context.event, method: context.method, isRoot: context.isRoot, me: context.me };
}`,
  'resources/gostyle/aftercommit.js': `
function Run(context) {
  context.addResponseField('after', context.method + ' ' + context.event);
  if (context.data.title === 'Replace Me') context.setResponseData({ replaced: true, id: context.data.id });
  context.addResponseMessage('from Run');
  if (context.method === 'POST') context.setResponseStatus(201);
  context.emit('go-after', { id: context.data.id });
}`,

  'resources/goasync/post.js': `
async function Run(context) {
  const items = await dpd.items.get({ title: 'async-target' });
  context.data.count = items.length;
  const again = await dpd.items.get({ title: 'async-target' });
  context.data.count += again.length;
  if (context.data.title === 'late-cancel') context.cancel('cancelled after await', 422);
  if (context.data.title === 'late-crash') null.boom;
}`,

  // ---- the seed's response functions, Deployd style
  'resources/shaped/aftercommit.js': `
if (this.title === 'replace') setResponseData({ replaced: true, id: this.id });
addResponseField('method', method);
addResponseField('nested', { a: [1, 2] });
addResponseMessage('first');
addResponseMessage('second');
if (this.title === 'created') setResponseStatus(201);
emit('shaped', { id: this.id, method: method });`,

  // ---- $skipEvents
  'resources/skippy/beforerequest.js': `if (event === 'GET' && query.block) cancel('blocked', 403);`,
  'resources/skippy/post.js': `this.hooked = true;`,
  'resources/skippy/get.js': `this.seen = true;`,
  'resources/skippy/aftercommit.js': `addResponseField('after', true);`,
};

/**
 * The seed page's aftercommit.js, read from the page itself (the contract, in shared/ beside the
 * repository, as CI lays it out) so the test runs exactly what users copy, plus the two helpers it
 * calls. Without shared/ (a clone elsewhere), the verbatim copy in hooks-js/examples is used; when
 * both exist, they must agree.
 */
const SEED_BLOCK = /### Response Modification Example\s+```javascript\n([\s\S]*?)```/;
const SEED_PAGE_FILE = path.join(ROOT, '..', 'shared', 'reference', 'seed-websocket-realtime.md');
const EXAMPLE_FILE = path.join(ROOT, 'hooks-js', 'examples', 'response-functions', 'resources', 'todos', 'aftercommit.js');
const exampleCopy = fs.readFileSync(EXAMPLE_FILE, 'utf8');
const fromExample = exampleCopy.slice(exampleCopy.indexOf('// aftercommit.js'), exampleCopy.indexOf('function calculateCompletionPoints'));
const SEED_PAGE = fs.existsSync(SEED_PAGE_FILE) ? fs.readFileSync(SEED_PAGE_FILE, 'utf8') : undefined;
const seedCode = SEED_PAGE ? SEED_BLOCK.exec(SEED_PAGE)![1] : fromExample;
const SEED_AFTERCOMMIT = `${seedCode}
function calculateCompletionPoints(priority) {
    return priority * 10;
}

function getNextTaskSuggestion(userId) {
    return 'Next for ' + userId + ': review the backlog';
}
`;

const plain = (properties: Record<string, string>) => ({
  type: 'Collection',
  properties: Object.fromEntries(Object.entries(properties).map(([name, type]) => [name, { type }])),
});

const CONFIGS = {
  trail: plain({ title: 'string', trail: 'array' }),
  probe: plain({ title: 'string' }),
  refs: plain({ title: 'string' }),
  who: plain({ title: 'string', owner: 'string' }),
  cancels: plain({ title: 'string', n: 'number' }),
  errs: plain({ title: 'string', n: 'number' }),
  hides: plain({ title: 'string', secret: 'string', note: 'string' }),
  guards: plain({ title: 'string', owner: 'string', n: 'number', score: 'number' }),
  changes: plain({ title: 'string', n: 'number', tags: 'array', meta: 'object' }),
  emits: { type: 'Collection', properties: { title: { type: 'string', unique: true } } },
  people: { type: 'UserCollection', properties: {} },
  items: plain({ title: 'string', n: 'number', internalSeen: 'boolean' }),
  calls: plain({ title: 'string', out: 'object' }),
  rec: plain({ title: 'string' }),
  fan: plain({ title: 'string' }),
  gostyle: plain({ title: 'string', slug: 'string', secret: 'string', owner: 'string', report: 'object' }),
  shaped: plain({ title: 'string' }),
  skippy: plain({ title: 'string', hooked: 'boolean' }),
  stamps: plain({ title: 'string', stamp: 'string' }),
  talk: plain({ title: 'string' }),
  goasync: plain({ title: 'string', count: 'number' }),
  todos: TODOS,
};

// ---- harness --------------------------------------------------------------------------------

type Message = Record<string, any>;
let api: TestServer;
let messages: Message[];
let close: () => Promise<void>;
let appDir: string;

before(async () => {
  const app = (appDir = makeApp(CONFIGS, { ...FILES, 'resources/todos/aftercommit.js': SEED_AFTERCOMMIT }));
  const started = await startInProcess(app);
  api = started.api;
  messages = started.messages as Message[];
  close = started.close;
}, { timeout: 120_000 });

after(async () => {
  await close?.();
  if (appDir) fs.rmSync(appDir, { recursive: true, force: true });
}, { timeout: 60_000 });

/** Messages published on the bus from now on (read after the request's response). */
function watch(): () => Message[] {
  const from = messages.length;
  return () => messages.slice(from);
}

/** Custom events of one name, as `data` only. */
function events(list: Message[], name: string): any[] {
  return list.filter((m) => m.type === 'custom_event' && m.event === name).map((m) => m.data);
}

/** A compact view of the bus: `event:<name>` for emits, `<action>:<collection>` for changes. */
function kinds(list: Message[]): string[] {
  return list.map((m) => (m.type === 'custom_event' ? `event:${m.event}` : `${m.action}:${m.collection}`));
}

function ok(res: ApiResponse, status = 200): any {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  return res.body;
}

async function create(collection: string, body: Record<string, unknown>, headers?: Record<string, string>): Promise<any> {
  return ok(await api.post(`/${collection}`, body, headers ?? api.root));
}

const q = (query: Record<string, unknown>) => `?${encodeURIComponent(JSON.stringify(query))}`;

// ---- order of events ------------------------------------------------------------------------

describe('order of events', () => {
  it('POST: BeforeRequest → Validate (no id yet) → Post (with id) → insert → AfterCommit, before the response', async () => {
    const seen = watch();
    const body = ok(await api.post('/trail', { title: 'a' }));
    // AfterCommit read the stored document through dpd (so the insert was committed) and its
    // addResponseField is in the response (so it ran before the response).
    assert.deepEqual(body.trail, ['validate', 'post']);
    assert.deepEqual(body.stored, ['validate', 'post']);
    const list = seen();
    assert.deepEqual(kinds(list), ['event:step', 'event:step', 'event:step', 'created:trail', 'event:step']);
    assert.deepEqual(events(list, 'step'), [
      { event: 'beforerequest', request: 'POST' },
      { event: 'validate', hasId: false },
      { event: 'post', hasId: true },
      { event: 'aftercommit', method: 'POST', title: 'a' },
    ]);
  });

  it('PUT: BeforeRequest → Validate (merged, with id) → Put → update → AfterCommit, before the response', async () => {
    const { id } = await create('trail', { title: 'b' });
    const seen = watch();
    const body = ok(await api.put(`/trail/${id}`, { title: 'b2' }));
    assert.deepEqual(body.trail, ['validate', 'post', 'validate', 'put']);
    assert.deepEqual(body.stored, ['validate', 'post', 'validate', 'put']);
    const list = seen();
    assert.deepEqual(kinds(list), ['event:step', 'event:step', 'event:step', 'updated:trail', 'event:step']);
    assert.deepEqual(events(list, 'step'), [
      { event: 'beforerequest', request: 'PUT' },
      { event: 'validate', hasId: true },
      { event: 'put' },
      { event: 'aftercommit', method: 'PUT', title: 'b2' },
    ]);
  });

  it('GET list: BeforeRequest once, then Get once per document', async () => {
    await create('trail', { title: 'g1' });
    await create('trail', { title: 'g2' });
    const seen = watch();
    const body = ok(await api.get(`/trail${q({ title: { $in: ['g1', 'g2'] }, $sort: { title: 1 } })}`));
    assert.deepEqual(body.map((d: any) => d.title), ['g1', 'g2']);
    const steps = events(seen(), 'step');
    assert.deepEqual(steps[0], { event: 'beforerequest', request: 'GET' });
    assert.deepEqual(steps.slice(1).sort((a, b) => a.title.localeCompare(b.title)), [
      { event: 'get', title: 'g1' },
      { event: 'get', title: 'g2' },
    ]);
  });

  it('DELETE: BeforeRequest → Delete per document → remove → AfterCommit once per deleted document, before the response', async () => {
    await create('trail', { title: 'd1' });
    await create('trail', { title: 'd2' });
    const seen = watch();
    const body = ok(await api.del(`/trail${q({ title: { $in: ['d1', 'd2'] } })}`, api.root));
    assert.deepEqual(body, { count: 2 });
    // Everything below was already on the bus when the response arrived.
    const list = seen();
    assert.deepEqual(events(list.slice(0, 1), 'step'), [{ event: 'beforerequest', request: 'DELETE' }]);
    assert.deepEqual(events(list.slice(1, 3), 'step').map((s) => s.title).sort(), ['d1', 'd2']);
    assert.ok(events(list.slice(1, 3), 'step').every((s) => s.event === 'delete'));
    const rest = list.slice(3);
    assert.equal(rest.length, 6);
    for (const group of [rest.slice(0, 3), rest.slice(3, 6)]) {
      const title = group[0].document?.title;
      assert.deepEqual(kinds(group), ['deleted:trail', 'event:step', 'event:step']);
      assert.deepEqual(group.slice(1).map((m) => m.data), [
        { event: 'aftercommit', method: 'DELETE', title },
        { event: 'aftercommit-check', title, gone: true },
      ]);
    }
    assert.deepEqual([rest[0].document.title, rest[3].document.title].sort(), ['d1', 'd2']);
  });
});

// ---- which identifiers exist ----------------------------------------------------------------

describe('identifiers per event (absent → ReferenceError)', () => {
  const COMMON = ['me', 'isMe', 'query', 'cancel', 'cancelIf', 'cancelUnless', 'emit', 'internal', 'isRoot', 'session', 'ctx', 'console', 'dpd', '$addCallback', '$finishCallback'];
  const DOMAIN = ['data', 'error', 'errorIf', 'errorUnless', 'hasErrors', 'hide', 'unhide'];
  const WRITE = [...DOMAIN, 'previous', 'protect', 'unprotect', 'changed'];
  const EXPECTED: Record<string, string[]> = {
    'beforerequest:GET': [...COMMON, 'event'],
    'beforerequest:DELETE': [...COMMON, 'event'],
    'beforerequest:QUERY': [...COMMON, 'event'],
    'beforerequest:POST': [...COMMON, 'data', 'event'],
    'beforerequest:PUT': [...COMMON, 'data', 'event'],
    get: [...COMMON, ...DOMAIN],
    delete: [...COMMON, ...DOMAIN],
    validate: [...COMMON, ...WRITE],
    post: [...COMMON, ...WRITE],
    put: [...COMMON, ...WRITE],
    'aftercommit:POST': [...COMMON, 'data', 'method', 'previous', 'setResponseData', 'addResponseField', 'addResponseMessage', 'setResponseStatus'],
    'aftercommit:PUT': [...COMMON, 'data', 'method', 'previous', 'setResponseData', 'addResponseField', 'addResponseMessage', 'setResponseStatus'],
    'aftercommit:DELETE': [...COMMON, 'data', 'method', 'previous', 'setResponseData', 'addResponseField', 'addResponseMessage', 'setResponseStatus'],
  };

  it('each event sees exactly its identifiers', async () => {
    const seen = watch();
    const { id } = await create('probe', { title: 'p' });
    ok(await api.put(`/probe/${id}`, { title: 'p2' }));
    ok(await api.get(`/probe/${id}`));
    ok(await api.post('/probe/query', { query: { id } }));
    ok(await api.del(`/probe/${id}`));
    const reported = new Map<string, string[]>();
    for (const r of events(seen(), 'present')) reported.set(r.file, r.names);
    assert.deepEqual([...reported.keys()].sort(), Object.keys(EXPECTED).sort());
    for (const [file, names] of Object.entries(EXPECTED)) {
      assert.deepEqual([...reported.get(file)!].sort(), [...names].sort(), `identifiers in ${file}`);
    }
  });

  it('previous, protect, method or event in get.js fail the request with a ReferenceError (500, naming refs/get.js:line:col)', async () => {
    const { id } = await create('refs', { title: 'r' });
    for (const name of ['previous', 'protect', 'method', 'event']) {
      const res = await api.get(`/refs/${id}?use=${name}`);
      assert.equal(res.status, 500, `${name}: ${res.text}`);
      assert.match(res.body.message, new RegExp(`^refs/get\\.js:\\d+:\\d+: ReferenceError: ${name} is not defined`));
    }
    ok(await api.get(`/refs/${id}`));
  });

  it('error and hide in beforerequest.js, data in beforerequest.js for a GET: ReferenceError', async () => {
    for (const name of ['error', 'hide', 'data']) {
      const res = await api.get(`/refs?use=${name}`);
      assert.equal(res.status, 500, `${name}: ${res.text}`);
      assert.match(res.body.message, new RegExp(`ReferenceError: ${name} is not defined`));
    }
  });

  it('query in post.js and put.js is the URL query (with id on PUT)', async () => {
    const posted = ok(await api.post('/refs?x=1', { title: 'query' }));
    assert.equal(posted.title.slice(0, 2), 'q:');
    assert.deepEqual(JSON.parse(posted.title.slice(2)), { x: '1' });
    const put = ok(await api.put(`/refs/${posted.id}?x=2`, { title: 'query' }));
    assert.deepEqual(JSON.parse(put.title.slice(2)), { x: '2', id: posted.id });
  });

  it('method in post.js and previous in delete.js: ReferenceError', async () => {
    const res = await api.post('/refs', { title: 'method' });
    assert.equal(res.status, 500);
    assert.match(res.body.message, /^refs\/post\.js:\d+:\d+: ReferenceError: method is not defined/);
    const { id } = await create('refs', { title: 'previous' });
    const del = await api.del(`/refs/${id}`);
    assert.equal(del.status, 500);
    assert.match(del.body.message, /ReferenceError: previous is not defined/);
    ok(await api.get(`/refs/${id}`));
  });
});

// ---- identifier semantics -------------------------------------------------------------------

describe('BeforeRequest', () => {
  it('this is the body on POST and PUT: its changes are kept', async () => {
    const posted = ok(await api.post('/stamps', { title: 's' }));
    assert.equal(posted.stamp, 'br-POST');
    const put = ok(await api.put(`/stamps/${posted.id}`, { title: 's2' }));
    assert.equal(put.stamp, 'br-PUT');
    assert.equal(ok(await api.get(`/stamps/${posted.id}`)).stamp, 'br-PUT');
  });
});

describe('console', () => {
  it('logs anything (circular objects, BigInt, Errors, a throwing toJSON) without failing the request', async () => {
    const posted = ok(await api.post('/talk', { title: 'loud' }));
    assert.equal(posted.title, 'loud');
  });
});

describe('me, isMe, isRoot, internal, query, data, session', () => {
  let id: string;
  before(async () => {
    ({ id } = await create('who', { title: 'w', owner: 'bob' }));
  }, { timeout: 120_000 });

  it('for an anonymous HTTP caller', async () => {
    const body = ok(await api.get(`/who/${id}?x=1`));
    assert.equal(body.seenMe, 'undefined');
    assert.equal(body.seenIsMeRoot, false);
    assert.equal(body.seenIsRoot, false);
    assert.equal(body.seenInternal, 'undefined');
    assert.deepEqual(body.seenQuery, { x: '1', id });
    assert.equal(body.dataIsThis, true);
    assert.deepEqual(body.seenSession, { isRoot: false, user: 'undefined' });
  });

  it('for root (the master key): me is {id:"root", username:"root"}', async () => {
    const body = ok(await api.get(`/who/${id}`, api.root));
    assert.deepEqual(body.seenMe, { id: 'root', username: 'root', isRoot: true });
    assert.equal(body.seenIsMeRoot, true);
    assert.equal(body.seenIsRoot, true);
    assert.equal(body.seenInternal, 'undefined');
    assert.deepEqual(body.seenSession, { isRoot: true, user: { id: 'root', username: 'root', isRoot: true } });
  });

  it('internal is true in a request made through dpd, which keeps the caller', async () => {
    const anonymous = ok(await api.get(`/who/${id}?relay=1`));
    assert.deepEqual(anonymous.nested, { internal: true, me: 'undefined', isRoot: false });
    assert.equal(anonymous.seenInternal, 'undefined');
    const root = ok(await api.get(`/who/${id}?relay=1`, api.root));
    assert.deepEqual(root.nested, { internal: true, me: { id: 'root', username: 'root', isRoot: true }, isRoot: true });
  });

  it('beforerequest.js can rewrite the query of a GET', async () => {
    await create('who', { title: 'mine', owner: 'alice' });
    const body = ok(await api.get('/who?onlyMine=1'));
    assert.deepEqual(body.map((d: any) => d.title), ['mine']);
    assert.deepEqual(body[0].seenQuery, { owner: 'alice' });
    assert.equal(ok(await api.get('/who')).length, 2);
  });
});

describe('cancel, cancelIf, cancelUnless', () => {
  let id: string;
  before(async () => {
    ({ id } = await create('cancels', { title: 'one', n: 2 }));
    await create('cancels', { title: 'drop', n: 1 });
    await create('cancels', { title: 'crash', n: 3 });
  }, { timeout: 120_000 });

  it('cancel(new Error(msg)) → 400 with the message', async () => {
    const res = await api.get(`/cancels/${id}?form=error`);
    assert.equal(res.status, 400);
    assert.equal(res.body.message, 'broken');
  });

  it("cancel(new Error(msg)) with a statusCode → that status", async () => {
    const res = await api.get(`/cancels/${id}?form=errorStatus`);
    assert.equal(res.status, 403);
    assert.equal(res.body.message, 'not yours');
  });

  it('cancel({message, statusCode}) → that status and message', async () => {
    const res = await api.get(`/cancels/${id}?form=object`);
    assert.equal(res.status, 402);
    assert.equal(res.body.message, 'pay first');
    assert.equal(res.body.status, 402);
  });

  it('cancel(msg, status) → that status and message; cancel() → 400', async () => {
    const res = await api.get(`/cancels/${id}?form=args`);
    assert.equal(res.status, 401);
    assert.equal(res.body.message, 'go away');
    assert.equal((await api.get(`/cancels/${id}?form=none`)).status, 400);
  });

  it('a thrown plain object is a cancel with its statusCode', async () => {
    const res = await api.get(`/cancels/${id}?form=thrown`);
    assert.equal(res.status, 418);
    assert.equal(res.body.message, 'thrown object');
  });

  it('cancelIf and cancelUnless cancel only on their condition', async () => {
    const big = await api.get(`/cancels/${id}?form=if`); // n = 2 > 1
    assert.equal(big.status, 403);
    assert.equal(big.body.message, 'too big');
    ok(await api.get(`/cancels/${id}?form=unless`));
    // In a list, each cancelled item is dropped: n = 1 by cancelUnless, n = 2 and 3 by cancelIf.
    assert.deepEqual(ok(await api.get('/cancels?form=unless&$sort[title]=1')).map((d: any) => d.title), ['crash', 'one']);
    assert.deepEqual(ok(await api.get('/cancels?form=if&$sort[title]=1')).map((d: any) => d.title), ['drop']);
  });

  it("cancel() in a list's get.js drops that item; 200 with the rest", async () => {
    const list = ok(await api.get('/cancels?$sort[title]=1'));
    assert.deepEqual(list.map((d: any) => d.title), ['crash', 'one']);
  });

  it('an Error in get.js (a TypeError) fails the whole list with a 500', async () => {
    const res = await api.get('/cancels?crash=1');
    assert.equal(res.status, 500);
    assert.equal(res.body.code, 'DPD_ERR_HOOK_FAILED');
    assert.match(res.body.message, /TypeError: Cannot read properties of null/);
  });

  it('cancel(new Error()) in a list fails the whole request', async () => {
    const res = await api.get('/cancels?form=error');
    assert.equal(res.status, 400);
    assert.equal(res.body.message, 'broken');
  });
});

describe('error, errorIf, errorUnless, hasErrors', () => {
  it('collect {errors} and fail with 400; hasErrors() reports them', async () => {
    const bad = await api.post('/errs', { title: 'bad', n: 1 });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.errors, { title: 'is bad', summary: 'hasErrors was false, now true' });
    const both = await api.post('/errs', { title: 'bad', n: 0 });
    assert.equal(both.status, 400);
    assert.deepEqual(both.body.errors, { title: 'is bad', n: 'must be positive', summary: 'hasErrors was false, now true' });
    const fine = ok(await api.post('/errs', { title: 'fine', n: 1 }));
    assert.equal(fine.title, 'fine');
    assert.equal(ok(await api.get(`/errs${q({ title: 'bad' })}`)).length, 0);
  });

  it('error() in delete.js fails with 400 {errors} and deletes nothing (not a TypeError)', async () => {
    const { id } = await create('errs', { title: 'keep', n: 1 });
    const res = await api.del(`/errs/${id}`);
    assert.equal(res.status, 400);
    assert.deepEqual(res.body.errors, { title: 'cannot be deleted' });
    ok(await api.get(`/errs/${id}`));
  });

  it('error() in get.js fails with 400 {errors} (not ignored)', async () => {
    const { id } = await create('errs', { title: 'seen', n: 1 });
    const res = await api.get(`/errs/${id}?flag=1`);
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(res.body.errors, { title: 'is flagged' });
  });
});

describe('hide, unhide', () => {
  it('hide in get.js removes the field from responses; unhide reverses it; a missing field is ignored', async () => {
    const { id } = await create('hides', { title: 'h', secret: 's3', note: 'n' });
    const anonymous = ok(await api.get(`/hides/${id}`));
    assert.deepEqual(anonymous, { id, title: 'h', note: 'n' });
    assert.deepEqual(ok(await api.get('/hides')), [{ id, title: 'h', note: 'n' }]);
    assert.deepEqual(ok(await api.get(`/hides/${id}?toggle=1&missing=1`)), { id, title: 'h', note: 'n' });
    assert.equal(ok(await api.get(`/hides/${id}`, api.root)).secret, 's3');
  });

  it('hide in post.js and put.js hides the field in the response but stores it', async () => {
    const posted = ok(await api.post('/hides', { title: 'p', secret: 'x', note: 'n' }, api.root));
    assert.equal('secret' in posted, false);
    const put = ok(await api.put(`/hides/${posted.id}`, { secret: 'y' }, api.root));
    assert.deepEqual(put, { id: posted.id, title: 'p', note: 'n' });
    assert.equal(ok(await api.get(`/hides/${posted.id}`, api.root)).secret, 'y');
  });

  it("AfterCommit does not see fields hidden by post.js/put.js, so setResponseData({...this}) cannot leak them", async () => {
    const posted = ok(await api.post('/hides', { title: 'spread', secret: 'x', note: 'n' }, api.root));
    assert.deepEqual(posted, { spread: true, id: posted.id, title: 'spread', note: 'n' });
    const put = ok(await api.put(`/hides/${posted.id}`, { secret: 'y' }, api.root));
    assert.deepEqual(put, { spread: true, id: posted.id, title: 'spread', note: 'n' });
    assert.equal(ok(await api.get(`/hides/${posted.id}`, api.root)).secret, 'y');
  });

  it('hide in validate.js also hides the field in the PUT response', async () => {
    const { id } = await create('hides', { title: 'v', secret: 's', note: 'n' });
    const put = ok(await api.put(`/hides/${id}`, { title: 'hide-in-validate' }, api.root));
    assert.deepEqual(put, { id, title: 'hide-in-validate' });
    assert.equal(ok(await api.get(`/hides/${id}`, api.root)).note, 'n');
  });
});

describe('protect, unprotect', () => {
  it('protect in put.js keeps the previous value (also against update commands)', async () => {
    const { id } = await create('guards', { title: 'g', owner: 'alice', n: 1 });
    const put = ok(await api.put(`/guards/${id}`, { owner: 'mallory', n: { $inc: 5 }, title: 'g2' }));
    assert.deepEqual(put, { id, title: 'g2', owner: 'alice', n: 1 });
    assert.deepEqual(ok(await api.get(`/guards/${id}`)), { id, title: 'g2', owner: 'alice', n: 1 });
  });

  it('unprotect lets the change through', async () => {
    const { id } = await create('guards', { title: 'g', owner: 'alice', n: 1 });
    const put = ok(await api.put(`/guards/${id}`, { title: 'unprotect', n: 7, owner: 'mallory' }));
    assert.deepEqual(put, { id, title: 'unprotect', owner: 'alice', n: 7 });
    assert.equal(ok(await api.get(`/guards/${id}`)).n, 7);
  });

  it('assigning a protected property fails the request with a 400 (as in Go)', async () => {
    const { id } = await create('guards', { title: 'g', owner: 'alice', n: 1 });
    const res = await api.put(`/guards/${id}`, { title: 'write-protected' });
    assert.equal(res.status, 400);
    assert.match(res.body.message, /Cannot modify protected property 'owner'/);
    assert.equal(ok(await api.get(`/guards/${id}`)).title, 'g');
  });

  it('protect in post.js: the field is not stored', async () => {
    const posted = ok(await api.post('/guards', { title: 'p', score: 5 }));
    assert.equal('score' in posted, false);
    assert.equal('score' in ok(await api.get(`/guards/${posted.id}`)), false);
  });
});

describe('previous, changed, method', () => {
  it('POST: previous is {} and every present field is changed; AfterCommit: previous undefined, method POST', async () => {
    const seen = watch();
    const { id } = await create('changes', { title: 'c' });
    assert.deepEqual(events(seen(), 'changes'), [
      { event: 'post', previous: {}, title: true, n: false },
      { event: 'aftercommit', method: 'POST', previous: 'undefined', title: 'c' },
    ]);
    assert.match(id, ID);
  });

  it('PUT: previous is the stored document; changed() compares deeply', async () => {
    const { id } = await create('changes', { title: 'c', n: 1, tags: ['a', 'b'], meta: { x: { y: 1 } } });
    const seen = watch();
    ok(await api.put(`/changes/${id}`, { n: 2, tags: ['a', 'b'], meta: { x: { y: 1 } } }));
    const stored = { id, title: 'c', n: 1, tags: ['a', 'b'], meta: { x: { y: 1 } } };
    assert.deepEqual(events(seen(), 'changes'), [
      { event: 'put', previous: stored, title: false, n: true, tags: false, meta: false, missing: false },
      { event: 'aftercommit', method: 'PUT', previous: stored, title: 'c' },
    ]);
    const again = watch();
    ok(await api.put(`/changes/${id}`, { tags: ['b', 'a'], meta: { x: { y: 2 } } }));
    const [put] = events(again(), 'changes');
    assert.deepEqual([put.tags, put.meta, put.n], [true, true, false]);
  });

  it('DELETE: AfterCommit sees method DELETE and previous undefined', async () => {
    const { id } = await create('changes', { title: 'gone' });
    const seen = watch();
    ok(await api.del(`/changes/${id}`));
    assert.deepEqual(events(seen(), 'changes'), [{ event: 'aftercommit', method: 'DELETE', previous: 'undefined', title: 'gone' }]);
  });
});

// ---- emit and the bus -----------------------------------------------------------------------

describe('emit', () => {
  it('four forms: (event), (event, data), (room, event, data), (dpd.users, query, event, data), then the change', async () => {
    const person = await create('people', { username: 'targeted-user', password: 'long enough' });
    const seen = watch();
    const doc = await create('emits', { title: 'e1' });
    const untargeted = () => seen().filter((m) => m.event !== 'targeted');
    assert.deepEqual(untargeted().map(({ timestamp, ...m }) => m), [
      { type: 'custom_event', event: 'ping', data: null },
      { type: 'custom_event', event: 'hello', data: { title: 'e1' } },
      { type: 'custom_event', event: 'roomy', data: { n: 1 }, room: 'room-a' },
      { type: 'collection_change', collection: 'emits', action: 'created', document: doc, userId: 'root' },
    ]);
    // The users form is resolved to user ids (one store query) before it is published.
    await eventually(() => seen().some((m) => m.event === 'targeted'), 5000, 'the targeted emit');
    const { timestamp: _t, ...rest } = seen().find((m) => m.event === 'targeted')!;
    assert.deepEqual(rest, { type: 'custom_event', event: 'targeted', data: { ok: true }, userIds: [person.id] });
    for (const m of seen()) assert.equal(Number.isNaN(Date.parse(m.timestamp)), false);
  });

  it('collection_change is published for updates and deletes, after the hook emits', async () => {
    const { id } = await create('emits', { title: 'e2' });
    const seen = watch();
    const updated = ok(await api.put(`/emits/${id}`, { title: 'e2b' }));
    ok(await api.del(`/emits/${id}`));
    const list = seen();
    assert.deepEqual(kinds(list), ['event:put-event', 'updated:emits', 'event:delete-event', 'deleted:emits']);
    assert.deepEqual(list[1].document, updated);
    assert.deepEqual(list[3].document, updated);
  });

  it('emit() with no or more than four arguments sends nothing; four without a collection fails', async () => {
    const { id } = await create('emits', { title: 'e3' });
    for (const title of ['five', 'zero']) {
      const seen = watch();
      ok(await api.put(`/emits/${id}`, { title }));
      assert.deepEqual(kinds(seen()), ['event:put-event', 'updated:emits'], title);
    }
    const seen = watch();
    const res = await api.put(`/emits/${id}`, { title: 'four-bad' });
    assert.equal(res.status, 500);
    assert.match(res.body.message, /^emits\/put\.js:\d+:\d+: TypeError: emit\(collection, query, event, data\)/);
    assert.deepEqual(seen(), []);
  });

  it('a cancelled request publishes nothing', async () => {
    const seen = watch();
    const res = await api.post('/emits', { title: 'cancel' });
    assert.equal(res.status, 400);
    assert.equal(res.body.message, 'not this one');
    assert.deepEqual(seen(), []);
  });

  it('a request that fails in its hook publishes nothing', async () => {
    const seen = watch();
    assert.equal((await api.post('/emits', { title: 'crash' })).status, 500);
    assert.deepEqual(seen(), []);
  });

  it('emits wait for the commit: a write that fails after post.js emitted publishes nothing', async () => {
    await create('emits', { title: 'dup' });
    const seen = watch();
    const res = await api.post('/emits', { title: 'dup' }); // unique title: the insert fails
    assert.equal(res.status, 409, res.text);
    assert.deepEqual(seen(), []);
  });

  it('a failing AfterCommit does not fail the committed write; its own emits are dropped', async () => {
    const seen = watch();
    const doc = await create('emits', { title: 'after-fails' });
    assert.equal(doc.title, 'after-fails');
    const list = seen();
    assert.deepEqual(kinds(list).filter((k) => k !== 'event:targeted'), ['event:ping', 'event:hello', 'event:roomy', 'created:emits']);
    ok(await api.get(`/emits/${doc.id}`));
  });
});

// ---- dpd ------------------------------------------------------------------------------------

describe('dpd', () => {
  it('get/post/put/del with callbacks (result, error); this = the document; the target runs its hooks as internal', async () => {
    const { out } = await create('calls', { title: 'callbacks' });
    assert.match(out.created.id, ID);
    assert.deepEqual(out, {
      postThis: true,
      created: { id: out.created.id, title: 'cb', n: 1, internalSeen: true },
      updatedN: 2,
      gotN: 2,
      deleted: { count: 1 },
      missing: null,
      missingError: { status: 404, message: 'not found' },
    });
  });

  it('promises: .then runs with this = the document; rejections carry the error body', async () => {
    const { out } = await create('calls', { title: 'promises' });
    assert.deepEqual(out, { thenThis: true, created: 'pr', listed: [5], rejected: 404, caught: 'not found' });
  });

  it('a throw inside a .then or a callback fails the request', async () => {
    const thrown = await api.post('/calls', { title: 'then-throws' });
    assert.equal(thrown.status, 400);
    assert.equal(thrown.body.message, 'fail');
    const crashed = await api.post('/calls', { title: 'callback-throws' });
    assert.equal(crashed.status, 500);
    assert.match(crashed.body.message, /TypeError/);
    assert.equal(ok(await api.get(`/calls${q({ title: { $in: ['then-throws', 'callback-throws'] } })}`)).length, 0);
  });

  it('$skipEvents in a dpd call skips the target\'s hooks when the caller is root, not otherwise', async () => {
    const root = await create('calls', { title: 'skip' }, api.root);
    assert.deepEqual(root.out, { id: root.out.id, title: 'skipped', internalSeen: false });
    const anonymous = await create('calls', { title: 'skip' }, {});
    assert.deepEqual(anonymous.out, { id: anonymous.out.id, title: 'skipped', internalSeen: true });
  });

  it('$addCallback / $finishCallback make the event wait for unwrapped async work', async () => {
    const { out } = await create('calls', { title: 'manual' });
    assert.deepEqual(out, { manual: true });
  });

  it('recursion: the same METHOD /path at most 2 deep (Deployd\'s count); $limitRecursion raises it', async () => {
    const { id } = await create('rec', { title: 'r' });
    const message = 'Recursive call to GET /rec detected';
    const [doc] = ok(await api.get('/rec'));
    assert.equal(doc.id, id);
    assert.equal(doc.nested.id, id);
    assert.equal(doc.nested.nested.id, id);
    assert.equal(doc.nested.nested.nested, message);
    const [deeper] = ok(await api.get('/rec?$limitRecursion=3'));
    assert.equal(deeper.nested.nested.nested.id, id);
    assert.equal(deeper.nested.nested.nested.nested, message);
  });

  it('recursion: sibling calls inside one internal request share its budget, so a fan-out stays bounded', async () => {
    for (let i = 0; i < 6; i++) await create('fan', { title: `f${i}` });
    // Each document's get.js lists /fan again: without a shared budget, 6^8 Get runs (the request
    // deadline would fail this); with it, exactly 8 nested lists under each outer document.
    const list = ok(await api.get('/fan?$limitRecursion=8'));
    assert.equal(list.length, 6);
    const lists = (value: any): number => (Array.isArray(value) ? 1 + value.reduce((n: number, d: any) => n + lists(d.nested), 0) : 0);
    for (const doc of list) assert.equal(lists(doc.nested), 8, JSON.stringify(doc).slice(0, 300));
    const refusals = JSON.stringify(list).split('Recursive call to GET /fan detected').length - 1;
    assert.ok(refusals > 0, 'calls past the budget are refused');
  });
});

// ---- go-deployd's Run(context) --------------------------------------------------------------

describe('go-deployd style: function Run(context)', () => {
  it('gets the context; changes to context.data are kept; hide/protect/emit/log work', async () => {
    const seen = watch();
    const res = await api.post('/gostyle?x=1', { title: 'Hello World', secret: 's', owner: 'o' });
    const body = ok(res, 201);
    assert.equal(body.slug, 'hello-world');
    assert.equal('secret' in body, false);
    assert.equal('owner' in body, false);
    assert.equal(body.after, 'POST aftercommit');
    assert.deepEqual(body.messages, ['from Run']);
    assert.deepEqual(body.report, {
      keys: ['addResponseField', 'addResponseMessage', 'cancel', 'collection', 'data', 'emit', 'error', 'event', 'hasErrors', 'hide', 'internal', 'isRoot', 'log', 'me', 'method', 'previous', 'protect', 'query', 'setResponseData', 'setResponseStatus'],
      method: 'POST', event: 'post', collection: 'gostyle', isRoot: false, internal: false, me: null, query: body.report.query, previous: {}, thisIsData: true,
    });
    const stored = ok(await api.get(`/gostyle/${body.id}`));
    assert.equal(stored.slug, 'hello-world');
    assert.equal(stored.secret, 's');
    assert.equal('owner' in stored, false);
    const list = seen();
    assert.deepEqual(kinds(list), ['event:go-posted', 'event:go-room', 'created:gostyle', 'event:go-after']);
    assert.deepEqual(list[0].data, { slug: 'hello-world' });
    assert.equal(list[1].room, 'room-1');
    assert.deepEqual(list[3].data, { id: body.id });
  });

  it('context.query in post.js is the URL query (as `query` is in every Deployd event)', async () => {
    const body = ok(await api.post('/gostyle?x=1', { title: 'Query' }), 201);
    assert.deepEqual(body.report.query, { x: '1' });
  });

  it('context.previous, context.me and context.isRoot on PUT; protect keeps the stored value', async () => {
    const { id } = ok(await api.post('/gostyle', { title: 'First', owner: 'o' }), 201);
    const body = ok(await api.put(`/gostyle/${id}`, { title: 'Second', owner: 'mallory' }, api.root));
    assert.deepEqual(body.report, { previousTitle: 'First', event: 'put', method: 'PUT', isRoot: true, me: { id: 'root', username: 'root', isRoot: true } });
    assert.equal(body.after, 'PUT aftercommit');
    assert.deepEqual(body.messages, ['from Run']);
    assert.equal(ok(await api.get(`/gostyle/${id}`)).title, 'Second');
  });

  it('assigning a new object to context.data merges it into the document', async () => {
    const { id } = ok(await api.post('/gostyle', { title: 'Before', owner: 'o' }), 201);
    const body = ok(await api.put(`/gostyle/${id}`, { title: 'Reassigned' }));
    assert.equal(body.slug, 'via-reassign');
    assert.equal(body.report.previousTitle, 'Before');
    assert.equal(ok(await api.get(`/gostyle/${id}`)).slug, 'via-reassign');
  });

  it('an async Run(context) is awaited, dpd included; a cancel or error after an await still counts', async () => {
    await create('items', { title: 'async-target', n: 1 });
    const body = ok(await api.post('/goasync', { title: 'a' }));
    assert.equal(body.count, 2);
    const cancelled = await api.post('/goasync', { title: 'late-cancel' });
    assert.equal(cancelled.status, 422);
    assert.equal(cancelled.body.message, 'cancelled after await');
    const crashed = await api.post('/goasync', { title: 'late-crash' });
    assert.equal(crashed.status, 500);
    assert.match(crashed.body.message, /TypeError/);
    assert.equal(ok(await api.get('/goasync')).length, 1);
  });

  it('context.cancel(msg, status), context.error(field, msg) and context.hasErrors()', async () => {
    const seen = watch();
    const cancelled = await api.post('/gostyle', { title: 'cancel' });
    assert.equal(cancelled.status, 409);
    assert.equal(cancelled.body.message, 'not allowed');
    const invalid = await api.post('/gostyle', { title: 'invalid' });
    assert.equal(invalid.status, 400);
    assert.deepEqual(invalid.body.errors, { title: 'is invalid here', other: 'hasErrors() was true' });
    const blocked = await api.get('/gostyle?goBlock=1');
    assert.equal(blocked.status, 403);
    assert.equal(blocked.body.message, 'blocked by Run');
    assert.deepEqual(seen(), []);
  });

  it('context.setResponseData replaces the response', async () => {
    const body = ok(await api.post('/gostyle', { title: 'Replace Me' }), 201);
    assert.deepEqual(body, { replaced: true, id: body.id, after: 'POST aftercommit', messages: ['from Run'] });
  });
});

// ---- the seed's AfterCommit response functions ----------------------------------------------

describe("AfterCommit response functions (the seed's)", () => {
  it('addResponseField, addResponseMessage, setResponseStatus, emit', async () => {
    const seen = watch();
    const res = await api.post('/shaped', { title: 'created' });
    const body = ok(res, 201);
    assert.deepEqual(body, { id: body.id, title: 'created', method: 'POST', nested: { a: [1, 2] }, messages: ['first', 'second'] });
    assert.deepEqual(kinds(seen()), ['created:shaped', 'event:shaped']);
    assert.deepEqual(events(seen(), 'shaped'), [{ id: body.id, method: 'POST' }]);
    assert.deepEqual(ok(await api.get(`/shaped/${body.id}`)), { id: body.id, title: 'created' });
  });

  it('setResponseData replaces the body; fields and messages are added to the replacement', async () => {
    const body = ok(await api.post('/shaped', { title: 'replace' }));
    assert.deepEqual(body, { replaced: true, id: body.id, method: 'POST', nested: { a: [1, 2] }, messages: ['first', 'second'] });
    const put = ok(await api.put(`/shaped/${body.id}`, { title: 'plain' }));
    assert.deepEqual(put, { id: body.id, title: 'plain', method: 'PUT', nested: { a: [1, 2] }, messages: ['first', 'second'] });
  });

  it('on DELETE, the response functions shape the DELETE response', async () => {
    const { id } = await create('shaped', { title: 'doomed' });
    const seen = watch();
    const body = ok(await api.del(`/shaped/${id}`));
    assert.deepEqual(body, { count: 1, method: 'DELETE', nested: { a: [1, 2] }, messages: ['first', 'second'] });
    assert.deepEqual(kinds(seen()), ['deleted:shaped', 'event:shaped']);
  });

  it("the seed page's aftercommit.js, as written, with the seed's curl (root)", async () => {
    const seen = watch();
    const body = ok(await api.post('/todos', { title: 'Critical system maintenance', priority: 9, assignedTo: 'admin' }, api.root));
    assert.match(body.id, ID);
    assert.deepEqual(body, {
      id: body.id, title: 'Critical system maintenance', priority: 9, assignedTo: 'admin', completed: false,
      createdAt: body.createdAt, updatedAt: body.updatedAt,
      messages: ['High priority task created - notifications sent!'],
    });
    assert.deepEqual(kinds(seen()), ['created:todos', 'event:high_priority_task']);
    assert.deepEqual(events(seen(), 'high_priority_task'), [{ taskId: body.id, title: 'Critical system maintenance', assignedTo: 'admin' }]);

    const done = watch();
    const put = ok(await api.put(`/todos/${body.id}`, { status: 'completed' }, api.root));
    assert.deepEqual(put, {
      id: body.id, title: 'Critical system maintenance', priority: 9, assignedTo: 'admin', completed: false, status: 'completed',
      createdAt: body.createdAt, updatedAt: put.updatedAt,
      message: 'Congratulations! Task completed successfully!',
      points: 90,
      nextSuggestion: 'Next for root: review the backlog',
      messages: ['High priority task created - notifications sent!'],
    });
    assert.deepEqual(kinds(done()), ['updated:todos', 'event:task_completed', 'event:high_priority_task']);
    assert.deepEqual(events(done(), 'task_completed'), [{ taskId: body.id, title: 'Critical system maintenance', completedBy: 'root' }]);
  });
});

// ---- $skipEvents ----------------------------------------------------------------------------

describe('$skipEvents', () => {
  it('root: in the body or the query, no hook runs (AfterCommit included)', async () => {
    const posted = ok(await api.post('/skippy', { title: 's', $skipEvents: true }, api.root));
    assert.deepEqual(posted, { id: posted.id, title: 's', hooked: false });
    const listed = ok(await api.get('/skippy?$skipEvents=true&block=1', api.root));
    assert.deepEqual(listed, [{ id: posted.id, title: 's', hooked: false }]);
  });

  it('anyone else: the hooks still run', async () => {
    const posted = ok(await api.post('/skippy', { title: 'n', $skipEvents: true }));
    // The answer is the document as the caller would GET it: the Get hook ran for it too.
    assert.deepEqual(posted, { id: posted.id, title: 'n', hooked: true, seen: true, after: true });
    const blocked = await api.get('/skippy?$skipEvents=true&block=1');
    assert.equal(blocked.status, 403);
    const listed = ok(await api.get('/skippy?$skipEvents=true&$sort[title]=1'));
    assert.deepEqual(listed, [
      { id: posted.id, title: 'n', hooked: true, seen: true },
      { id: listed[1].id, title: 's', hooked: false, seen: true },
    ]);
  });
});

describe('the seed example', () => {
  it('hooks-js/examples carries it verbatim (checked against the seed page when shared/ is beside the repo)', (t) => {
    if (!SEED_PAGE) return t.diagnostic(`no ${SEED_PAGE_FILE}: compared nothing`);
    const block = SEED_BLOCK.exec(SEED_PAGE)![1];
    assert.equal(fromExample.slice(0, block.length), block);
  });
});

// ---- the real binary ------------------------------------------------------------------------

describe('bin/deployd', () => {
  let server: TestServer;
  let app: string;
  before(async () => {
    app = makeApp({ todos: TODOS, talk: plain({ title: 'string' }) }, {
      'resources/todos/aftercommit.js': SEED_AFTERCOMMIT,
      'resources/talk/post.js': `console.warn('hook says', { title: this.title }); console.log('an info line');`,
    });
    server = await startServer(app);
  }, { timeout: 120_000 });
  after(async () => {
    await server?.stop();
    if (app) fs.rmSync(app, { recursive: true, force: true });
  }, { timeout: 60_000 });

  it("runs the seed's example with the seed's curl", async () => {
    const res = await server.post('/todos', { title: 'Critical system maintenance', priority: 9, assignedTo: 'admin' }, { 'X-Master-Key': server.masterKey! });
    const body = ok(res);
    assert.deepEqual(body.messages, ['High priority task created - notifications sent!']);
    const put = ok(await server.put(`/todos/${body.id}`, { status: 'completed' }, server.root));
    assert.equal(put.points, 90);
    assert.equal(put.nextSuggestion, 'Next for root: review the backlog');
  });

  it('console in a hook logs through the server log and does not crash', async () => {
    const posted = ok(await server.post('/talk', { title: 'loud' }));
    assert.equal(posted.title, 'loud');
    await eventually(() => server.output.includes('hook says {\\"title\\":\\"loud\\"}') || server.output.includes('hook says {"title":"loud"}'), 3000, 'the hook log line');
  });
});
