#!/usr/bin/env node
// The end of `make test`: line and branch coverage of src/ per folder, then the total, from c8's
// coverage/coverage-summary.json (every process the tests started counts: the servers, their hook
// workers, the test files). coverage/index.html has the same per file and per line.
//   node scripts/coverage-summary.mjs [coverage/coverage-summary.json]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = path.resolve(process.argv[2] ?? path.join(root, 'coverage', 'coverage-summary.json'));
if (!fs.existsSync(file)) {
  console.error(`coverage: ${path.relative(root, file)} is missing (c8 wrote no report)`);
  process.exit(1);
}
const summary = JSON.parse(fs.readFileSync(file, 'utf8'));
const src = path.join(root, 'src') + path.sep;

/** src/api/x.ts → src/api/, src/hooks/js/y.ts → src/hooks/js/, src/server.ts → src/. */
const folderOf = (f) => `${path.relative(root, path.dirname(f)).split(path.sep).join('/')}/`;

const folders = new Map();
const sum = { lines: [0, 0], branches: [0, 0] };
for (const [f, counts] of Object.entries(summary)) {
  // Only sources: with source maps, c8 --all also lists the compiled dist/ files it maps as 0%.
  if (f === 'total' || !f.startsWith(src)) continue;
  sum.lines[0] += counts.lines.covered; sum.lines[1] += counts.lines.total;
  sum.branches[0] += counts.branches.covered; sum.branches[1] += counts.branches.total;
  const row = folders.get(folderOf(f)) ?? { files: 0, lines: [0, 0], branches: [0, 0] };
  row.files++;
  row.lines[0] += counts.lines.covered; row.lines[1] += counts.lines.total;
  row.branches[0] += counts.branches.covered; row.branches[1] += counts.branches.total;
  folders.set(folderOf(f), row);
}

const pct = ([covered, total]) => (total === 0 ? '-' : `${((100 * covered) / total).toFixed(1)}%`);
const cells = ([covered, total]) => `${pct([covered, total]).padStart(6)} ${`${covered}/${total}`.padStart(13)}`;
const width = Math.max(...[...folders.keys()].map((k) => k.length), 'total'.length);
const line = (name, files, lines, branches) => `${name.padEnd(width)}  ${String(files).padStart(5)}  ${cells(lines)}  ${cells(branches)}`;

console.log(`\nCoverage of src/ (c8; all processes of the run; per file: coverage/index.html)`);
console.log(`${'folder'.padEnd(width)}  ${'files'.padStart(5)}  ${'lines'.padStart(20)}  ${'branches'.padStart(20)}`);
for (const [name, row] of [...folders].sort(([a], [b]) => a.localeCompare(b))) console.log(line(name, row.files, row.lines, row.branches));
console.log(line('total', [...folders.values()].reduce((n, r) => n + r.files, 0), sum.lines, sum.branches));
