/**
 * Measures what ioredis does when Redis goes away and comes back, with its default options and
 * with the options the real-time history uses (src/events/redis-stream.ts): how long after
 * redis-server answers again the client is 'ready', and what happens to commands in flight when
 * the server dies (SIGKILL). Not a paired benchmark: a measurement that README and the issue cite.
 *
 *   node bench/redis-reconnect.js        (build first: npx tsc -p .; needs redis-server)
 * Env: OUTAGES="1,5,10" seconds Redis stays down per trial.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';
import { connectionOptions } from '../dist/src/events/redis-stream.js';

const OUTAGES = (process.env.OUTAGES ?? '1,5,10').split(',').map(Number);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startRedis(port) {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (;;) {
    const up = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (up) return { proc, at: performance.now() };
    await sleep(5);
  }
}

async function trial(name, options, outageS) {
  const port = await freePort();
  let redis = await startRedis(port);
  const client = new Redis({ port, host: '127.0.0.1', ...options, lazyConnect: false });
  client.on('error', () => {});
  await new Promise((resolve) => client.once('ready', resolve));
  // 1000 commands in flight, then SIGKILL.
  const settled = { ok: 0, rejected: 0 };
  const inflight = Array.from({ length: 1000 }, () => client.incr('n').then(() => settled.ok++, () => settled.rejected++));
  redis.proc.kill('SIGKILL');
  await sleep(outageS * 1000);
  const whileDown = await client.incr('n').then(() => 'answered (queued until reconnect)', (e) => `rejected at once: ${e.message}`);
  redis = await startRedis(port);
  const readyAfter = await new Promise((resolve) => {
    if (client.status === 'ready') return resolve(0);
    client.once('ready', () => resolve(performance.now() - redis.at));
  });
  await sleep(300);
  const unsettled = 1000 - settled.ok - settled.rejected;
  client.disconnect();
  redis.proc.kill('SIGKILL');
  void inflight;
  return { name, outageS, readyAfterMs: Math.round(readyAfter), inFlight: `${settled.ok} answered, ${settled.rejected} rejected, ${unsettled} never settled`, whileDown };
}

const rows = [];
for (const outage of OUTAGES) {
  rows.push(await trial('ioredis defaults', {}, outage));
  rows.push(await trial('deployd-ts (redis-stream.ts)', { ...connectionOptions(), lazyConnect: false }, outage));
}
console.log('| client options | Redis down for | ready after redis-server answers | 1000 commands in flight at SIGKILL | a command while down |');
console.log('|---|---:|---:|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.outageS} s | ${r.readyAfterMs} ms | ${r.inFlight} | ${r.whileDown} |`);
process.exit(0);
