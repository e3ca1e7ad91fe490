/**
 * `make run cluster` / `make stop` (scripts/cluster.sh) as a person uses them, on free ports and a
 * temp app: Redis, three instances and HAProxy come up; WebSockets through HAProxy are spread over
 * the instances and each receives a write made on any instance; Ctrl-C (SIGINT to the foreground
 * process group) or `stop` from elsewhere ends every process the start recorded, saying which.
 * Failover: an instance killed with SIGKILL under a steady stream of reads and writes through
 * HAProxy costs at most one failed request, every answer stays JSON (no HAProxy HTML page), and with
 * no instance left HAProxy's own 503 is JSON in the server's error shape.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { RedisServer } from './helpers/redis.js';
import { eventually, freePort, makeApp, ROOT, TODOS } from './helpers/server.js';

const SCRIPT = path.join(ROOT, 'scripts', 'cluster.sh');

interface Running {
  child: ChildProcess;
  env: Record<string, string>;
  pids: Record<string, number>;
  haproxy: string;
  instances: string[];
  exited: Promise<number | null>;
  /** What the start printed. */
  output: string;
}

async function startCluster(): Promise<Running> {
  if (spawnSync('haproxy', ['-v']).status !== 0) throw new Error('haproxy is not installed (make run cluster needs it): run `bash .ci/run`, or `apt-get install haproxy`');
  RedisServer.assertInstalled();
  const app = makeApp({ todos: TODOS });
  const ports = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
  const [clusterPort, redisPort, ...instancePorts] = ports;
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>), LOG_LEVEL: 'warn', APP: app, CLUSTER_DIR: path.join(app, '.cluster'),
    CLUSTER_PORT: String(clusterPort), REDIS_PORT: String(redisPort), INSTANCE_PORTS: instancePorts.join(' '), BIND_HOST: '127.0.0.1',
  };
  delete env.MASTER_KEY;
  delete env.REDIS_URL;
  // Its own process group, as a terminal's foreground job: Ctrl-C signals the whole group.
  const child = spawn('bash', [SCRIPT, 'start'], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => { output += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 90_000;
  while (!output.includes('cluster: up')) {
    if (child.exitCode !== null) throw new Error(`scripts/cluster.sh exited (${child.exitCode}):\n${output}`);
    if (Date.now() > deadline) {
      process.kill(-child.pid!, 'SIGTERM');
      throw new Error(`the cluster did not come up in 90 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const pids: Record<string, number> = {};
  for (const file of fs.readdirSync(env.CLUSTER_DIR).filter((f) => f.endsWith('.pid'))) {
    pids[file.replace(/\.pid$/, '')] = Number(fs.readFileSync(path.join(env.CLUSTER_DIR, file), 'utf8'));
  }
  return { child, env, pids, exited, output, haproxy: `http://127.0.0.1:${clusterPort}`, instances: instancePorts.map((p) => `http://127.0.0.1:${p}`) };
}

/** One GET on its own connection (no keep-alive pool). */
function getOnce(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 15 s')));
    req.on('error', reject);
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function allGone(running: Running): Promise<void> {
  const code = await Promise.race([running.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
  assert.notEqual(code, 'timeout', 'the foreground script ended');
  for (const [name, pid] of Object.entries(running.pids)) assert.equal(alive(pid), false, `${name} (${pid}) was stopped`);
  assert.deepEqual(fs.readdirSync(running.env.CLUSTER_DIR).filter((f) => f.endsWith('.pid')), [], 'no pid file left');
}

describe('make run cluster (scripts/cluster.sh)', { timeout: 240_000 }, () => {
  it('starts Redis, three instances and HAProxy; a WebSocket through HAProxy gets every instance\'s writes; Ctrl-C stops all of it', async () => {
    const running = await startCluster();
    try {
      assert.deepEqual(Object.keys(running.pids).sort(), ['deployd-' + running.instances[0].split(':')[2], 'deployd-' + running.instances[1].split(':')[2], 'deployd-' + running.instances[2].split(':')[2], 'haproxy', 'redis'].sort());
      const health = await (await fetch(`${running.haproxy}/health`)).json();
      assert.equal(health.bus, 'ok');
      const sockets = await Promise.all([0, 1, 2].map(async () => {
        const ws = new WebSocket(`${running.haproxy.replace('http', 'ws')}/ws`);
        const frames: any[] = [];
        ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
        await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
        return { ws, frames };
      }));
      // Least-connections: one WebSocket per instance.
      const perInstance = await Promise.all(running.instances.map(async (u) => (await (await fetch(`${u}/health`)).json()).realtimeConnections));
      assert.deepEqual(perInstance, [1, 1, 1]);
      const res = await fetch(`${running.instances[2]}/todos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'through the cluster' }) });
      assert.equal(res.status, 200);
      for (const { frames } of sockets) {
        // The assertion below says what arrived when the wait ends without it.
        await eventually(() => frames.some((f) => f.document?.title === 'through the cluster'), 10_000).catch(() => undefined);
        assert.equal(frames.filter((f) => f.document?.title === 'through the cluster').length, 1);
      }
      // The dashboard and its admin API through HAProxy: one login serves whichever instance
      // answers, the connection list names each connection's instance, the monitor streams.
      const masterKey = JSON.parse(fs.readFileSync(path.join(running.env.APP, '.deployd', 'security.json'), 'utf8')).masterKey;
      assert.equal((await fetch(`${running.haproxy}/dashboard/`)).status, 200);
      const login = await (await fetch(`${running.haproxy}/_admin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ masterKey }) })).json();
      const admin = { authorization: `Bearer ${login.token}` };
      const names = running.instances.map((u) => `i${u.split(':')[2]}`).sort();
      const deadline = Date.now() + 15_000;
      let listed: Record<string, number> = {};
      while (Date.now() < deadline) {
        const realtime = await (await fetch(`${running.haproxy}/_admin/realtime`, { headers: admin })).json();
        listed = Object.fromEntries(realtime.instances.map((i: { instance: string; connections: unknown[] }) => [i.instance, i.connections.length]));
        if (names.every((n) => listed[n] === 1)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(listed, Object.fromEntries(names.map((n) => [n, 1])));
      const monitor = new AbortController();
      const giveUp = setTimeout(() => monitor.abort(), 15_000); // a stream without the event fails, never hangs
      try {
        const stream = await fetch(`${running.haproxy}/_admin/monitor`, { headers: admin, signal: monitor.signal });
        assert.equal(stream.status, 200);
        // A write on another instance while the dashboard watches streams in, with its document.
        const write = await fetch(`${running.instances[1]}/todos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'seen by the monitor' }) });
        assert.equal(write.status, 200);
        let text = '';
        for await (const chunk of stream.body!) {
          text += Buffer.from(chunk as Uint8Array).toString();
          if (text.includes('seen by the monitor')) break;
        }
        assert.match(text, /"summary":"todos created"[^\n]*"title":"seen by the monitor"/);
      } finally {
        clearTimeout(giveUp);
        monitor.abort();
      }
      for (const { ws } of sockets) ws.close();
    } finally {
      process.kill(-running.child.pid!, 'SIGINT'); // what Ctrl-C in the terminal does
      await allGone(running);
    }
  });

  it('`stop` from another terminal ends every process and the foreground script, and says what it stopped', async () => {
    const running = await startCluster();
    assert.match(running.output, new RegExp(`master key: ${running.env.APP}/\\.deployd/security\\.json — print it with: bin/deployd showkey`));
    const stop = spawnSync('bash', [SCRIPT, 'stop'], { env: running.env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(stop.status, 0, stop.stderr);
    for (const [name, pid] of Object.entries(running.pids)) assert.ok(stop.stderr.includes(`stopped ${name} (pid ${pid})`), `${name}: ${stop.stderr}`);
    await allGone(running);
    assert.equal(await running.exited, 0);
    const again = spawnSync('bash', [SCRIPT, 'stop'], { env: running.env, encoding: 'utf8', timeout: 60_000 });
    assert.match(again.stderr, /nothing was running/);
  });

  it('killing an instance costs at most one failed request, and every answer stays JSON', async () => {
    const running = await startCluster();
    try {
      const answers: Array<{ status: number; type: string; body: string; phase: string }> = [];
      let phase = 'before';
      let stop = false;
      // Two clients, each a steady loop of reads and writes through HAProxy.
      const client = async (n: number) => {
        for (let i = 0; !stop; i++) {
          const write = i % 3 === 0;
          try {
            const res = await fetch(`${running.haproxy}/todos${write ? '' : '?$limit=5'}`, {
              method: write ? 'POST' : 'GET',
              headers: { 'content-type': 'application/json' },
              body: write ? JSON.stringify({ title: `c${n}-${i}` }) : undefined,
              signal: AbortSignal.timeout(15_000),
            });
            answers.push({ status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text(), phase });
          } catch (err) {
            // A connection closed under a request counts as a failure too (status 0).
            answers.push({ status: 0, type: '', body: `${(err as Error).message}: ${(err as { cause?: Error }).cause?.message}`, phase });
          }
        }
      };
      const loops = [client(1), client(2)];
      const count = (p: string) => answers.filter((a) => a.phase === p).length;
      try {
        await eventually(() => count('before') >= 100, 120_000, '100 answers before the kill');
        const victim = `deployd-${running.instances[0].split(':')[2]}`;
        phase = 'after';
        process.kill(running.pids[victim], 'SIGKILL');
        // Long enough for HAProxy's health check to take it out (inter 500ms, fall 2) many times over.
        await eventually(() => count('after') >= 600, 300_000, '600 answers after the kill');
      } finally {
        stop = true; // the client loops end, whatever happened
        await Promise.all(loops);
      }

      const failed = answers.filter((a) => a.status === 0 || a.status >= 300);
      assert.ok(failed.length <= 1, `at most one request failed: ${JSON.stringify(failed.slice(0, 5))}`);
      for (const a of answers.filter((x) => x.status > 0)) {
        assert.match(a.type, /^application\/json/, `a ${a.status} answer that is not JSON: ${a.body.slice(0, 200)}`);
        JSON.parse(a.body);
        assert.doesNotMatch(a.body, /<html/i);
      }
      for (const a of failed.filter((x) => x.status > 0)) assert.match(JSON.parse(a.body).code, /^DPD_ERR_/);

      // No instance left: HAProxy's own 503, as JSON in the server's shape. (HAProxy 2.6 may close
      // a connection without an answer while it marks the last servers down: asked again then.)
      for (const port of [1, 2]) process.kill(running.pids[`deployd-${running.instances[port].split(':')[2]}`], 'SIGKILL');
      let last: { status: number; type: string; body: string } | undefined;
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        last = await getOnce(`${running.haproxy}/todos`).catch(() => undefined);
        if (last) assert.match(last.type, /^application\/json/, `${last.status}: ${last.body.slice(0, 200)}`);
        if (last?.status === 503) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(last?.status, 503);
      assert.deepEqual(JSON.parse(last!.body), { message: 'no instance is available right now; try again shortly', statusCode: 503, status: 503, code: 'DPD_ERR_UNAVAILABLE' });
    } finally {
      process.kill(-running.child.pid!, 'SIGINT');
      await allGone(running);
    }
  });
});
