/**
 * The JavaScript hook worker pool (src/hooks/js/js-runner.ts), with real worker processes and
 * isolates: the pool starts with one worker and grows under load, an idle pool shrinks to one
 * worker and grows back without failing a call; the warm spare starts only once it is needed (every
 * worker stalled, or a worker died) and then takes a dead worker's place; each worker's memory and
 * each isolate's heap are reported, by `memory()` and in `/metrics`.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { JsHookRunner } from '../src/hooks/js/js-runner.js';
import type { EventContext } from '../src/hooks/protocol.js';
import { eventually, makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, trace() {}, fatal() {}, silent() {}, level: 'silent', child() { return quiet; } } as unknown as FastifyBaseLogger;

// 'spin' runs into the time limit: its worker is stalled meanwhile.
const VALIDATE = "if (this.title === 'spin') { while (true) {} } if (!this.title) error('title', 'is required'); this.checked = true;";

/** A stalled worker is one on a call for longer than this (js-runner.ts STALLED_MS, with a margin). */
const STALL_MS = 200;

/** Batches of concurrent calls until `n` workers serve; every call is answered. */
async function growTo(pool: JsHookRunner, n: number): Promise<number> {
  let batches = 0;
  const deadline = Date.now() + 40_000;
  while (pool.status().workers.filter((w) => w.ready).length < n && Date.now() < deadline) {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.run(validate(`load ${batches}-${i}`))));
    for (const r of results) {
      assert.equal(r.cancel, undefined, JSON.stringify(r.cancel));
      assert.equal(r.data.checked, true);
    }
    batches++;
  }
  return batches;
}

/**
 * Registers before/after hooks for a pool of one serving worker (no spare yet) with validate.js
 * loaded; the returned function gives the pool inside the tests.
 */
function oneWorkerPool({ timeoutMs = 15_000, prepare }: { timeoutMs?: number; prepare?: (pool: JsHookRunner) => Promise<void> } = {}): () => JsHookRunner {
  let runner: JsHookRunner | undefined;
  before(async () => {
    runner = new JsHookRunner(1, quiet);
    const errors = await runner.load('todos', [{ event: 'validate', file: 'todos/validate.js', source: VALIDATE }], { timeoutMs, memoryMb: 32 });
    assert.deepEqual(errors, {});
    await prepare?.(runner);
  }, { timeout: 60_000 });
  after(() => runner?.close(), { timeout: 30_000 });
  return () => runner!;
}

/** Roles of the workers that answer `memory()`, sorted. */
async function rolesOf(pool: JsHookRunner): Promise<string[]> {
  return (await pool.memory()).map((m) => m.role).sort();
}

/** Makes every serving worker stall on a spinning call, then sends one more: the spare starts. */
async function stallOnce(pool: JsHookRunner): Promise<void> {
  const spinning = Array.from({ length: 4 }, () => pool.run(validate('spin')));
  await sleep(STALL_MS);
  const served = await pool.run(validate('while stalled'));
  assert.equal(served.data.checked, true);
  for (const result of await Promise.all(spinning)) assert.match(JSON.stringify(result), /timed out/);
}

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

  it('starts with one worker and no spare: a quiet app pays for one process', { timeout: 30_000 }, async () => {
    const pool = runner!;
    assert.equal(pool.status().workers.length, 1);
    assert.deepEqual(await rolesOf(pool), ['worker']);
  });

  it('an idle pool shrinks to one worker, then grows back under concurrent calls, answering every call', { timeout: 90_000 }, async () => {
    const pool = runner!;
    await growTo(pool, 2);
    assert.equal(pool.status().workers.length, 2);
    await eventually(() => pool.status().workers.length === 1, 10_000, 'the idle pool to shrink to one worker');
    const one = await pool.run(validate('after idle'));
    assert.equal(one.cancel, undefined);
    assert.equal(one.data.checked, true);
    // Calls keep coming in batches until a second worker has joined (its hooks loaded first; a cold
    // worker start takes seconds on a busy machine).
    const batches = await growTo(pool, 2);
    assert.equal(pool.status().workers.length, 2, `a second worker joined after ${batches} batches of 20 calls`);
    const failed = await pool.run(validate(''));
    assert.deepEqual(failed.errors, { title: 'is required' });
  });

  it('memory() reports each worker\'s RSS and the heap of its isolate for the hook set', { timeout: 60_000 }, async () => {
    // The spare is reported too, once it has started; it loads its hooks in the background, so
    // wait until both answer (a busy machine is slow).
    await stallOnce(runner!);
    let memory = await runner!.memory();
    await eventually(async () => {
      memory = await runner!.memory();
      return memory.some((m) => m.role === 'spare') && memory.some((m) => m.role === 'worker');
    }, 30_000, 'a serving worker and the spare to answer');
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

  it('with an RSS per worker process and a heap per isolate', { timeout: 60_000 }, async () => {
    assert.equal((await server!.post('/todos', { title: 'one' })).status, 200);
    // A request while the only worker spins starts the spare.
    const spinning = server!.post('/todos', { title: 'spin' });
    await sleep(STALL_MS);
    assert.equal((await server!.post('/todos', { title: 'two' })).status, 200);
    assert.equal((await spinning).status, 500);
    const scrape = () => server!.get('/metrics', { authorization: `Bearer ${TOKEN}` });
    await eventually(async () => (await scrape()).text.includes('role="spare"'), 30_000, 'the spare in /metrics');
    const res = await scrape();
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

describe('the warm spare starts once it is needed', () => {
  const runner = oneWorkerPool();

  it('a worker killed before any spare exists is restarted; calls queued on it that had not begun are sent again and served', { timeout: 60_000 }, async () => {
    const pool = runner();
    assert.deepEqual(await rolesOf(pool), ['worker']);
    const [first] = pool.status().workers;
    // Queued on the one worker behind each other; none of them can begin before the kill is handled.
    const queued = Array.from({ length: 4 }, (_, i) => pool.run(validate(`queued ${i}`)));
    process.kill(first.pid!, 'SIGKILL');
    const results = await Promise.all(queued);
    // At most the first had begun (then it fails, naming the crash); the others were sent again.
    const failed = results.filter((r) => r.cancel);
    assert.ok(failed.length <= 1, JSON.stringify(failed));
    for (const r of failed) assert.match(r.cancel!.message, /hook process crashed/);
    for (const r of results.slice(1)) assert.equal(r.data.checked, true, JSON.stringify(r));
    assert.equal(pool.status().workers.length, 1);
    assert.notEqual(pool.status().workers[0].pid, first.pid);
    // A worker has died: from now on a spare stands by.
    await eventually(async () => (await rolesOf(pool)).join() === 'spare,worker', 30_000, 'the spare after the first crash');
  });

  it('from then on the spare takes a dead worker\'s place at once, and a new spare starts behind it', { timeout: 60_000 }, async () => {
    const pool = runner();
    const spare = (await pool.memory()).find((m) => m.role === 'spare')!;
    const [worker] = pool.status().workers;
    process.kill(worker.pid!, 'SIGKILL');
    await eventually(() => pool.status().workers.some((w) => w.pid === spare.pid), 10_000, 'the spare to serve');
    assert.deepEqual(pool.status().workers.map((w) => w.pid), [spare.pid]);
    assert.equal((await pool.run(validate('after takeover'))).data.checked, true);
    await eventually(async () => {
      const memory = await pool.memory();
      return memory.length === 2 && memory.some((m) => m.role === 'spare' && m.pid !== spare.pid);
    }, 30_000, 'a new spare');
  });
});

describe('a stalled pool starts its spare', () => {
  const runner = oneWorkerPool();

  it('a call made while the only worker spins is served by the spare, started then, before the spinning call ends', { timeout: 60_000 }, async () => {
    const pool = runner();
    assert.deepEqual(await rolesOf(pool), ['worker']);
    let spinEnded = false;
    const spinning = pool.run(validate('spin')).finally(() => { spinEnded = true; });
    await sleep(STALL_MS);
    const served = await pool.run(validate('while spinning'));
    assert.equal(served.data.checked, true);
    assert.equal(spinEnded, false, 'the call waited for the spinning one (15 s limit)');
    assert.equal(pool.status().workers.length, 1, 'the spare serves without joining the pool');
    // The worker is still spinning, so only the spare answers memory() now.
    assert.deepEqual(await rolesOf(pool), ['spare']);
    void spinning;
  });
});

describe('a dead or wedged hook worker: the run it was on fails, the runs queued behind it are sent again', () => {
  // One serving worker and its warm spare (started by stalling the pool once): every call below
  // queues on the same worker. 'spin' loops until the 400 ms limit.
  const runner = oneWorkerPool({
    timeoutMs: 400,
    prepare: async (pool) => {
      await stallOnce(pool);
      await eventually(async () => (await pool.memory()).some((m) => m.role === 'spare'), 30_000, 'the warm spare');
    },
  });

  async function queueBehindSpin(pool: JsHookRunner) {
    const spin = pool.run(validate('spin'));
    const behind = [1, 2, 3].map((i) => pool.run(validate(`behind ${i}`)));
    return { spin, behind };
  }

  it('killed: the head run fails as crashed, each run behind it is answered by the spare', { timeout: 60_000 }, async () => {
    const pool = runner();
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
    const pool = runner();
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

describe('a hook set loaded while a worker is being added', () => {
  let pool: JsHookRunner | undefined;
  after(() => pool?.close(), { timeout: 30_000 });

  it('reaches that worker before it serves, even when the serving worker answers the load only after the new one joined', { timeout: 60_000 }, async () => {
    // The only serving worker spins until its time limit: it answers the next load only then.
    const LIMIT_MS = 6000;
    pool = new JsHookRunner(2, quiet);
    assert.deepEqual(await pool.load('todos', [{ event: 'validate', file: 'todos/validate.js', source: VALIDATE }], { timeoutMs: LIMIT_MS, memoryMb: 32 }), {});
    const spinning = pool.run(validate('spin'));
    // A second run finds every serving worker with a call waiting: a worker is added (its hooks load first).
    const queued = pool.run(validate('queued behind the spin'));
    const loadingOther = pool.load('other', [{ event: 'validate', file: 'other/validate.js', source: 'this.other = true;' }], { timeoutMs: LIMIT_MS, memoryMb: 32 });
    let otherLoaded = false;
    void loadingOther.then(() => { otherLoaded = true; });
    await eventually(() => pool!.status().workers.filter((w) => w.ready).length === 2, LIMIT_MS + 10_000, 'the added worker to serve');
    assert.equal(otherLoaded, false, 'the added worker joined while the load of "other" still waited on the spinning one (the race this checks)');
    assert.deepEqual(await loadingOther, {});
    assert.match(JSON.stringify(await spinning), /timed out/);
    assert.equal((await queued).data.checked, true);
    // Every serving worker holds the set, and runs of it succeed wherever they land.
    const hookSets = (await pool.memory()).filter((m) => m.role === 'worker').map((m) => m.isolates.map((i) => i.hookSet).sort());
    assert.deepEqual(hookSets, [['other', 'todos'], ['other', 'todos']]);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pool!.run({ ...validate(`other ${i}`), collection: 'other' }, undefined, 'other')));
    for (const result of results) {
      assert.equal(result.cancel, undefined, JSON.stringify(result.cancel));
      assert.equal(result.data.other, true);
    }
  });
});
