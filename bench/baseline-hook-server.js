/**
 * The floor for a JavaScript hook kept out of the server's process: bare fastify + better-sqlite3
 * (as bench/baseline-server.js) whose `/hooked` route first sends the document to one forked child
 * (bench/baseline-hook-worker.js) over node's IPC channel, where isolated-vm runs a trivial validate
 * function, and waits for the answer; `/plain` only inserts. Nothing else: no pool, routing,
 * watchdog, sandbox API or batching. What this adds to a POST, and what the two processes hold at
 * start, is the least any server with process-isolated isolated-vm hooks pays on this machine
 * (bench/js-hooks.js runs it side by side with deployd-ts).
 *
 *   node bench/baseline-hook-server.js --db FILE [--port 0] [--host 127.0.0.1]
 * Prints "baseline listening on http://HOST:PORT" once the child is ready; SIGTERM closes both.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { baselineArgs, openTodos } from './baseline-store.js';

const values = baselineArgs('baseline-hook-server');
const { db, insert } = openTodos(values.db);

// The flags deployd-ts gives its hook workers (src/hooks/js/js-runner.ts).
const child = fork(path.join(path.dirname(fileURLToPath(import.meta.url)), 'baseline-hook-worker.js'), [], {
  execArgv: ['--no-node-snapshot', '--noexpose-wasm'],
  serialization: 'json',
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const waiting = new Map();
let nextId = 1;
await new Promise((resolve, reject) => {
  child.once('message', resolve); // { t: 'ready' }
  child.once('exit', (code) => reject(new Error(`hook worker exited (${code}) before it was ready`)));
});
child.on('message', (message) => {
  waiting.get(message.id)?.(JSON.parse(message.resultJson));
  waiting.delete(message.id);
});
child.on('exit', () => process.exit(1));

function runHook(doc) {
  const id = nextId++;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    child.send({ id, ctxJson: JSON.stringify({ collection: 'hooked', event: 'validate', method: 'POST', data: doc }) });
  });
}

const app = Fastify({ logger: false });

app.post('/plain', async (request) => {
  const id = randomBytes(8).toString('hex');
  insert.run(id, JSON.stringify(request.body));
  return { id, ...request.body };
});

app.post('/hooked', async (request, reply) => {
  const result = await runHook(request.body);
  if (Object.keys(result.errors).length) return reply.code(400).send({ errors: result.errors });
  const id = randomBytes(8).toString('hex');
  insert.run(id, JSON.stringify(result.data));
  return { id, ...result.data };
});

const address = await app.listen({ port: Number(values.port), host: values.host });
process.stdout.write(`baseline listening on ${address}\n`);

process.once('SIGTERM', async () => {
  await app.close();
  child.kill();
  db.close();
  process.exit(0);
});
