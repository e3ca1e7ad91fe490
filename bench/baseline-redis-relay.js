/**
 * The raw cross-instance baseline: Redis PUBLISH → SUBSCRIBE between two Node processes, with the
 * same HTTP and WebSocket ends as bench/baseline-ws-server.js.
 *
 *   node bench/baseline-redis-relay.js --role publisher  --redis URL --db FILE [--port 0]
 *       POST /todos: the same SQLite insert as the other baselines, then PUBLISH of the event frame
 *   node bench/baseline-redis-relay.js --role subscriber --redis URL [--port 0]
 *       SUBSCRIBE; every message goes to every connected /ws client
 * Plain pub/sub: no history, no ordering across publishers, no recovery — what a hand-written
 * relay does. Prints "baseline-redis-<role> listening on http://HOST:PORT"; SIGTERM closes it.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { WebSocketServer } from 'ws';
import { openTodos } from './baseline-store.js';

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    redis: { type: 'string' },
    db: { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
if (!['publisher', 'subscriber'].includes(values.role) || !values.redis || (values.role === 'publisher' && !values.db)) {
  process.stderr.write('baseline-redis-relay: --role publisher|subscriber --redis URL (--db FILE for the publisher) are required\n');
  process.exit(2);
}

const CHANNEL = 'bench:events';
const app = Fastify({ logger: false });
const redis = new Redis(values.redis);
let db;

if (values.role === 'publisher') {
  const store = openTodos(values.db);
  db = store.db;
  const epoch = Date.now().toString(36);
  let seq = 0;
  app.post('/todos', async (request) => {
    const id = randomBytes(8).toString('hex');
    store.insert.run(id, JSON.stringify(request.body));
    const doc = { id, ...request.body };
    redis.publish(CHANNEL,
      `{"type":"collection_change","collection":"todos","action":"created","document":${JSON.stringify(doc)},` +
      `"timestamp":"${new Date().toISOString()}","userId":null,"id":"${epoch}:${++seq}"}`);
    return doc;
  });
} else {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  app.server.on('upgrade', (request, socket, head) => {
    if (request.url !== '/ws') return socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    wss.handleUpgrade(request, socket, head, (ws) => ws.on('error', () => ws.terminate()));
  });
  await redis.subscribe(CHANNEL);
  redis.on('messageBuffer', (_channel, frame) => {
    for (const ws of wss.clients) if (ws.readyState === ws.OPEN) ws.send(frame, { binary: false });
  });
}

const address = await app.listen({ port: Number(values.port), host: values.host });
process.stdout.write(`baseline-redis-${values.role} listening on ${address}\n`);

process.once('SIGTERM', async () => {
  await app.close();
  redis.disconnect();
  db?.close();
  process.exit(0);
});
