/**
 * The per-request metrics count in plain numbers (src/metrics/request-series.ts) and must read,
 * on /metrics, exactly as prom-client's own counter and histogram would with the same observations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import client from 'prom-client';
import { FastCounter, FastHistogram } from '../src/metrics/request-series.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVED: Array<[string, string, number]> = [['todos', 'POST', 0.0004], ['todos', 'POST', 0.02], ['todos', 'GET', 0.5], ['a "quoted"\\name', 'GET', 3], ['todos', 'POST', 0.001]];

describe('request series', () => {
  it('a histogram renders as prom-client renders the same observations', async () => {
    const theirs = new client.Registry();
    const ours = new client.Registry();
    const reference = new client.Histogram({ name: 'h_seconds', help: 'help "text"', labelNames: ['collection', 'method'], buckets: BUCKETS, registers: [theirs] });
    const fast = new FastHistogram('h_seconds', 'help "text"', ['collection', 'method'], BUCKETS, ours);
    for (const [collection, method, value] of OBSERVED) {
      reference.labels(collection, method).observe(value);
      fast.child(collection, method).observe(value);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  it('a histogram without labels, and a counter, too', async () => {
    const theirs = new client.Registry();
    const ours = new client.Registry();
    const lag = new client.Histogram({ name: 'lag_seconds', help: 'lag', buckets: BUCKETS, registers: [theirs] });
    const count = new client.Counter({ name: 'n_total', help: 'count', labelNames: ['collection', 'method', 'status'], registers: [theirs] });
    const fastLag = new FastHistogram('lag_seconds', 'lag', [], BUCKETS, ours).child();
    const fastCount = new FastCounter('n_total', 'count', ['collection', 'method', 'status'], ours);
    for (const [collection, method, value] of OBSERVED) {
      lag.observe(value);
      fastLag.observe(value);
      count.labels(collection, method, '200').inc();
      fastCount.child(collection, method, '200').inc();
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  it('a reset with the registry zeroes the series; a child handed out before keeps counting', async () => {
    const registry = new client.Registry();
    const child = new FastCounter('r_total', 'r', ['k'], registry).child('a');
    child.inc();
    registry.resetMetrics();
    assert.equal(await registry.metrics(), '# HELP r_total r\n# TYPE r_total counter\nr_total{k="a"} 0\n');
    child.inc();
    assert.equal(await registry.metrics(), '# HELP r_total r\n# TYPE r_total counter\nr_total{k="a"} 1\n');
  });
});
