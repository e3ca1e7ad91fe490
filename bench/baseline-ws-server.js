/**
 * The raw real-time baseline: bare fastify + ws. POST /todos does the same SQLite insert as
 * bench/baseline-server.js (bench/baseline-store.js), then serializes one collection_change event
 * (once, to a Buffer) and sends it to every connected /ws client, before answering — what a
 * hand-written broadcast does, with no permissions, subscriptions, history or slow-reader limits.
 *
 *   node bench/baseline-ws-server.js --db FILE [--port 0] [--host 127.0.0.1]
 * Prints "baseline-ws listening on http://HOST:PORT" once ready; SIGTERM closes it.
 */
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import { WebSocketServer } from 'ws';
import { baselineArgs, openTodos } from './baseline-store.js';

const values = baselineArgs('baseline-ws-server');

const { db, insert } = openTodos(values.db);
const app = Fastify({ logger: false });
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false }); // tracks wss.clients
const epoch = Date.now().toString(36);
let seq = 0;

app.server.on('upgrade', (request, socket, head) => {
  if (request.url !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(request, socket, head, (ws) => {
    ws.on('error', () => ws.terminate());
  });
});

app.post('/todos', async (request) => {
  const id = randomBytes(8).toString('hex');
  insert.run(id, JSON.stringify(request.body));
  const doc = { id, ...request.body };
  // The same message format as deployd-ts's gateway; ~260 B for the bench's documents.
  const frame = Buffer.from(
    `{"type":"collection_change","collection":"todos","action":"created","document":${JSON.stringify(doc)},` +
    `"timestamp":"${new Date().toISOString()}","userId":null,"id":"${epoch}:${++seq}"}`,
  );
  for (const ws of wss.clients) {
    if (ws.readyState === ws.OPEN) ws.send(frame, { binary: false });
  }
  return doc;
});

const address = await app.listen({ port: Number(values.port), host: values.host });
process.stdout.write(`baseline-ws listening on ${address}\n`);

process.once('SIGTERM', async () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  await app.close();
  db.close();
  process.exit(0);
});
