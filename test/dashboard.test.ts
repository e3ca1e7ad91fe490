/**
 * The dashboard in a real browser (headless Chromium driven by playwright-core, as
 * test/browser.test.ts): log in with the master key (a wrong one is refused), create a collection,
 * add a document, watch its change arrive in the live monitor with its audience, save a broken hook
 * and see the load error inline (and one broken on disk in the health view). Screenshots go to
 * docs/ (the README shows them).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { makeApp, ROOT, startServer, TODOS } from './helpers/server.js';
import { Peer } from './helpers/users.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'docs');

/** What this test uses of playwright-core (loaded by name so the build does not need it). */
interface Page {
  goto(url: string): Promise<unknown>;
  url(): string;
  fill(selector: string, value: string): Promise<void>;
  click(selector: string): Promise<void>;
  selectOption(selector: string, value: string): Promise<unknown>;
  waitForSelector(selector: string, options?: { timeout?: number }): Promise<unknown>;
  waitForFunction<A>(fn: (arg: A) => boolean, arg: A, options?: { timeout?: number }): Promise<unknown>;
  textContent(selector: string): Promise<string | null>;
  screenshot(options: { path: string; fullPage?: boolean }): Promise<unknown>;
  setViewportSize(size: { width: number; height: number }): Promise<void>;
  on(event: 'pageerror', fn: (err: Error) => void): void;
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
  return ((await import(name)) as { chromium: Chromium }).chromium;
}

/** Waits until the element's text contains `text` (bounded); returns the text. */
async function textIn(page: Page, selector: string, text: string, timeout = 15_000): Promise<string> {
  // A function, not a string: the dashboard's Content-Security-Policy forbids eval.
  await page.waitForFunction(([sel, want]) => (document.querySelector(sel)?.textContent ?? '').includes(want), [selector, text], { timeout });
  return (await page.textContent(selector)) ?? '';
}

describe('dashboard in headless Chromium', () => {
  it('logs in, creates a collection, adds a document, sees it in the monitor, and shows hook errors', { timeout: 180_000 }, async (t) => {
    const chromium = await loadChromium();
    const server = await startServer(makeApp({ todos: TODOS }), { env: { INSTANCE_ID: 'dashboard-test' }, args: ['--hook-workers', '1'] });
    t.after(() => server.stop(), { timeout: 30_000 });
    // Someone using the app: an anonymous real-time client the monitor shows as the audience.
    const visitor = await Peer.connect(server, 'visitor');
    t.after(() => visitor.close(), { timeout: 30_000 });

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'], headless: true, timeout: 60_000 });
    t.after(() => browser.close(), { timeout: 30_000 });
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1280, height: 800 });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));

    // /dashboard redirects to the app, which asks for the master key; a wrong key is refused.
    await page.goto(`${server.url}/dashboard`);
    assert.equal(page.url(), `${server.url}/dashboard/`);
    await page.fill('#master-key', 'not-the-key');
    await page.click('#login');
    await textIn(page, '.login .error', 'wrong master key');
    await page.fill('#master-key', server.masterKey!);
    await page.click('#login');
    await textIn(page, '#instance', 'dashboard-test');

    // Create a collection with one required property.
    await page.fill('#new-name', 'notes');
    await page.fill('.prop-name', 'text');
    await page.click('.props input[type=checkbox]');
    await page.click('#create');
    await textIn(page, '#create-message', 'created /notes');
    await page.waitForSelector('li[data-collection="notes"].selected');
    const config = JSON.parse(fs.readFileSync(path.join(server.appDir, 'resources', 'notes', 'config.json'), 'utf8'));
    assert.deepEqual(config, { type: 'Collection', properties: { text: { type: 'string', required: true } } });
    assert.equal((await server.get('/notes')).status, 200);

    // Add a document in the data grid.
    await page.click('button[data-tab="Data"]');
    await page.fill('#document-draft', '{"text": "hello from the dashboard"}');
    await page.click('#save-document');
    await textIn(page, '#documents', 'hello from the dashboard');
    const stored = (await server.get('/notes')).body;
    assert.deepEqual(stored.map((d: { text: string }) => d.text), ['hello from the dashboard']);
    // A document the schema refuses: the grid says why.
    await page.fill('#document-draft', '{"other": 1}');
    await page.click('#save-document');
    await textIn(page, '#data-message', 'validation failed');

    // The change arrives in the live monitor, with its audience (the visitor's socket).
    await visitor.take((f) => f.type === 'collection_change' && f.collection === 'notes', 'the visitor got the change');
    await page.click('button[data-tab="Monitor"]');
    await textIn(page, '#monitor', 'notes created');
    await textIn(page, '#monitor .audience', 'anonymous ×1');
    await textIn(page, '#monitor-state', 'live');
    // A change made elsewhere (REST) streams in while the monitor is open.
    assert.equal((await server.post('/notes', { text: 'made over REST' })).status, 200);
    await textIn(page, '#monitor', 'made over REST');
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-monitor.png') });

    // A hook that does not compile is refused, with the file and line inline; nothing is written.
    await page.click('button[data-tab="Hooks"]');
    await page.selectOption('#hook-event', 'validate');
    await page.fill('#hook-source', 'if (!this.text.trim()) error("text", "is blank"\n');
    await page.click('#save-hook');
    const refused = await textIn(page, '#hook-result.hook-error', 'notes/validate.js:1:');
    assert.match(refused, /notes\/validate\.js/);
    assert.equal(fs.existsSync(path.join(server.appDir, 'resources', 'notes', 'validate.js')), false);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-hook-error.png') });
    // Fixed, it saves and applies.
    await page.fill('#hook-source', 'if (!this.text.trim()) error("text", "is blank");\n');
    await page.click('#save-hook');
    await textIn(page, '#hook-result', 'notes/validate.js saved and loaded');
    assert.equal((await server.post('/notes', { text: '   ' })).status, 400);

    // A hook broken on disk (outside the dashboard) shows in the health view.
    fs.writeFileSync(path.join(server.appDir, 'resources', 'notes', 'post.js'), 'this is not javascript');
    await page.click('button[data-tab="Health"]');
    await textIn(page, '#health', 'notes/post.js:1:');
    await textIn(page, '#health', 'pid');

    // Connections show the instance each is on.
    await page.click('button[data-tab="Connections"]');
    await textIn(page, '#connections', 'dashboard-test');
    await textIn(page, '#connections', 'anonymous');
    assert.deepEqual(pageErrors, []);
    // A dashboard still following the monitor does not hold up the shutdown (past the 10 s grace
    // the server would exit 1).
    assert.equal(await server.stop(), 0);
  });
});
