/**
 * The raw baseline: bare fastify + better-sqlite3 doing the same storage work as deployd-ts for
 * POST /todos and GET /todos?priority[$gte]=N&$limit=M, and nothing else (no schema, hooks, auth,
 * CORS or query language). Storage: bench/baseline-store.js (the way deployd-ts's SQLite store keeps
 * documents: one table (id, data JSON), WAL, synchronous NORMAL, expression indexes).
 *
 *   node bench/baseline-server.js --db FILE [--port 0] [--host 127.0.0.1]
 * Prints "baseline listening on http://HOST:PORT" once ready; SIGTERM closes it.
 */
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import { baselineArgs, openTodos } from './baseline-store.js';

const values = baselineArgs('baseline-server');

const { db, insert, select } = openTodos(values.db);

const app = Fastify({ logger: false });

app.post('/todos', async (request) => {
  const id = randomBytes(8).toString('hex');
  insert.run(id, JSON.stringify(request.body));
  return { id, ...request.body };
});

// fastify's default query-string parser keeps "priority[$gte]" as a literal key.
app.get('/todos', async (request, reply) => {
  const min = Number(request.query['priority[$gte]']);
  const limit = Number(request.query.$limit ?? 50);
  if (!Number.isFinite(min) || !Number.isInteger(limit)) return reply.code(400).send({ message: 'need priority[$gte] and $limit' });
  return select.all(min, limit).map((row) => ({ id: row.id, ...JSON.parse(row.data) }));
});

const address = await app.listen({ port: Number(values.port), host: values.host });
process.stdout.write(`baseline listening on ${address}\n`);

process.once('SIGTERM', async () => {
  await app.close();
  db.close();
  process.exit(0);
});
