/**
 * The table of `make bench peers` (bench/peers.js): per row, the median of the rounds for us and
 * for PocketBase, the spread (min–max) beside it, us ÷ PB, and which side is ahead. Pure functions:
 * test/bench-peers.test.ts checks them without running a server.
 */

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function formatValue(value, unit) {
  if (unit === 'ms') return value.toFixed(2);
  if (unit === 'MiB') return value.toFixed(1);
  if (unit === 'µs') return value.toFixed(1);
  return Math.round(value).toLocaleString('en-US');
}

/** "2,160 (2,100–2,220)": the median, then the range over the rounds when there are several. */
export function summary(values, unit) {
  const mid = formatValue(median(values), unit);
  if (values.length < 2) return mid;
  const lo = formatValue(Math.min(...values), unit);
  const hi = formatValue(Math.max(...values), unit);
  return lo === hi ? mid : `${mid} (${lo}–${hi})`;
}

/**
 * One line per metric: `metric` is { label, unit, better: 'higher' | 'lower' }, `us` and `pb` the
 * per-round values. A side with no values (it failed) prints FAILED and no ratio.
 */
export function tableLine(metric, us, pb) {
  if (us.length === 0 || pb.length === 0) {
    return [metric.label, us.length ? summary(us, metric.unit) : 'FAILED', pb.length ? summary(pb, metric.unit) : 'FAILED', '', ''];
  }
  const ratio = median(us) / median(pb);
  const ahead = ratio === 1 ? 'even' : (ratio > 1) === (metric.better === 'higher') ? 'us' : 'PocketBase';
  return [`${metric.label}, ${metric.unit}`, summary(us, metric.unit), summary(pb, metric.unit), `${ratio.toFixed(2)}×`, ahead];
}

export function markdownTable(header, lines) {
  const row = (cells) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [row(header), `|${header.map((_, i) => (i === 0 || i === header.length - 1 ? '---' : '---:')).join('|')}|`, ...lines.map(row)].join('\n');
}
