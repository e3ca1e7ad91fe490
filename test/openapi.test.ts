/**
 * `/openapi.json`: an OpenAPI 3.1 document generated from the collections' schemas, valid for a
 * real validator (@seriousme/openapi-schema-validator, the 3.1 meta-schema), describing properties,
 * required fields, query parameters, error bodies and who may call what; it follows hot reloads,
 * leaves broken configs out, and `/_docs` serves Swagger UI from the package, not a CDN.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { eventually, makeApp, startServer, TODOS, writeConfig, type TestServer } from './helpers/server.js';

async function assertValid(doc: unknown): Promise<void> {
  const validator = new Validator();
  const result = await validator.validate(doc as Parameters<Validator['validate']>[0]);
  assert.ok(result.valid, `not a valid OpenAPI document: ${JSON.stringify(result.errors, null, 2)}`);
  assert.equal(validator.version, '3.1');
}

describe('OpenAPI at /openapi.json', () => {
  let server: TestServer;
  let app: string;

  before(async () => {
    app = makeApp({
      todos: TODOS,
      users: { type: 'UserCollection', properties: { role: { type: 'string' } } },
      ping: { type: 'Event' },
      'shop/orders': { properties: { item: { type: 'string', required: true }, qty: { type: 'number', default: 1 } }, rules: { read: 'owner', create: 'users', update: 'owner', delete: 'root' } },
    });
    server = await startServer(app);
  }, { timeout: 30_000 });
  after(() => server?.stop(), { timeout: 30_000 });

  it('is a valid OpenAPI 3.1 document for every collection', async () => {
    const res = await server.get('/openapi.json');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    await assertValid(res.body);
    assert.deepEqual(Object.keys(res.body.paths).filter((p) => !p.startsWith('/health')).sort(), [
      '/ping', '/ping/{path}',
      '/shop/orders', '/shop/orders/count', '/shop/orders/query', '/shop/orders/{id}',
      '/todos', '/todos/count', '/todos/query', '/todos/{id}',
      '/users', '/users/count', '/users/login', '/users/logout', '/users/me', '/users/query', '/users/{id}',
    ]);
  });

  it('describes documents and bodies from the schema: types, required, defaults, secrets', async () => {
    const { schemas } = (await server.get('/openapi.json')).body.components;
    assert.deepEqual(schemas.todos.properties.due, { type: 'string', format: 'date-time' });
    assert.deepEqual(schemas.todos.properties.tags, { type: 'array' });
    assert.deepEqual(schemas.todos.required, ['id', 'title']);
    assert.deepEqual(schemas.todosCreate.required, ['title']);
    assert.equal(schemas.todosCreate.properties.createdAt, undefined, 'timestamps are the server\'s');
    assert.equal(schemas.todosUpdate.required, undefined, 'an update is any subset');
    assert.deepEqual(schemas.shop_orders.properties.qty, { type: 'number', default: 1 });
    assert.equal(schemas.users.properties.password, undefined, 'a password never comes back');
    assert.deepEqual(schemas.usersCreate.properties.password, { type: 'string', writeOnly: true });
    assert.deepEqual(schemas.usersCreate.required, ['username', 'password']);
  });

  it('lists query parameters, JSON error responses and the security each rule needs', async () => {
    const doc = (await server.get('/openapi.json')).body;
    const list = doc.paths['/todos'].get;
    const names = list.parameters.map((p: { $ref?: string; name?: string }) => p.name ?? p.$ref);
    for (const ref of ['sort', 'limit', 'skip', 'fields']) assert.ok(names.includes(`#/components/parameters/${ref}`), ref);
    assert.ok(names.includes('priority') && names.includes('status'));
    assert.equal(doc.components.parameters.limit.name, '$limit');
    assert.equal(list.responses['400'].$ref, '#/components/responses/BadRequest');
    assert.equal(doc.components.responses.BadRequest.content['application/json'].schema.$ref, '#/components/schemas/Error');
    assert.deepEqual(doc.components.schemas.Error.required, ['message', 'statusCode', 'status', 'code']);
    assert.ok(doc.paths['/todos'].post.responses['409'], 'unique conflicts');
    // anyone: anonymous allowed; users/owner: a session; root: the master key only.
    assert.deepEqual(list.security[0], {});
    assert.deepEqual(doc.paths['/shop/orders'].post.security, [{ bearer: [] }, { sessionCookie: [] }, { masterKey: [] }]);
    assert.deepEqual(doc.paths['/shop/orders/{id}'].delete.security, [{ masterKey: [] }]);
    assert.deepEqual(doc.paths['/todos'].delete.security[0], {}, 'bulk delete where the delete rule is "anyone"');
    assert.deepEqual(doc.paths['/shop/orders'].delete.security, [{ masterKey: [] }], 'otherwise root only');
    assert.equal(doc.components.securitySchemes.masterKey.name, 'X-Master-Key');
  });

  it('follows hot reloads: a new collection appears, a broken one is left out and named', async () => {
    writeConfig(app, 'notes', { properties: { text: { type: 'string', required: true } } });
    await eventually(async () => (await server.get('/openapi.json')).body.paths['/notes'] !== undefined, 10_000, '/notes in the document');
    fs.writeFileSync(path.join(app, 'resources', 'notes', 'config.json'), '{ not json');
    await eventually(async () => (await server.get('/openapi.json')).body.paths['/notes'] === undefined, 10_000, '/notes to leave');
    const doc = (await server.get('/openapi.json')).body;
    assert.match(doc.info.description, /broken: notes/);
    await assertValid(doc);
  });

  it('/_docs serves Swagger UI from the server itself (no CDN)', async () => {
    const page = await server.get('/_docs');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.doesNotMatch(page.text, /https?:\/\//, 'every asset is local');
    for (const asset of page.text.matchAll(/(?:src|href)="([^"]+)"/g)) {
      const res = await server.get(asset[1]);
      assert.equal(res.status, 200, asset[1]);
      assert.ok(res.text.length > 0, asset[1]);
    }
    const init = await server.get('/_docs/init.js');
    assert.match(init.text, /url: '\/openapi\.json'/);
  });
});
