/**
 * `make bench peers` (bench/peers.js) is not run in CI: it builds and runs PocketBase for minutes.
 * Its own logic is: the SSE parsing that reads PocketBase's events and the table that compares
 * the two sides. Those are plain functions, checked here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

const bench = new URL('../../bench/peers/', import.meta.url);

interface SseEvent { event: string; data: string; id: string }
const { sseParser } = (await import(new URL('sse.js', bench).href)) as { sseParser: () => { push(text: string): SseEvent[] } };
const report = (await import(new URL('report.js', bench).href)) as {
  median(values: number[]): number;
  summary(values: number[], unit: string): string;
  tableLine(metric: { label: string; unit: string; better: 'higher' | 'lower' }, us: number[], pb: number[]): string[];
  markdownTable(header: string[], lines: string[][]): string;
};

describe('bench peers: reading PocketBase SSE', () => {
  it('yields complete events only, across chunk boundaries', () => {
    const parser = sseParser();
    assert.deepEqual(parser.push('id:a1\nevent:PB_CONNECT\ndata:{"clientId":"a1"}\n\nid:x\nevent:tod'), [
      { id: 'a1', event: 'PB_CONNECT', data: '{"clientId":"a1"}' },
    ]);
    assert.deepEqual(parser.push('os\ndata:{"action":"create"}\n'), []);
    assert.deepEqual(parser.push('\n'), [{ id: 'x', event: 'todos', data: '{"action":"create"}' }]);
  });

  it('joins multi-line data, skips comments and drops one leading space', () => {
    const parser = sseParser();
    assert.deepEqual(parser.push(': keep-alive\ndata: one\ndata:two\n\n'), [{ id: '', event: 'message', data: 'one\ntwo' }]);
  });
});

describe('bench peers: the table', () => {
  it('takes the median of the rounds and shows their spread', () => {
    assert.equal(report.median([3, 1, 2]), 2);
    assert.equal(report.median([4, 1, 2, 3]), 2.5);
    assert.equal(report.summary([2100, 2220, 2160], 'req/s'), '2,160 (2,100–2,220)');
    assert.equal(report.summary([0.9], 'ms'), '0.90');
  });

  it('says which side is ahead, by whether more or less is better', () => {
    const rps = { label: 'POST', unit: 'req/s', better: 'higher' as const };
    const ms = { label: 'p50', unit: 'ms', better: 'lower' as const };
    assert.deepEqual(report.tableLine(rps, [2000], [1000]), ['POST, req/s', '2,000', '1,000', '2.00×', 'us']);
    assert.deepEqual(report.tableLine(ms, [2], [1]).slice(3), ['2.00×', 'PocketBase']);
    assert.deepEqual(report.tableLine(ms, [1], [2]).slice(3), ['0.50×', 'us']);
  });

  it('prints FAILED and no ratio for a side that measured nothing', () => {
    assert.deepEqual(report.tableLine({ label: 'RSS', unit: 'MiB', better: 'lower' }, [100], []), ['RSS', '100.0', 'FAILED', '', '']);
  });

  it('renders a Markdown table with the numbers right-aligned', () => {
    assert.equal(report.markdownTable(['a', 'b', 'c'], [['x', '1', 'y']]), '| a | b | c |\n|---|---:|---|\n| x | 1 | y |');
  });
});
