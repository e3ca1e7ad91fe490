/**
 * /dpd.js in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core)
 * opens a page from the app's public/ folder that loads `<script src="/dpd.js">`, receives a
 * collection change made over REST by the test, and goes on receiving after the server restarts
 * on the same port. Without Chromium or playwright-core this fails, saying what to install.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { eventually, freePort, makeApp, ROOT, startServer, TODOS } from './helpers/server.js';
import { signup } from './helpers/users.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** What this test uses of playwright-core (loaded by name so the build does not need it). */
interface Page {
  goto(url: string): Promise<unknown>;
  evaluate<T>(fn: string | (() => T | Promise<T>)): Promise<T>;
  waitForFunction(fn: string, arg?: unknown, options?: { timeout?: number }): Promise<unknown>;
  on(event: 'pageerror', fn: (err: Error) => void): void;
  on(event: 'console', fn: (message: { type(): string; text(): string }) => void): void;
}
interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}
interface Chromium {
  launch(options: { executablePath: string; args: string[]; headless: boolean; timeout: number }): Promise<Browser>;
}

async function loadChromium(): Promise<Chromium> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: run \`apt-get update && apt-get install -y chromium\` (Debian), or set CHROMIUM_PATH`);
  }
  const name = 'playwright-core';
  try {
    const module = (await import(name)) as { chromium: Chromium };
    return module.chromium;
  } catch (err) {
    throw new Error(`playwright-core is not installed (npm install --save-dev playwright-core): ${(err as Error).message}`);
  }
}


const PAGE = `<!doctype html>
<html>
<head><meta charset="utf-8"><title>dpd.js live</title></head>
<body>
<ul id="todos"></ul>
<script src="/dpd.js"></script>
<script>
  window.received = [];
  window.resyncs = 0;
  window.reconnects = 0;
  dpd.todos.on('created', function (todo) {
    window.received.push(todo.title);
    var li = document.createElement('li');
    li.textContent = todo.title;
    document.getElementById('todos').appendChild(li);
  });
  dpd.on('resync', function () { window.resyncs++; });
  dpd.on('reconnect', function () { window.reconnects++; });
  dpd.socketReady(function () { window.ready = true; });
</script>
</body>
</html>
`;

describe('dpd.js in headless Chromium', () => {
  it('receives collection changes live, and again after the server restarts on the same port', { timeout: 120_000 }, async (t) => {
    const chromium = await loadChromium();
    const port = await freePort();
    const appDir = makeApp({ todos: TODOS }, { 'public/index.html': PAGE });
    let server = await startServer(appDir, { args: ['--port', String(port)] });
    t.after(() => server.stop(), { timeout: 30_000 });

    const script = await server.get('/dpd.js');
    assert.equal(script.status, 200, `GET /dpd.js answered ${script.status}: is clientRoutes registered in src/server.ts?`);

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'], headless: true, timeout: 60_000 });
    t.after(() => browser.close(), { timeout: 30_000 });
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));

    await page.goto(`${server.url}/index.html`);
    await page.waitForFunction('window.ready === true', undefined, { timeout: 15_000 });
    assert.equal(await page.evaluate('typeof dpd.todos.get'), 'function');
    assert.equal(await page.evaluate('dpd.getBaseUrl()'), server.url);

    // REST from the page works too (and its own write comes back as an event).
    const fromPage = await page.evaluate<{ title: string; id: string }>('dpd.todos.post({ title: "from the page" })');
    assert.equal(fromPage.title, 'from the page');
    assert.match(fromPage.id, /^[0-9a-f]{16}$/);

    // A change made elsewhere arrives live.
    assert.equal((await server.post('/todos', { title: 'live 1' })).status, 200);
    await page.waitForFunction('window.received.includes("live 1")', undefined, { timeout: 10_000 });
    assert.deepEqual(await page.evaluate('window.received'), ['from the page', 'live 1']);

    // Restart the server on the same port: the page reconnects by itself, is told to resync
    // (the new server cannot replay), and live changes flow again.
    assert.equal(await server.stop(), 0);
    server = await startServer(appDir, { args: ['--port', String(port)], masterKey: server.masterKey });
    await page.waitForFunction('window.reconnects >= 1', undefined, { timeout: 30_000 });
    await page.waitForFunction('window.resyncs >= 1', undefined, { timeout: 10_000 });
    assert.equal((await server.post('/todos', { title: 'live 2' })).status, 200);
    await page.waitForFunction('window.received.includes("live 2")', undefined, { timeout: 10_000 });
    assert.deepEqual(await page.evaluate('window.received'), ['from the page', 'live 1', 'live 2']);
    assert.equal(await page.evaluate('document.querySelectorAll("#todos li").length'), 3);
    assert.deepEqual(pageErrors, []);
  });

  it("runs the README's real-time snippet (the seed page's connection code) as written", { timeout: 60_000 }, async (t) => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Real-time'));
    const snippet = /```javascript\n([\s\S]*?)```/.exec(section)![1];
    assert.match(snippet, /new WebSocket\('ws:\/\/localhost:2403\/ws'\)/);
    const chromium = await loadChromium();
    const appDir = makeApp({ todos: TODOS }, {
      'public/seed.html': '', // public/ must exist at start
      'resources/todos/aftercommit.js': "emit('seed_event', { title: this.title });", // for the snippet's handleCustomEvent
    });
    const server = await startServer(appDir);
    t.after(() => server.stop(), { timeout: 30_000 });
    // Only the address changes: the test server listens on a free port, not 2403.
    const code = snippet.replace('ws://localhost:2403/ws', `${server.url.replace('http://', 'ws://')}/ws`);
    fs.writeFileSync(path.join(appDir, 'public', 'seed.html'), `<!doctype html><meta charset="utf-8"><script>\n${code}\n</script>`);

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'], headless: true, timeout: 60_000 });
    t.after(() => browser.close(), { timeout: 30_000 });
    const page = await browser.newPage();
    const logs: string[] = [];
    const pageErrors: string[] = [];
    page.on('console', (message) => logs.push(message.text()));
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${server.url}/seed.html`);
    // Each wait ends when the line is logged; the assertion after it shows the log when it is not.
    const logged = (line: (l: string) => boolean) => eventually(() => logs.some(line), 20_000).catch(() => undefined);
    await logged((l) => l === 'Connected to go-deployd WebSocket');
    assert.ok(logs.includes('Connected to go-deployd WebSocket'), logs.join('\n'));
    assert.equal((await server.post('/todos', { title: 'seen by the seed snippet' })).status, 200);
    await logged((l) => l === 'Collection: todos, Action: created');
    assert.ok(logs.includes('Collection: todos, Action: created'), logs.join('\n'));
    await logged((l) => l.startsWith('Custom event: seed_event'));
    assert.ok(logs.some((l) => l.startsWith('Custom event: seed_event')), logs.join('\n'));
    assert.deepEqual(pageErrors, []);
  });
});

/**
 * A Deployd app's own browser tests: mocha in the page, dpd.js in callback style. The suite has one
 * test that fails on purpose with an assertion thrown inside a dpd callback: Deployd's dpd.js calls
 * callbacks directly, so mocha sees that error and fails the test at once (from a promise handler
 * it would be an unhandled rejection, and the test would only time out).
 */
const MOCHA_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>app tests</title></head>
<body>
<div id="mocha"></div>
<script src="/mocha.js"></script>
<script src="/dpd.js"></script>
<script>
window.rejections = 0;
window.addEventListener('unhandledrejection', function () { window.rejections++; });
mocha.setup({ ui: 'bdd', timeout: 5000 });
function check(done, fn) { return function () { try { fn.apply(this, arguments); done(); } catch (e) { done(e); } }; }
describe('dpd.js as a Deployd app uses it', function () {
  it('posts and calls back with (result, error)', function (done) {
    dpd.todos.post({ title: 'from mocha' }, check(done, function (todo, err) {
      if (err || todo.title !== 'from mocha') throw new Error('unexpected ' + JSON.stringify(err || todo));
    }));
  });
  it('FAILS ON PURPOSE: an assertion inside a callback', function (done) {
    dpd.todos.get(function () { throw new Error('thrown inside a dpd callback'); });
  });
  it('sends dpd._dpd.ajax.headers (a Bearer token) and answers server:acksession after a login', function (done) {
    dpd.on('server:acksession', function () { window.acked = true; });
    dpd.users.login({ username: 'mocha', password: 'mocha-password' }, function (session, err) {
      if (err) return done(new Error(JSON.stringify(err)));
      var other = dpd.createClient({ baseUrl: location.origin, collections: ['users'] });
      other._dpd.ajax.headers.Authorization = 'Bearer ' + session.id;
      other.users.me(check(done, function (me) {
        if (!me || me.username !== 'mocha') throw new Error('me: ' + JSON.stringify(me));
      }));
    });
  });
  it('setBaseUrl() without an argument goes back to the page origin', function () {
    dpd.setBaseUrl('http://elsewhere.invalid:1');
    dpd.setBaseUrl();
    if (dpd.getBaseUrl() !== location.origin) throw new Error(dpd.getBaseUrl());
  });
});
window.addEventListener('load', function () {
  var results = { passed: [], failed: [] };
  mocha.run(function () { window.results = results; })
    .on('pass', function (test) { results.passed.push(test.title); })
    .on('fail', function (test, err) { results.failed.push(test.title + ': ' + err.message); });
});
</script>
</body></html>
`;

describe('dpd.js sends what the server emits', () => {
  it('an app whose scripts emit their own "todos:created" gets each call once, as with Deployd\'s dpd.js', { timeout: 120_000 }, async (t) => {
    const chromium = await loadChromium();
    const appDir = makeApp({ todos: TODOS, notes: TODOS }, {
      'resources/todos/aftercommit.js': `if (method === 'POST') emit('todos:created', { title: this.title, from: 'script' });`,
      'public/index.html': `<!doctype html><meta charset="utf-8"><script src="/dpd.js"></script><script>
window.calls = []; window.notes = [];
dpd.todos.on('created', function (doc) { window.calls.push(doc); });
dpd.notes.on('created', function (doc) { window.notes.push(doc.title); });
dpd.socketReady(function () { window.ready = true; });
</script>`,
    });
    const server = await startServer(appDir);
    t.after(() => server.stop(), { timeout: 30_000 });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'], headless: true, timeout: 60_000 });
    t.after(() => browser.close(), { timeout: 30_000 });
    const page = await browser.newPage();
    await page.goto(`${server.url}/index.html`);
    await page.waitForFunction('window.ready === true', undefined, { timeout: 15_000 });
    assert.equal((await server.post('/todos', { title: 'once' })).status, 200);
    // A collection without its own events still gets the client's change events.
    assert.equal((await server.post('/notes', { title: 'marker' })).status, 200);
    await page.waitForFunction('window.notes.includes("marker")', undefined, { timeout: 10_000 });
    assert.deepEqual(await page.evaluate('window.calls'), [{ title: 'once', from: 'script' }]);
  });
});

describe('dpd.js with mocha in headless Chromium (a Deployd app\'s own browser tests)', () => {
  it('callbacks are called directly: an assertion thrown in one fails its mocha test, not a timeout; Deployd\'s API is there', { timeout: 120_000 }, async (t) => {
    const chromium = await loadChromium();
    const appDir = makeApp({ todos: TODOS, users: { type: 'UserCollection' } }, {
      'public/index.html': MOCHA_PAGE,
      'public/mocha.js': fs.readFileSync(path.join(ROOT, 'node_modules', 'mocha', 'mocha.js'), 'utf8'),
    });
    const server = await startServer(appDir);
    t.after(() => server.stop(), { timeout: 30_000 });
    await signup(server, 'mocha', 'mocha-password');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'], headless: true, timeout: 60_000 });
    t.after(() => browser.close(), { timeout: 30_000 });
    const page = await browser.newPage();
    await page.goto(`${server.url}/index.html`);
    await page.waitForFunction('window.results !== undefined', undefined, { timeout: 30_000 });
    const results = await page.evaluate<{ passed: string[]; failed: string[] }>('window.results');
    assert.deepEqual(results.failed, ['FAILS ON PURPOSE: an assertion inside a callback: thrown inside a dpd callback']);
    assert.equal(results.passed.length, 3, JSON.stringify(results));
    assert.equal(await page.evaluate('window.rejections'), 0, 'no unhandled promise rejection');
    await page.waitForFunction('window.acked === true', undefined, { timeout: 10_000 });
  });
});
