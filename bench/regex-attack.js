/**
 * The regex attack of issue #12, measured: `^(a+)+$` against stored "aaaa…a!" strings (2^n steps for
 * a backtracking engine, one linear pass for RE2), side by side with a plain `^a` query on the same
 * documents, while /health is asked over and over meanwhile. Not a paired throughput benchmark: a
 * measurement that README cites.
 *
 *   node --no-node-snapshot bench/regex-attack.js        (build first: npx tsc -p .)
 * Env: LENGTH (default 40) characters of 'a' before the '!'; DOCS (default 200) such documents.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createServer } from '../dist/src/server.js';

const LENGTH = Number(process.env.LENGTH ?? 40);
const DOCS = Number(process.env.DOCS ?? 200);

const app = fs.mkdtempSync(path.join(os.tmpdir(), 'deployd-regex-bench-'));
fs.mkdirSync(path.join(app, 'resources', 'texts'), { recursive: true });
fs.writeFileSync(path.join(app, 'resources', 'texts', 'config.json'), JSON.stringify({ type: 'Collection', properties: { s: { type: 'string' } } }));
const server = await createServer({ appDir: app, port: 0, host: '127.0.0.1', masterKey: 'k'.repeat(32), logLevel: 'silent', watch: false });
const url = (await server.listen()).replace('localhost', '127.0.0.1');

for (let i = 0; i < DOCS; i++) {
  await fetch(`${url}/texts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ s: `${'a'.repeat(LENGTH)}!` }) });
}

async function timed(pattern) {
  const healthMs = [];
  let done = false;
  const health = (async () => {
    while (!done) {
      const t = performance.now();
      await fetch(`${url}/health`);
      healthMs.push(performance.now() - t);
    }
  })();
  const t = performance.now();
  const res = await fetch(`${url}/texts?s[$regex]=${encodeURIComponent(pattern)}`);
  const queryMs = performance.now() - t;
  const matched = (await res.json()).length;
  done = true;
  await health;
  healthMs.sort((a, b) => a - b);
  return { pattern, status: res.status, matched, queryMs, healthCalls: healthMs.length, healthMaxMs: healthMs.at(-1) };
}

const rows = [];
for (let round = 0; round < 3; round++) {
  rows.push(await timed('^(a+)+$'), await timed('^a'));
}
await server.close();
fs.rmSync(app, { recursive: true, force: true });

console.log(`${DOCS} documents of ${LENGTH} × "a" + "!", 3 rounds (node ${process.version}, load ${os.loadavg()[0].toFixed(2)}):`);
console.log('| pattern | status | matched | query ms | /health answers meanwhile | slowest /health ms |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(`| \`${r.pattern}\` | ${r.status} | ${r.matched} | ${r.queryMs.toFixed(1)} | ${r.healthCalls} | ${r.healthMaxMs?.toFixed(1) ?? '–'} |`);
