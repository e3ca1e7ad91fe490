/**
 * The app `make run` serves (examples/todos), in two headless Chromium pages: a write in one page,
 * or over plain HTTP as curl would, shows up in the other at once over /ws; the AfterCommit hooks'
 * custom events (seed: urgent task, task completed) appear as notifications in both, from the
 * JavaScript hook (todos) and the Go hook (incidents); and the page that wrote shows the hook's
 * response message.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { goBuilt, useGo } from './helpers/go.js';
import { ROOT, startServer } from './helpers/server.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

interface Page {
  goto(url: string): Promise<unknown>;
  evaluate<T>(fn: string): Promise<T>;
  waitForFunction(fn: string, arg?: unknown, options?: { timeout?: number }): Promise<unknown>;
  on(event: 'pageerror', fn: (err: Error) => void): void;
}
interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

async function launch(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  const name = 'playwright-core';
  const { chromium } = (await import(name)) as { chromium: { launch(o: object): Promise<Browser> } };
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'], headless: true, timeout: 60_000 });
}

/** A copy of examples/todos without its .deployd/ (key, database, builds from `make run`). */
function copyExample(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpd-example-'));
  fs.cpSync(path.join(ROOT, 'examples', 'todos'), dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}.deployd`) });
  return dir;
}

/** Fills a section's form and submits it, as a person would. */
function submit(collection: string, title: string, priority: number): string {
  return `(() => {
    const form = document.querySelector('section[data-collection="${collection}"] form');
    form.querySelector('input[name=title]').value = ${JSON.stringify(title)};
    form.querySelector('select[name=priority]').value = '${priority}';
    form.requestSubmit();
  })()`;
}

const listed = (collection: string, title: string) =>
  `[...document.querySelectorAll('section[data-collection="${collection}"] li span')].some((s) => s.textContent.includes(${JSON.stringify(title)}))`;
const notified = (kind: string, text: string) => `window.notified.some((n) => n.kind === '${kind}' && n.text.includes(${JSON.stringify(text)}))`;
const responseSays = (collection: string, text: string) =>
  `document.querySelector('section[data-collection="${collection}"] .response').textContent.includes(${JSON.stringify(text)})`;

describe('the example app in two browser pages', () => {
  it('updates live, shows the seed\'s custom events as notifications and the AfterCommit message', { timeout: 720_000 }, async (t) => {
    useGo();
    const app = copyExample();
    t.after(() => fs.rmSync(app, { recursive: true, force: true }), { timeout: 30_000 });
    const server = await startServer(app);
    t.after(() => server.stop(), { timeout: 30_000 });
    // The Go hook's first build runs in the background (minutes on a cold Go cache): wait for it here.
    const warm = await goBuilt(() => server.post('/incidents', { title: 'warm-up', priority: 1 }));
    assert.equal(warm.status, 200, warm.text);

    const browser = await launch();
    t.after(() => browser.close(), { timeout: 30_000 });
    const [a, b] = [await browser.newPage(), await browser.newPage()];
    const errors: string[] = [];
    for (const page of [a, b]) {
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(`${server.url}/`);
      await page.waitForFunction('window.live === true && window.loaded === true', undefined, { timeout: 20_000 });
    }
    const wait = (page: Page, condition: string, what: string) =>
      page.waitForFunction(condition, undefined, { timeout: 15_000 }).catch((err: Error) => { throw new Error(`${what}: ${err.message}`); });

    // Page A writes through its form; page B shows it without a reload.
    await a.evaluate(submit('todos', 'Write the report', 3));
    await wait(b, listed('todos', 'Write the report'), 'page B lists page A\'s todo');

    // A write over plain HTTP (curl) reaches both; priority 9 → an urgent notification in both.
    assert.equal((await server.post('/todos', { title: 'Fix the outage', priority: 9 })).status, 200);
    for (const page of [a, b]) {
      await wait(page, listed('todos', 'Fix the outage'), 'the curl write is listed');
      await wait(page, notified('urgent_task_created', 'Fix the outage'), 'the urgent notification');
    }

    // Page A's own urgent task: its response message is shown in page A.
    await a.evaluate(submit('todos', 'Call the customer', 8));
    await wait(a, responseSays('todos', 'High priority task created - notifications sent!'), 'the AfterCommit message in page A');
    await wait(b, notified('urgent_task_created', 'Call the customer'), 'page B is notified');

    // Page B completes a task: "task completed" in both, and the congratulation in page B.
    await b.evaluate(`(() => {
      const li = [...document.querySelectorAll('section[data-collection="todos"] li')].find((l) => l.textContent.includes('Write the report'));
      const box = li.querySelector('input[type=checkbox]');
      box.checked = true;
      box.dispatchEvent(new Event('change'));
    })()`);
    await wait(b, responseSays('todos', 'Congratulations! Task completed successfully!'), 'the completion message in page B');
    await wait(a, notified('task_completed', 'Write the report'), 'page A is told the task was completed');
    await wait(a, `document.querySelector('section[data-collection="todos"] li.done') !== null`, 'page A shows it done');

    // The Go hook (incidents/aftercommit.go): the same events, and its response message.
    await a.evaluate(submit('incidents', 'Disk full', 9));
    await wait(a, responseSays('incidents', 'incident recorded by aftercommit.go'), 'the Go hook\'s response message');
    await wait(b, listed('incidents', 'Disk full'), 'page B lists the incident');
    await wait(b, notified('urgent_task_created', 'Disk full'), 'the Go hook\'s urgent event in page B');

    assert.deepEqual(errors, []);
  });
});
