/**
 * The raw MongoDB baseline: bare fastify + the mongodb driver doing the same storage work as
 * deployd-ts's MongoDB store for POST /todos and GET /todos?priority[$gte]=N&$limit=M, and nothing
 * else: string `_id`, the insertion-order field and its index, indexes on priority and status,
 * reads sorted by insertion order.
 *
 *   node bench/baseline-mongo-server.js --db mongodb://HOST:PORT/DB [--port 0] [--host 127.0.0.1]
 * Prints "baseline listening on http://HOST:PORT" once ready; SIGTERM closes it.
 */
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import { MongoClient, ObjectId } from 'mongodb';
import { baselineArgs } from './baseline-store.js';

const values = baselineArgs('baseline-mongo-server');
const client = new MongoClient(values.db);
await client.connect();
const todos = client.db().collection('todos');
await todos.createIndex({ _dpd_order: 1 });
await todos.createIndex({ priority: 1 });
await todos.createIndex({ status: 1 });

const app = Fastify({ logger: false });

app.post('/todos', async (request) => {
  const id = randomBytes(8).toString('hex');
  await todos.insertOne({ _id: id, _dpd_order: new ObjectId(), ...request.body });
  return { id, ...request.body };
});

app.get('/todos', async (request, reply) => {
  const min = Number(request.query['priority[$gte]']);
  const limit = Number(request.query.$limit ?? 50);
  if (!Number.isFinite(min) || !Number.isInteger(limit)) return reply.code(400).send({ message: 'need priority[$gte] and $limit' });
  const docs = await todos.find({ priority: { $gte: min } }, { projection: { _dpd_order: 0 } }).sort({ _dpd_order: 1 }).limit(limit).toArray();
  return docs.map(({ _id, ...rest }) => ({ id: _id, ...rest }));
});

const address = await app.listen({ port: Number(values.port), host: values.host });
process.stdout.write(`baseline listening on ${address}\n`);

process.once('SIGTERM', async () => {
  await app.close();
  await client.close();
  process.exit(0);
});
