/**
 * Hostile and malformed input, one test per kind, against a real server started with
 * `--max-body 1kb`. Every request has a deadline (a hang fails the test), and every error answer
 * must be JSON with message, status, statusCode and a DPD_ERR_* code, without stack traces or
 * server file paths.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { makeApp, startServer, TODOS, writeConfig, type TestServer } from './helpers/server.js';

const REQUEST_TIMEOUT_MS = 5000;

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

let server: TestServer;
/** Every 4xx/5xx answer of this file, checked for leaks at the end. */
const errorAnswers: Array<{ what: string; text: string }> = [];

before(async () => {
  const app = makeApp({ todos: TODOS, guarded: { ...TODOS, rules: { delete: 'root' } } });
  writeConfig(app, 'broken', '{ "type": "Collection", "properties": ');
  server = await startServer(app, { args: ['--max-body', '1kb'] });
}, { timeout: 120_000 });
after(async () => {
  await server?.stop();
}, { timeout: 60_000 });

function record(what: string, status: number, text: string): void {
  if (status >= 400) errorAnswers.push({ what, text });
}

/** Real HTTP (with the harness's deadline); every answer is recorded for the no-stack-trace check. */
async function api(method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await server.request(method, urlPath, body, headers);
  record(`${method} ${urlPath.slice(0, 80)}`, res.status, res.text);
  return { status: res.status, headers: res.headers, body: parse(res.text), text: res.text };
}

/**
 * node:http for what fetch cannot send: no Content-Type at all, a chunked body, or a raw path
 * (fetch would normalise or re-encode it).
 */
function raw(method: string, urlPath: string, options: { body?: string | Buffer; headers?: Record<string, string>; chunked?: boolean } = {}): Promise<Answer> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.body !== undefined && !options.chunked) headers['content-length'] = Buffer.byteLength(options.body);
    const req = http.request(
      { host: url.hostname, port: url.port, method, path: urlPath, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : String(v));
          record(`${method} ${urlPath.slice(0, 80)} (raw)`, res.statusCode ?? 0, text);
          resolve({ status: res.statusCode ?? 0, headers: h, body: parse(text), text });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.body !== undefined) {
      if (options.chunked) {
        // Several writes without a Content-Length: Transfer-Encoding: chunked.
        const body = Buffer.from(options.body);
        for (let i = 0; i < body.length; i += 256) req.write(body.subarray(i, i + 256));
      } else {
        req.write(options.body);
      }
    }
    req.end();
  });
}

function parse(text: string): any {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The error contract: JSON, message, status, statusCode and a DPD_ERR_* code. */
function assertError(res: Answer, status: number, code?: string): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `JSON error body: ${res.text}`);
  assert.ok(res.body && typeof res.body === 'object', `JSON error body: ${res.text}`);
  assert.equal(typeof res.body.message, 'string');
  assert.equal(res.body.status, status);
  assert.equal(res.body.statusCode, status);
  assert.match(res.body.code, code ? new RegExp(`^${code}$`) : /^DPD_ERR_[A-Z_]+$/);
}

const nested = (depth: number, leaf: unknown = 1): unknown => {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
};

describe('malformed bodies', () => {
  it('malformed JSON is 400 DPD_ERR_INVALID_JSON', async () => {
    for (const text of ['{"title":', '{title:"x"}', '{"title":"x",}', '{"title":"x"} trailing', "{'title':'x'}", '{"title":"\\x"}']) {
      assertError(await api('POST', '/todos', text), 400, 'DPD_ERR_INVALID_JSON');
    }
    const created = (await api('POST', '/todos', { title: 'target' })).body;
    assertError(await api('PUT', `/todos/${created.id}`, '{"status":'), 400, 'DPD_ERR_INVALID_JSON');
    assertError(await api('POST', '/todos/query', '{"query":'), 400, 'DPD_ERR_INVALID_JSON');
    assertError(await api('POST', '/todos', '{"title":', { 'content-type': 'text/plain' }), 400, 'DPD_ERR_INVALID_JSON');
  });

  it('a body over --max-body (1kb) is 413 DPD_ERR_BODY_TOO_LARGE', async () => {
    const big = JSON.stringify({ title: 'x'.repeat(2000) });
    assertError(await api('POST', '/todos', big), 413, 'DPD_ERR_BODY_TOO_LARGE');
    const created = (await api('POST', '/todos', { title: 'small' })).body;
    assertError(await api('PUT', `/todos/${created.id}`, big), 413, 'DPD_ERR_BODY_TOO_LARGE');
    assertError(await api('POST', '/todos', `title=${'x'.repeat(2000)}`, { 'content-type': 'application/x-www-form-urlencoded' }), 413, 'DPD_ERR_BODY_TOO_LARGE');
  });

  it('a chunked body over --max-body (no Content-Length) is 413 too', async () => {
    const big = JSON.stringify({ title: 'y'.repeat(4000) });
    assertError(await raw('POST', '/todos', { body: big, chunked: true, headers: { 'content-type': 'application/json' } }), 413, 'DPD_ERR_BODY_TOO_LARGE');
  });

  it('a body just under the limit is accepted', async () => {
    const res = await api('POST', '/todos', { title: 'z'.repeat(900) });
    assert.equal(res.status, 200, res.text);
  });

  it('a JSON array, string, number or boolean body is 400', async () => {
    const created = (await api('POST', '/todos', { title: 'shape' })).body;
    for (const text of ['[{"title":"x"}]', '[]', '"title"', '42', 'true']) {
      assertError(await api('POST', '/todos', text), 400);
      assertError(await api('PUT', `/todos/${created.id}`, text), 400);
      assertError(await api('POST', '/todos/query', text), 400);
    }
    assert.equal((await api('GET', `/todos/${created.id}`)).body.title, 'shape');
  });

  it('numbers JSON cannot carry (1e400 → Infinity) are refused for number properties', async () => {
    const res = await api('POST', '/todos', '{"title":"inf","n":1e400}');
    assertError(res, 400, 'DPD_ERR_VALIDATION');
    assert.deepEqual(res.body.errors, { n: 'must be a number' });
    assertError(await api('POST', '/todos', '{"title":"inf","n":{"$inc":-1e400}}'), 400, 'DPD_ERR_VALIDATION');
  });

  it('an $inc that overflows to Infinity is 400 and leaves the number as it was', async () => {
    const created = (await api('POST', '/todos', { title: 'overflow', n: 1e308 })).body;
    assertError(await api('PUT', `/todos/${created.id}`, { n: { $inc: 1e308 } }), 400);
    assert.equal((await api('GET', `/todos/${created.id}`)).body.n, 1e308);
  });
});

describe('content types', () => {
  it('a body with no Content-Type is parsed as JSON (Deployd)', async () => {
    const res = await raw('POST', '/todos', { body: JSON.stringify({ title: 'no content type', priority: 2 }) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.title, 'no content type');
    assert.equal(res.body.priority, 2);
    assertError(await raw('POST', '/todos', { body: '{"title":' }), 400, 'DPD_ERR_INVALID_JSON');
  });

  it('a text/plain body is parsed as JSON too', async () => {
    const res = await api('POST', '/todos', JSON.stringify({ title: 'plain' }), { 'content-type': 'text/plain' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.title, 'plain');
  });

  it('other content types are read as JSON too, so a multipart body is 400 JSON', async () => {
    const multipart = '--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\nx\r\n--XyZ--\r\n';
    assertError(await api('POST', '/todos', multipart, { 'content-type': 'multipart/form-data; boundary=XyZ' }), 400, 'DPD_ERR_INVALID_JSON');
    assertError(await api('POST', '/todos', '<todo><title>x</title></todo>', { 'content-type': 'application/xml' }), 400, 'DPD_ERR_INVALID_JSON');
  });

  it('form posts (application/x-www-form-urlencoded) work, with coercion', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const res = await api('POST', '/todos', 'title=Form+post%21&priority=3&completed=true&tags[]=a&tags[]=b&meta[k]=v', form);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.title, 'Form post!');
    assert.equal(res.body.priority, 3);
    assert.equal(res.body.completed, true);
    assert.deepEqual(res.body.tags, ['a', 'b']);
    assert.deepEqual(res.body.meta, { k: 'v' });
    const put = await api('PUT', `/todos/${res.body.id}`, 'status=done&n[$inc]=2', form);
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.status, 'done');
    assert.equal(put.body.n, 2);
    assertError(await api('POST', '/todos', 'title=%E0%A4%A', form), 400);
  });
});

describe('methods', () => {
  it('unknown paths are 404 JSON', async () => {
    for (const p of ['/', '/nope', '/nope/deeper/still', '/todosx', '/health/extra']) {
      assertError(await api('GET', p), 404);
    }
    assertError(await api('POST', '/nope', { title: 'x' }), 404);
    assertError(await api('PUT', '/nope/0123456789abcdef', { title: 'x' }), 404);
    assertError(await api('DELETE', '/nope/0123456789abcdef'), 404);
  });

  it('PATCH is 405 JSON with an Allow header', async () => {
    const created = (await api('POST', '/todos', { title: 'patch' })).body;
    for (const p of ['/todos', `/todos/${created.id}`, '/nope']) {
      const res = await api('PATCH', p, { title: 'patched' });
      assertError(res, 405, 'DPD_ERR_METHOD_NOT_ALLOWED');
      const allow = res.headers.get('allow') ?? '';
      for (const m of ['GET', 'POST', 'PUT', 'DELETE']) assert.match(allow, new RegExp(`\\b${m}\\b`), `Allow: ${allow}`);
      assert.doesNotMatch(allow, /PATCH/);
    }
    assert.equal((await api('GET', `/todos/${created.id}`)).body.title, 'patch');
  });

  it('HEAD answers like GET, without a body', async () => {
    const created = (await api('POST', '/todos', { title: 'head' })).body;
    for (const p of ['/todos', `/todos/${created.id}`, '/todos/count', '/health']) {
      const get = await api('GET', p);
      const head = await api('HEAD', p);
      assert.equal(head.status, get.status, `HEAD ${p}`);
      assert.equal(head.status, 200, `HEAD ${p}`);
      assert.equal(head.text, '');
      assert.equal(head.headers.get('content-type'), get.headers.get('content-type'));
      assert.equal(head.headers.get('cache-control'), get.headers.get('cache-control'));
    }
    for (const p of ['/todos/0123456789abcdef', '/nope']) {
      const head = await api('HEAD', p);
      assert.equal(head.status, 404, `HEAD ${p}`);
      assert.equal(head.text, '');
    }
  });

  it('other methods (PROPFIND, SEARCH, MKCOL, LOCK, PURGE…) are 405 JSON, never a hang', async () => {
    for (const method of ['PROPFIND', 'SEARCH', 'MKCOL', 'LOCK', 'UNLOCK', 'PURGE', 'COPY', 'MOVE', 'REPORT']) {
      for (const p of ['/todos', '/nope']) {
        const res = await api(method, p);
        assertError(res, 405, 'DPD_ERR_METHOD_NOT_ALLOWED');
        assert.match(res.headers.get('allow') ?? '', /GET/);
      }
    }
    assertError(await api('SEARCH', '/todos', { query: { title: 'x' } }), 405, 'DPD_ERR_METHOD_NOT_ALLOWED');
    assertError(await api('PROPFIND', '/todos', '<?xml version="1.0"?><propfind xmlns="DAV:"/>', { 'content-type': 'application/xml' }), 405);
  });

  it('OPTIONS without a CORS preflight is a proper answer, never a hang', async () => {
    const res = await api('OPTIONS', '/todos');
    assert.ok(res.status < 500, `OPTIONS answered ${res.status}`);
  });

  it('…a plain 204, as for a preflight', async () => {
    const res = await api('OPTIONS', '/todos');
    assert.equal(res.status, 204);
  });
});

describe('prototype-polluting keys', () => {
  const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
  const POISON = { polluted: 'yes', title: 'polluted', default: 'polluted', isRoot: true };
  let target: { id: string };

  before(async () => {
    target = (await api('POST', '/todos', { title: 'pollution target' })).body;
  }, { timeout: 120_000 });

  it('__proto__, constructor and prototype at the top of a JSON body are 400 DPD_ERR_FORBIDDEN_KEY', async () => {
    const bodies = [
      `{"title":"x","__proto__":${JSON.stringify(POISON)}}`,
      `{"__proto__":${JSON.stringify(POISON)}}`,
      `{"title":"x","constructor":{"prototype":${JSON.stringify(POISON)}}}`,
      `{"title":"x","prototype":${JSON.stringify(POISON)}}`,
      `{"title":"x","\\u005f_proto__":${JSON.stringify(POISON)}}`,
    ];
    for (const body of bodies) {
      assertError(await api('POST', '/todos', body), 400, 'DPD_ERR_FORBIDDEN_KEY');
      assertError(await api('PUT', `/todos/${target.id}`, body), 400, 'DPD_ERR_FORBIDDEN_KEY');
      assertError(await api('POST', `/todos/${target.id}`, body), 400, 'DPD_ERR_FORBIDDEN_KEY');
    }
  });

  it('…and anywhere nested: objects, arrays, update commands, query bodies', async () => {
    const poison = JSON.stringify(POISON);
    const bodies = [
      `{"title":"x","meta":{"__proto__":${poison}}}`,
      `{"title":"x","meta":{"a":{"b":{"c":{"constructor":{"prototype":${poison}}}}}}}`,
      `{"title":"x","tags":[1,{"__proto__":${poison}}]}`,
      `{"title":"x","tags":[[[{"prototype":${poison}}]]]}`,
      `{"$set":{"__proto__":${poison}}}`,
      `{"$set":{"meta":{"__proto__":${poison}}}}`,
      `{"tags":{"$push":{"__proto__":${poison}}}}`,
      `{"n":{"__proto__":${poison}}}`,
    ];
    for (const body of bodies) {
      assertError(await api('POST', '/todos', body), 400, 'DPD_ERR_FORBIDDEN_KEY');
      assertError(await api('PUT', `/todos/${target.id}`, body), 400, 'DPD_ERR_FORBIDDEN_KEY');
    }
    assertError(await api('POST', '/todos/query', `{"query":{"__proto__":${poison}}}`), 400, 'DPD_ERR_FORBIDDEN_KEY');
    assertError(await api('POST', '/todos/query', `{"query":{"meta":{"constructor":{"prototype":${poison}}}}}`), 400, 'DPD_ERR_FORBIDDEN_KEY');
    assertError(await api('POST', '/todos/query', `{"options":{"__proto__":${poison}}}`), 400, 'DPD_ERR_FORBIDDEN_KEY');
  });

  it('…and in form bodies', async () => {
    for (const body of [
      '__proto__[polluted]=yes&title=x',
      '__proto__[title]=polluted',
      'title=x&meta[__proto__][polluted]=yes',
      'title=x&constructor[prototype][polluted]=yes',
      'title=x&meta[a][prototype][polluted]=yes',
      'title=x&%5F%5Fproto%5F%5F[polluted]=yes',
      'title=x&meta%5B__proto__%5D%5Bpolluted%5D=yes',
      'title=x&__proto__.polluted=yes',
      'title=x&tags[0][__proto__][polluted]=yes',
    ]) {
      assertError(await api('POST', '/todos', body, FORM), 400, 'DPD_ERR_FORBIDDEN_KEY');
      assertError(await api('PUT', `/todos/${target.id}`, body, FORM), 400, 'DPD_ERR_FORBIDDEN_KEY');
    }
  });

  it('…and in query strings', async () => {
    const poison = JSON.stringify(POISON);
    for (const query of [
      '__proto__[polluted]=yes',
      'title[__proto__][polluted]=yes',
      'constructor[prototype][polluted]=yes',
      '%5F%5Fproto%5F%5F[polluted]=yes',
      `{"__proto__":${poison}}`,
      encodeURIComponent(`{"meta":{"constructor":{"prototype":${poison}}}}`),
      `q=${encodeURIComponent(`{"__proto__":${poison}}`)}`,
      `_jsonquery=${encodeURIComponent(`{"prototype":${poison}}`)}`,
      `$sort[__proto__]=1`,
    ]) {
      assertError(await api('GET', `/todos?${query}`), 400, 'DPD_ERR_FORBIDDEN_KEY');
      assertError(await api('GET', `/todos/count?${query}`), 400, 'DPD_ERR_FORBIDDEN_KEY');
      assertError(await api('DELETE', `/todos?${query}`, undefined, server.root), 400, 'DPD_ERR_FORBIDDEN_KEY');
      assertError(await api('PUT', `/todos/${target.id}?${query}`, { status: 'x' }), 400, 'DPD_ERR_FORBIDDEN_KEY');
    }
  });

  it('the same words as values (not keys) are plain data', async () => {
    const res = await api('POST', '/todos', { title: '__proto__', status: 'constructor', tags: ['prototype'], meta: { proto: '__proto__', _proto_: 1 } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.title, '__proto__');
    assert.deepEqual(res.body.meta, { proto: '__proto__', _proto_: 1 });
    const form = await api('POST', '/todos', 'title=__proto__&status=constructor', FORM);
    assert.equal(form.status, 200, form.text);
    assert.equal(form.body.title, '__proto__');
    assert.equal((await api('GET', '/todos/count?title=__proto__')).body.count, 2);
  });

  it('afterwards the server is not polluted: ({}).polluted is undefined and requests behave normally', async () => {
    // Were Object.prototype polluted with `title` or `default`, a title-less POST would pass the
    // required check, and every optional property would pick up the polluted default.
    const missing = await api('POST', '/todos', {});
    assertError(missing, 400, 'DPD_ERR_VALIDATION');
    assert.deepEqual(missing.body.errors, { title: 'is required' });
    const ok = await api('POST', '/todos', { title: 'clean' });
    assert.equal(ok.status, 200);
    const { id, createdAt, updatedAt, ...rest } = ok.body;
    assert.deepEqual(rest, { title: 'clean', completed: false });
    assert.equal(ok.body.polluted, undefined);
    // Anonymous is still not root.
    assertError(await api('DELETE', '/guarded?title=clean'), 401);
    // The target document was never changed by any of the refused requests.
    const stored = await api('GET', `/todos/${target.id}`);
    assert.equal(stored.body.title, 'pollution target');
    assert.equal(stored.body.status, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('nesting depth', () => {
  it('a JSON body nested too deeply is 400 DPD_ERR_TOO_DEEP', async () => {
    assertError(await api('POST', '/todos', { title: 'deep', meta: nested(40) }), 400, 'DPD_ERR_TOO_DEEP');
    assertError(await api('POST', '/todos', `{"title":"deep","tags":${'['.repeat(60)}${']'.repeat(60)}}`), 400, 'DPD_ERR_TOO_DEEP');
    assertError(await api('POST', '/todos', '['.repeat(500) + ']'.repeat(500)), 400);
  });

  it('moderate nesting is fine', async () => {
    const res = await api('POST', '/todos', { title: 'nested ok', meta: nested(10, 'leaf') });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.meta, nested(10, 'leaf'));
  });

  it('a query nested too deeply is 400', async () => {
    assertError(await api('GET', `/todos?${encodeURIComponent(JSON.stringify(nested(40)))}`), 400, 'DPD_ERR_TOO_DEEP');
    assertError(await api('GET', `/todos?meta${'[a]'.repeat(40)}=1`), 400);
    assertError(await api('POST', '/todos/query', { query: nested(40) }), 400, 'DPD_ERR_TOO_DEEP');
  });

  it('a form body nested too deeply is 400', async () => {
    assertError(await api('POST', '/todos', `title=x&meta${'[a]'.repeat(40)}=1`, { 'content-type': 'application/x-www-form-urlencoded' }), 400);
  });
});

describe('ids and paths', () => {
  it('unknown, numeric and odd ids are 404', async () => {
    for (const id of ['0123456789abcdef', '123', '0', '-1', 'ffffffffffffffffffffffff', 'not-an-id', '%20', "'%20OR%201=1%20--", '%00', 'null', 'undefined']) {
      assertError(await api('GET', `/todos/${id}`), 404);
      assertError(await api('PUT', `/todos/${id}`, { title: 'x' }), 404);
      assertError(await api('DELETE', `/todos/${id}`), 404);
    }
  });

  it('a path below a document (/todos/:id/extra) is 404 and touches nothing', async () => {
    const created = (await api('POST', '/todos', { title: 'sub' })).body;
    for (const method of ['GET', 'PUT', 'POST', 'DELETE']) {
      assertError(await api(method, `/todos/${created.id}/extra`, method === 'PUT' || method === 'POST' ? { title: 'changed' } : undefined), 404);
    }
    assertError(await api('GET', `/todos/${created.id}/${created.id}`), 404);
    assert.equal((await api('GET', `/todos/${created.id}`)).body.title, 'sub');
  });

  it('a 10 000-character id is 404, quickly', async () => {
    const id = 'a'.repeat(10_000);
    const started = Date.now();
    assertError(await api('GET', `/todos/${id}`), 404);
    assertError(await api('PUT', `/todos/${id}`, { title: 'x' }), 404);
    assertError(await api('POST', `/todos/${id}`, { title: 'x' }), 404);
    assertError(await api('DELETE', `/todos/${id}`), 404);
    assertError(await api('PUT', '/todos', { id: id.slice(0, 900), title: 'x' }), 404, 'DPD_ERR_NOT_FOUND'); // in a body under 1kb
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  });

  const BAD_PATHS = ['/todos/%E0%A4%A', '/todos/%zz', '/todos/%', '/%E0%A4%A', '/%ff/todos'];

  it('invalid percent-encoding in the path is 400 JSON', async () => {
    for (const p of BAD_PATHS) {
      const res = await raw('GET', p);
      assert.equal(res.status, 400, `${p}: ${res.text}`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    }
    assert.equal((await raw('PUT', '/todos/%E0%A4%A', { body: '{"title":"x"}', headers: { 'content-type': 'application/json' } })).status, 400);
    assert.equal((await raw('DELETE', '/todos/%zz')).status, 400);
  });

  it('…with the full error contract (status, statusCode, DPD_ERR_* code)', async () => {
    for (const p of BAD_PATHS) assertError(await raw('GET', p), 400, 'DPD_ERR_BAD_REQUEST');
  });

  it('invalid percent-encoding or JSON in the query string is 400', async () => {
    assertError(await raw('GET', '/todos?title=%E0%A4%A'), 400, 'DPD_ERR_BAD_QUERY');
    assertError(await raw('GET', '/todos?%zz=1'), 400, 'DPD_ERR_BAD_QUERY');
    assertError(await api('GET', `/todos?${encodeURIComponent('{"title":1,}')}`), 400, 'DPD_ERR_BAD_QUERY');
    assertError(await api('GET', '/todos?{title:1}'), 400, 'DPD_ERR_BAD_QUERY');
    assertError(await api('GET', `/todos?q=${encodeURIComponent('{"title":')}`), 400, 'DPD_ERR_BAD_QUERY');
  });
});

describe('SQL-looking input is plain data', () => {
  const SQL = [
    "'); DROP TABLE dpd_todos; --",
    "Robert'); DROP TABLE Students;--",
    '" OR 1=1 --',
    "' OR '1'='1",
    '1; DELETE FROM dpd_todos WHERE 1=1',
    "x' UNION SELECT id, data FROM dpd_todos --",
    'json_extract(data, "$.title")',
  ];

  it('is stored and read back verbatim in any value', async () => {
    const before = (await api('GET', '/todos/count')).body.count;
    for (const text of SQL) {
      const res = await api('POST', '/todos', { title: text, status: text, tags: [text], meta: { [text]: text } });
      assert.equal(res.status, 200, res.text);
      const stored = (await api('GET', `/todos/${res.body.id}`)).body;
      assert.equal(stored.title, text);
      assert.equal(stored.status, text);
      assert.deepEqual(stored.tags, [text]);
      assert.deepEqual(stored.meta, { [text]: text });
    }
    assert.equal((await api('GET', '/todos/count')).body.count, before + SQL.length, 'nothing was dropped or deleted');
  });

  it('matches only itself when used as a query value', async () => {
    for (const text of SQL) {
      const res = await api('GET', `/todos/count?title=${encodeURIComponent(text)}`);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { count: 1 });
    }
  });

  it('in a form body too', async () => {
    const text = SQL[0];
    const res = await api('POST', '/todos', `title=${encodeURIComponent(text)}`, { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.title, text);
  });
});

describe('error bodies', () => {
  it('a broken collection config answers 500 JSON without internals', async () => {
    const res = await api('GET', '/broken');
    assertError(res, 500);
  });

  it('a wrong master key is 401 JSON', async () => {
    assertError(await api('GET', '/todos', undefined, { 'x-master-key': 'wrong' }), 401, 'DPD_ERR_UNAUTHORIZED');
    assertError(await api('GET', '/todos', undefined, { 'x-master-key': '' }), 401, 'DPD_ERR_UNAUTHORIZED');
  });

  it('no 4xx/5xx body of this file contains a stack trace or a server file path (outside --dev)', () => {
    assert.ok(errorAnswers.length > 100, `checked ${errorAnswers.length} error answers`);
    for (const { what, text } of errorAnswers) {
      assert.doesNotMatch(text, /^\s*at\s|\\n\s*at\s|\bat\s+\S+\s+\(.*:\d+:\d+\)/m, `stack trace in ${what}: ${text}`);
      assert.doesNotMatch(text, /"stack"/, `stack in ${what}: ${text}`);
      assert.doesNotMatch(text, /\/(?:work|home|tmp|usr|opt|var|private)\/|[A-Z]:\\|node_modules|file:\/\/|\.[cm]?[jt]s:\d+/, `file path in ${what}: ${text}`);
      assert.equal(text.includes(server.appDir), false, `app folder in ${what}: ${text}`);
    }
  });
});
