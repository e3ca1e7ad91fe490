/**
 * Commit semantics (README "Hooks: commit semantics"): a write whose hooks cannot all load is
 * refused before anything is stored, with a 5xx naming the file; a write that was stored is never
 * reported as failed (the AfterCommit runtime rows are in go-behaviour.test.ts). And runtime
 * errors name their place: file:line:col in the answer, logged once, the stack only with --dev.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { goBuilt, goRun, slowGo, useGo } from './helpers/go.js';
import { makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';
import { Peer } from './helpers/ws-peer.js';

const BUILD_MS = 600_000;

/** The documents stored in `coll`, hooks skipped (root). */
async function stored(server: TestServer, coll: string): Promise<Array<Record<string, unknown>>> {
  const res = await server.get(`/${coll}?$skipEvents=true`, server.root);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

describe('a write whose hooks cannot load stores nothing', () => {
  let app: string;
  let server: TestServer | undefined;
  let peer: Peer | undefined;

  before(async () => {
    useGo();
    app = makeApp({ jsbroken: TODOS, gobroken: TODOS, marker: TODOS }, {
      'resources/jsbroken/aftercommit.js': `emit('never', {});\nthis.title = ;\n`,
      'resources/gobroken/aftercommit.go': goRun(`\tctx.Data["x"] = undefinedName`),
    });
    server = await startServer(app);
    peer = await Peer.connect(server);
  }, { timeout: BUILD_MS });

  after(async () => {
    peer?.close();
    await server?.stop();
    if (app) fs.rmSync(app, { recursive: true, force: true });
  }, { timeout: 60_000 });

  for (const [coll, file] of [['jsbroken', 'jsbroken/aftercommit.js'], ['gobroken', 'gobroken/aftercommit.go']] as const) {
    it(`${file} does not load: POST, PUT and DELETE answer 500 naming it; nothing is stored or published`, { timeout: BUILD_MS }, async () => {
      const posted = await goBuilt(() => server!.post(`/${coll}`, { title: 'refused' }));
      assert.equal(posted.status, 500, posted.text);
      assert.equal(posted.body.code, 'DPD_ERR_HOOK_LOAD');
      assert.match(posted.body.message, new RegExp(`${file}:\\d+:\\d+`));
      assert.deepEqual(await stored(server!, coll), []);

      // A document stored with hooks skipped (root): updates and deletes of it are refused too.
      const seeded = await server!.post(`/${coll}?$skipEvents=true`, { title: 'seed' }, server!.root);
      assert.equal(seeded.status, 200, seeded.text);
      const put = await server!.put(`/${coll}/${seeded.body.id}`, { title: 'changed' });
      assert.equal(put.status, 500, put.text);
      assert.match(put.body.message, new RegExp(file));
      const del = await server!.del(`/${coll}/${seeded.body.id}`);
      assert.equal(del.status, 500, del.text);
      assert.deepEqual((await stored(server!, coll)).map((d) => d.title), ['seed']);

      // The subscriber saw the root write and the marker, nothing of the refused ones.
      const marker = await server!.post('/marker', { title: coll });
      assert.equal(marker.status, 200, marker.text);
      const events = await peer!.eventsUntil((f) => f.collection === 'marker' && f.document?.title === coll);
      assert.deepEqual(events.map((f) => `${f.type}:${f.action ?? f.event}:${f.document?.title ?? ''}`), [
        `collection_change:created:seed`,
        `collection_change:created:${coll}`,
      ]);
    });
  }
});

describe('a write whose Go hook is still building past the bounded wait stores nothing', () => {
  it('POST answers 503 naming aftercommit.go; nothing is stored; after the build the write goes through', { timeout: BUILD_MS }, async () => {
    useGo();
    const slow = slowGo(6000);
    const app = makeApp({ building: TODOS }, { 'resources/building/aftercommit.go': goRun(`\tctx.AddResponseField("after", true)`) });
    let server: TestServer | undefined;
    try {
      server = await startServer(app, { env: { PATH: `${slow}${path.delimiter}${process.env.PATH}`, DEPLOYD_GO_BUILD_WAIT_MS: '1000' } });
      const early = await server.post('/building', { title: 'too soon' });
      assert.equal(early.status, 503, early.text);
      assert.equal(early.body.code, 'DPD_ERR_HOOK_BUILDING');
      assert.match(early.body.message, /building\/aftercommit\.go is still being built; nothing was stored/);
      assert.deepEqual(await stored(server, 'building'), []);
      const later = await goBuilt(() => server!.post('/building', { title: 'built' }));
      assert.equal(later.status, 200, later.text);
      assert.equal(later.body.after, true);
      assert.deepEqual((await stored(server, 'building')).map((d) => d.title), ['built']);
    } finally {
      await server?.stop();
      fs.rmSync(app, { recursive: true, force: true });
      fs.rmSync(slow, { recursive: true, force: true });
    }
  });
});

describe('runtime errors name their place', () => {
  const files = { 'resources/rt/validate.js': `// line 1\nvar missing;\nif (this.title === 'typo') missing.field = 1;\nif (this.title === 'thrown') throw 'a string';\n` };

  it('a TypeError in validate.js is a 500 with file:line:col, logged once; no stack without --dev', { timeout: 60_000 }, async () => {
    const app = makeApp({ rt: TODOS }, files);
    let server: TestServer | undefined;
    try {
      server = await startServer(app);
      const res = await server.post('/rt', { title: 'typo' });
      assert.equal(res.status, 500, res.text);
      assert.equal(res.body.code, 'DPD_ERR_HOOK_FAILED');
      assert.match(res.body.message, /^rt\/validate\.js:3:\d+: TypeError: /);
      assert.equal(res.body.stack, undefined);
      // A thrown string is Deployd's cancel form (deployd-behaviour.md §1.5): a deliberate 400.
      const thrown = await server.post('/rt', { title: 'thrown' });
      assert.equal(thrown.status, 400, thrown.text);
      assert.equal(thrown.body.message, 'a string');
      assert.deepEqual(await stored(server, 'rt'), []);
      const marker = await server.post('/rt', { title: 'fine' });
      assert.equal(marker.status, 200, marker.text);
      const lines = server.output.split('\n').filter((l) => l.includes('rt/validate.js:3:'));
      assert.equal(lines.length, 1, server.output);
      assert.match(lines[0]!, /"collection":"rt"/);
      assert.match(lines[0]!, /"event":"validate"/);
    } finally {
      await server?.stop();
      fs.rmSync(app, { recursive: true, force: true });
    }
  });

  it('with --dev the answer carries the hook\'s stack, in the user\'s file names (JavaScript and Go)', { timeout: BUILD_MS }, async () => {
    useGo();
    const app = makeApp({ rt: TODOS, gort: TODOS }, { ...files, 'resources/gort/validate.go': goRun(`\tvar m map[string]int\n\tm["x"] = 1`) });
    let server: TestServer | undefined;
    try {
      server = await startServer(app, { args: ['--dev'] });
      const res = await server.post('/rt', { title: 'typo' });
      assert.equal(res.status, 500, res.text);
      assert.match(res.body.stack, /TypeError[^\n]*\n\s+at [^\n]*rt\/validate\.js:3:\d+/);
      assert.doesNotMatch(res.body.stack, /deployd:|node_modules|dist\//);
      const go = await goBuilt(() => server!.post('/gort', { title: 'panics' }));
      assert.equal(go.status, 500, go.text);
      assert.match(go.body.message, /^gort\/validate\.go:3: panic: assignment to entry in nil map$/);
      assert.match(go.body.stack, /gort\/validate\.go:3/);
      assert.doesNotMatch(go.body.stack, /hook_validate\//);
    } finally {
      await server?.stop();
      fs.rmSync(app, { recursive: true, force: true });
    }
  });
});
