/**
 * Multi-instance targets for bench/scenarios.js.
 *
 * - deploydCluster({ instances }): `scripts/cluster.sh start` — the very script behind
 *   `make run cluster` — on free loopback ports: its own redis-server, `instances` deployd
 *   processes sharing one temp app folder and database, HAProxy in front. `url` is HAProxy's;
 *   with `direct: true` it is the first instance's and `subscribeUrl` the second's (cross-instance
 *   delivery: POST on one, WebSocket on the other).
 * - redisRelay(): the raw baseline for that path (bench/baseline-redis-relay.js): a publisher
 *   process and a subscriber process over Redis PUBLISH/SUBSCRIBE, with its own redis-server.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, tempDir } from './targets.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const START_TIMEOUT_MS = 60_000;

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function writeApp(dir, resources, files) {
  for (const [name, config] of Object.entries(resources)) {
    fs.mkdirSync(path.join(dir, 'resources', name), { recursive: true });
    fs.writeFileSync(path.join(dir, 'resources', name, 'config.json'), JSON.stringify(config, null, 2));
  }
  for (const [relative, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, relative)), { recursive: true });
    fs.writeFileSync(path.join(dir, relative), text);
  }
}

export function deploydCluster(resources, { instances, direct = false, label = `deployd-ts × ${instances}`, files = {} }) {
  return {
    label,
    async start() {
      const dir = tempDir();
      writeApp(dir, resources, files);
      const clusterPort = await freePort();
      const redisPort = await freePort();
      const ports = [];
      for (let i = 0; i < instances; i++) ports.push(await freePort());
      const env = {
        ...process.env, LOG_LEVEL: 'warn', MASTER_KEY: randomBytes(24).toString('hex'),
        APP: dir, CLUSTER_DIR: path.join(dir, '.cluster'), CLUSTER_PORT: String(clusterPort), REDIS_PORT: String(redisPort),
        INSTANCE_PORTS: ports.join(' '), BIND_HOST: '127.0.0.1',
      };
      delete env.DATABASE_URL;
      const child = spawn('bash', [path.join(ROOT, 'scripts', 'cluster.sh'), 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const collect = (chunk) => { output = (output + chunk.toString()).slice(-4000); };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
      const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
      try {
        await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`the cluster did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
          child.stderr.on('data', () => { if (output.includes('cluster: up')) { clearTimeout(timer); resolve(); } });
          exited.then((code) => { clearTimeout(timer); reject(new Error(`scripts/cluster.sh exited (${code}) before the cluster was up`)); });
        });
      } catch (err) {
        child.kill('SIGTERM');
        await exited;
        cleanup();
        throw new Error(`${err.message}\n--- output ---\n${output}`);
      }
      const instanceUrl = (i) => `http://127.0.0.1:${ports[i]}`;
      return {
        url: direct ? instanceUrl(0) : `http://127.0.0.1:${clusterPort}`,
        subscribeUrl: direct && instances > 1 ? instanceUrl(1) : undefined,
        pid: child.pid,
        check() {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the cluster stopped during the run\n--- output ---\n${output}`);
        },
        async stop() {
          // The script's trap stops HAProxy, the instances and Redis, in that order.
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            await exited;
          }
          cleanup();
        },
      };
    },
  };
}

export function redisRelay({ label = 'baseline (Redis pub/sub relay)' } = {}) {
  return {
    label,
    async start() {
      const dir = tempDir();
      const redisPort = await freePort();
      const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      const redisExited = new Promise((resolve) => redis.once('exit', resolve));
      const redisUrl = `redis://127.0.0.1:${redisPort}`;
      const script = path.join(HERE, 'baseline-redis-relay.js');
      let publisher;
      let subscriber;
      try {
        await waitForPort(redisPort);
        subscriber = await launch('relay subscriber', process.execPath, [script, '--role', 'subscriber', '--redis', redisUrl], process.env, tempDir());
        publisher = await launch('relay publisher', process.execPath, [script, '--role', 'publisher', '--redis', redisUrl, '--db', path.join(dir, 'bench.sqlite')], process.env, tempDir());
      } catch (err) {
        await subscriber?.stop();
        redis.kill('SIGKILL');
        throw err;
      }
      return {
        url: publisher.url,
        subscribeUrl: subscriber.url,
        pid: publisher.pid,
        check() {
          publisher.check();
          subscriber.check();
          if (redis.exitCode !== null) throw new Error('redis-server exited during the run');
        },
        async stop() {
          await publisher.stop();
          await subscriber.stop();
          redis.kill('SIGTERM');
          await redisExited;
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

async function waitForPort(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listens on ${port} after 5 s`);
}
