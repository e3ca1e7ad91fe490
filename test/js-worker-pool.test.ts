/**
 * The JavaScript hook worker pool (src/hooks/js/js-runner.ts), with real worker processes and
 * isolates: an idle pool shrinks to one worker and grows back under load without failing a call;
 * each worker's memory and each isolate's heap are reported, by `memory()` and in `/metrics`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { JsHookRunner } from '../src/hooks/js/js-runner.js';
import type { EventContext } from '../src/hooks/protocol.js';
import { eventually, makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, trace() {}, fatal() {}, silent() {}, level: 'silent', child() { return quiet; } } as unknown as FastifyBaseLogger;

const VALIDATE = "if (!this.title) error('title', 'is required'); this.checked = true;";

function validate(title: string): EventContext {
  return {
    collection: 'todos', event: 'validate', method: 'POST', requestEvent: 'POST', data: { title }, previous: null, query: {},
    caller: { isRoot: false, me: null }, internal: false, requestId: `pool-${title}`, success: false,
  } as EventContext;
}

describe('JavaScript hook worker pool', () => {
  let runner: JsHookRunner | undefined;

  before(async () => {
    runner = new JsHookRunner(2, quiet, { idleMs: 300 });
    const errors = await runner.load('todos', [{ event: 'validate', file: 'todos/validate.js', source: VALIDATE }], { timeoutMs: 1000, memoryMb: 32 });
    assert.deepEqual(errors, {});
  }, { timeout: 30_000 });
  after(() => runner?.close(), { timeout: 30_000 });

  it('an idle pool shrinks to one worker, then grows back under concurrent calls, answering every call', { timeout: 60_000 }, async () => {
    const pool = runner!;
    assert.equal(pool.status().workers.length, 2);
    await eventually(() => pool.status().workers.length === 1, 10_000, 'the idle pool to shrink to one worker');
    const one = await pool.run(validate('after idle'));
    assert.equal(one.cancel, undefined);
    assert.equal(one.data.checked, true);
    // Calls keep coming in batches until a second worker has joined (its hooks loaded first; a cold
    // worker start takes seconds on a busy machine).
    let batches = 0;
    const deadline = Date.now() + 40_000;
    while (pool.status().workers.length < 2 && Date.now() < deadline) {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.run(validate(`load ${batches}-${i}`))));
      for (const r of results) {
        assert.equal(r.cancel, undefined, JSON.stringify(r.cancel));
        assert.equal(r.data.checked, true);
      }
      batches++;
    }
    assert.equal(pool.status().workers.length, 2, `a second worker joined after ${batches} batches of 20 calls`);
    const failed = await pool.run(validate(''));
    assert.deepEqual(failed.errors, { title: 'is required' });
  });

  it('memory() reports each worker\'s RSS and the heap of its isolate for the hook set', { timeout: 30_000 }, async () => {
    const memory = await runner!.memory();
    const roles = memory.map((m) => m.role).sort();
    assert.ok(roles.includes('worker') && roles.includes('spare'), roles.join());
    for (const worker of memory) {
      assert.ok(worker.rssBytes > 10 * 1024 * 1024, `worker ${worker.pid}: rss ${worker.rssBytes}`);
      if (process.platform === 'linux') assert.ok(worker.pssBytes! > 0 && worker.pssBytes! <= worker.rssBytes, `pss ${worker.pssBytes}`);
      // One isolate per hook set in each worker, whatever the number of events or requests.
      assert.deepEqual(worker.isolates.map((i) => i.hookSet), ['todos']);
      assert.ok(worker.isolates[0].usedHeapBytes > 0);
      assert.ok(worker.isolates[0].totalHeapBytes >= worker.isolates[0].usedHeapBytes);
    }
  });
});

describe('/metrics reports the hook workers\' memory', () => {
  const TOKEN = 'pool-metrics-token-0123';
  let server: TestServer | undefined;

  before(async () => {
    server = await startServer(makeApp({ todos: TODOS }, { 'resources/todos/validate.js': VALIDATE }), { env: { METRICS_TOKEN: TOKEN }, args: ['--hook-workers', '1'] });
  }, { timeout: 30_000 });
  after(() => server?.stop(), { timeout: 30_000 });

  it('with an RSS per worker process and a heap per isolate', { timeout: 30_000 }, async () => {
    assert.equal((await server!.post('/todos', { title: 'one' })).status, 200);
    const res = await server!.get('/metrics', { authorization: `Bearer ${TOKEN}` });
    assert.equal(res.status, 200, res.text);
    const lines = res.text.split('\n');
    const rss = lines.filter((l) => l.startsWith('dpd_hook_worker_rss_bytes{'));
    // One serving worker and its warm spare.
    assert.equal(rss.length, 2, rss.join('\n'));
    assert.ok(rss.some((l) => l.includes('role="worker"')) && rss.some((l) => l.includes('role="spare"')));
    for (const line of rss) assert.ok(Number(line.split(' ').pop()) > 10 * 1024 * 1024, line);
    const heaps = lines.filter((l) => l.startsWith('dpd_hook_isolate_heap_bytes{'));
    assert.equal(heaps.length, 2, heaps.join('\n'));
    for (const line of heaps) {
      assert.match(line, /hook_set="todos[^"]*"/);
      assert.ok(Number(line.split(' ').pop()) > 0, line);
    }
  });
});

describe('a dead or wedged hook worker: the run it was on fails, the runs queued behind it are sent again', () => {
  // Title 'spin' loops until the time limit; any other title is validated at once.
  const SPIN = "if (this.title === 'spin') { while (true) {} } this.checked = true;";
  let runner: JsHookRunner | undefined;

  before(async () => {
    // One serving worker (and its warm spare): every call below queues on the same worker.
    runner = new JsHookRunner(1, quiet);
    const errors = await runner.load('todos', [{ event: 'validate', file: 'todos/validate.js', source: SPIN }], { timeoutMs: 400, memoryMb: 32 });
    assert.deepEqual(errors, {});
    await eventually(async () => (await runner!.memory()).some((m) => m.role === 'spare'), 30_000, 'the warm spare');
  }, { timeout: 60_000 });
  after(() => runner?.close(), { timeout: 30_000 });

  async function queueBehindSpin(pool: JsHookRunner) {
    const spin = pool.run(validate('spin'));
    const behind = [1, 2, 3].map((i) => pool.run(validate(`behind ${i}`)));
    return { spin, behind };
  }

  it('killed: the head run fails as crashed, each run behind it is answered by the spare', { timeout: 60_000 }, async () => {
    const pool = runner!;
    const [worker] = pool.status().workers;
    const { spin, behind } = await queueBehindSpin(pool);
    process.kill(worker.pid!, 'SIGKILL');
    assert.match((await spin).cancel?.message ?? '', /crashed while running todos\/validate\.js/);
    for (const result of await Promise.all(behind)) {
      assert.equal(result.cancel, undefined, JSON.stringify(result.cancel));
      assert.equal(result.data.checked, true);
    }
    assert.notEqual(pool.status().workers[0].pid, worker.pid);
  });

  it('stopped (SIGSTOP): past the limit and grace the head run times out, the runs behind it are answered elsewhere', { timeout: 60_000 }, async () => {
    const pool = runner!;
    await eventually(async () => (await pool.memory()).some((m) => m.role === 'spare'), 30_000, 'a new warm spare');
    const [worker] = pool.status().workers;
    const { spin, behind } = await queueBehindSpin(pool);
    process.kill(worker.pid!, 'SIGSTOP');
    try {
      assert.equal((await spin).cancel?.message, 'hook timed out: todos/validate.js');
      for (const result of await Promise.all(behind)) {
        assert.equal(result.cancel, undefined, JSON.stringify(result.cancel));
        assert.equal(result.data.checked, true);
      }
    } finally {
      try {
        process.kill(worker.pid!, 'SIGCONT');
      } catch {
        // killed as wedged already
      }
    }
  });
});
