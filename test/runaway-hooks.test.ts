/**
 * A runaway hook hurts only the requests running it: after a hook hits its time or memory limit,
 * or crashes its worker process, the next request to the same collection is served, and a request
 * that was waiting on the same worker without having started user code is retried once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';

const POST_JS = `
if (this.title === 'spin') { while (true) {} }
if (this.title === 'oom') { var a = []; while (true) a.push(new Array(100000).fill(a.length)); }
if (this.title === 'crash') { var m = new Map(); for (var i = 0; ; i++) m.set(i, { i: i, s: 'x' + i }); }
this.served = true;
`;

describe('runaway hooks fail only themselves', () => {
  let app: string;
  let server: TestServer | undefined;

  before(async () => {
    // One collection per runaway kind: a short time limit for the loop; for the memory bombs a long
    // one, so that they meet the memory limit first even on a busy machine.
    const schema = (hooks: Record<string, number>) => ({ ...TODOS, properties: { ...TODOS.properties, served: { type: 'boolean' } }, hooks });
    app = makeApp({ spin: schema({ timeoutMs: 500 }), oom: schema({ timeoutMs: 5000, memoryMb: 32 }), crash: schema({ timeoutMs: 5000, memoryMb: 32 }) }, {
      'resources/spin/post.js': POST_JS,
      'resources/oom/post.js': POST_JS,
      'resources/crash/post.js': POST_JS,
    });
    server = await startServer(app);
    for (const coll of ['spin', 'oom', 'crash']) assert.equal((await server.post(`/${coll}`, { title: 'warm' })).status, 200);
  }, { timeout: 60_000 });

  after(async () => {
    await server?.stop();
    if (app) fs.rmSync(app, { recursive: true, force: true });
  }, { timeout: 60_000 });

  for (const [title, what, pattern] of [
    ['spin', 'its time limit', /timed out/],
    ['oom', 'its memory limit', /memory limit|crashed/],
    ['crash', 'a crash of its worker process', /memory limit|crashed/],
  ] as const) {
    it(`after ${what}, the next requests to the collection are served`, { timeout: 60_000 }, async () => {
      const res = await server!.post(`/${title}`, { title });
      assert.equal(res.status, 500, res.text);
      assert.match(res.body.message, pattern);
      assert.match(res.body.message, new RegExp(`${title}/post\\.js`));
      for (let i = 0; i < 4; i++) {
        const next = await server!.post(`/${title}`, { title: `after-${title}-${i}` });
        assert.equal(next.status, 200, `request ${i} after ${title}: ${next.text}`);
        assert.equal(next.body.served, true);
      }
    });

    it(`requests sent while a hook runs into ${what} are served`, { timeout: 60_000 }, async () => {
      const runaway = server!.post(`/${title}`, { title });
      await new Promise((r) => setTimeout(r, 50));
      const innocents = await Promise.all([0, 1, 2, 3].map((i) => server!.post(`/${title}`, { title: `during-${title}-${i}` })));
      for (const res of innocents) assert.equal(res.status, 200, `${res.status} ${res.text}`);
      assert.equal((await runaway).status, 500);
    });
  }
});
