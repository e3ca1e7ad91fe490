/**
 * `/metrics`: Prometheus text for root or the metrics token only; requests by collection, method
 * and status with latencies; hook runs by language, event and outcome; WebSocket connections,
 * deliveries, drops and backpressure closes; history size; store errors (injected: a MongoDB that
 * is not there); and `--no-metrics` turns it off.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { eventually, freePort, makeApp, startServer, TODOS, type TestServer } from './helpers/server.js';
import { Peer } from './helpers/ws-peer.js';

const TOKEN = 'scraper-token-0123456789';

/** The value of one sample (`name{a="b",...}`), labels in any order; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe('/metrics', () => {
  let server: TestServer;
  const scrape = async () => {
    const res = await server.get('/metrics', { authorization: `Bearer ${TOKEN}` });
    assert.equal(res.status, 200, res.text);
    return res.text;
  };

  before(async () => {
    const app = makeApp({
      todos: TODOS,
      burst: { type: 'Collection', noStore: true, properties: { n: { type: 'number' } } },
    }, {
      'resources/todos/validate.js': `if (this.title === 'no') cancel('not this one', 400); if (this.title === 'boom') throw new Error('boom');`,
      'resources/burst/get.js': `var pad = new Array(50001).join('x'); for (var i = 0; i < 20; i++) emit('big', { i: i, pad: pad });`,
      '.deployd/realtime.json': JSON.stringify({ limits: { maxBufferedBytes: 65536 }, history: { size: 10 } }),
    });
    server = await startServer(app, { env: { METRICS_TOKEN: TOKEN } });
  }, { timeout: 30_000 });
  after(() => server?.stop(), { timeout: 30_000 });

  it('answers only root or the metrics token, with 401 JSON otherwise', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { 'x-master-key': 'wrong' }, { authorization: 'Basic abc' }] as Record<string, string>[]) {
      const res = await server.get('/metrics', headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.body.code, 'DPD_ERR_UNAUTHORIZED');
    }
    const byKey = await server.get('/metrics', server.root);
    assert.equal(byKey.status, 200);
    assert.match(byKey.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(await scrape(), /# TYPE dpd_http_requests_total counter/);
  });

  it('counts requests by collection, method and status, with a latency histogram', async () => {
    assert.equal((await server.post('/todos', { title: 'one' })).status, 200);
    assert.equal((await server.post('/todos', { priority: 'high' })).status, 400);
    assert.equal((await server.get('/todos/nope')).status, 404);
    const text = await scrape();
    assert.equal(sample(text, 'dpd_http_requests_total', { collection: 'todos', method: 'POST', status: '200' }), 1);
    assert.equal(sample(text, 'dpd_http_requests_total', { collection: 'todos', method: 'POST', status: '400' }), 1);
    assert.equal(sample(text, 'dpd_http_requests_total', { collection: 'todos', method: 'GET', status: '404' }), 1);
    assert.equal(sample(text, 'dpd_http_request_duration_seconds_count', { collection: 'todos', method: 'POST' }), 2);
    assert.equal(sample(text, 'dpd_errors_total', { code: 'DPD_ERR_VALIDATION' }), 1);
    // Paths that are no collection share one label: a scanner cannot blow up the series.
    await server.get('/random-1');
    await server.get('/random-2');
    assert.equal(sample(await scrape(), 'dpd_http_requests_total', { collection: 'other', method: 'GET', status: '404' }), 2);
  });

  it('counts hook runs by language, event and outcome', async () => {
    await server.post('/todos', { title: 'no' });
    await server.post('/todos', { title: 'boom' });
    const text = await scrape();
    assert.ok((sample(text, 'dpd_hook_calls_total', { language: 'js', event: 'validate', outcome: 'ok' }) ?? 0) >= 1);
    assert.equal(sample(text, 'dpd_hook_calls_total', { language: 'js', event: 'validate', outcome: 'cancelled' }), 1);
    assert.equal(sample(text, 'dpd_hook_calls_total', { language: 'js', event: 'validate', outcome: 'error' }), 1);
    assert.ok((sample(text, 'dpd_hook_duration_seconds_count', { language: 'js', event: 'validate' }) ?? 0) >= 3);
  });

  it('reports WebSocket connections, deliveries, history, and a slow reader closed for backpressure', { timeout: 60_000 }, async () => {
    const healthy = await Peer.connect(server, 'healthy');
    const slow = await Peer.connect(server, 'slow');
    try {
      let text = await scrape();
      assert.equal(sample(text, 'dpd_ws_connections'), 2);
      const before = sample(text, 'dpd_ws_deliveries_total') ?? 0;
      await server.post('/todos', { title: 'live' });
      await healthy.take((f) => f.type === 'collection_change', 'the change');
      text = await scrape();
      assert.ok((sample(text, 'dpd_ws_deliveries_total') ?? 0) >= before + 2, 'one frame per connection');
      assert.ok((sample(text, 'dpd_realtime_history_events') ?? 0) >= 1);
      assert.ok((sample(text, 'dpd_realtime_history_bytes') ?? 0) > 0);
      assert.equal(sample(text, 'dpd_realtime_bus_up'), 1);
      assert.ok((sample(text, 'dpd_realtime_bus_lag_seconds_count') ?? 0) >= 1);

      // The slow peer stops reading: 1 MB of events per request fills its buffer past the cap.
      (slow.ws as unknown as { _socket: net.Socket })._socket.pause();
      for (let i = 0; i < 60 && sample(await scrape(), 'dpd_ws_backpressure_closes_total') === 0; i++) {
        assert.equal((await server.get('/burst')).status, 200);
      }
      text = await scrape();
      assert.equal(sample(text, 'dpd_ws_backpressure_closes_total'), 1);
      assert.ok((sample(text, 'dpd_ws_drops_total') ?? 0) >= 1);
      assert.equal(sample(text, 'dpd_ws_connections'), 1);
    } finally {
      healthy.close();
      slow.ws.terminate();
    }
  });

  it('reports no Go hook sets for an app without Go', async () => {
    const text = await scrape();
    assert.equal(sample(text, 'dpd_go_hook_sets', { state: 'ready' }), 0);
    assert.equal(sample(text, 'dpd_go_hook_sets', { state: 'failed' }), 0);
  });
});

describe('/metrics, faults and the off switch', () => {
  it('counts store errors when the database cannot be reached', { timeout: 60_000 }, async (t) => {
    const port = await freePort(); // nothing listens there: MongoDB is "down"
    const server = await startServer(makeApp({ todos: TODOS }), { args: ['--db', `mongodb://127.0.0.1:${port}/metrics_test?serverSelectionTimeoutMS=300`] });
    t.after(() => server.stop(), { timeout: 30_000 });
    await eventually(async () => (await server.get('/todos')).status === 503, 10_000, 'a 503 from the store');
    await server.post('/todos', { title: 'x' });
    const text = (await server.get('/metrics', server.root)).text;
    assert.ok((sample(text, 'dpd_store_errors_total', { code: 'DPD_ERR_STORE_UNAVAILABLE' }) ?? 0) >= 2, text.split('\n').filter((l) => l.includes('store')).join('\n'));
    assert.ok((sample(text, 'dpd_http_requests_total', { collection: 'todos', method: 'POST', status: '503' }) ?? 0) >= 1);
  });

  it('--no-metrics (or METRICS=off) serves no /metrics, not even to root', { timeout: 60_000 }, async (t) => {
    const [flag, env] = await Promise.all([
      startServer(makeApp({ todos: TODOS }), { args: ['--no-metrics'] }),
      startServer(makeApp({ todos: TODOS }), { env: { METRICS: 'off' } }),
    ]);
    t.after(() => Promise.all([flag.stop(), env.stop()]), { timeout: 30_000 });
    for (const server of [flag, env]) {
      const res = await server.get('/metrics', server.root);
      assert.equal(res.status, 404);
      assert.equal(res.body.code, 'DPD_ERR_RESOURCE_NOT_FOUND');
    }
  });
});
