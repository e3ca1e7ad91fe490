/**
 * The floor bench/js-hooks.js measures deployd-ts's JavaScript hooks against
 * (bench/baseline-hook-server.js) must do the work it stands for: each hooked POST goes through the
 * validate function in its isolated-vm child, whose errors refuse the document, and `/plain` only
 * stores. A floor that skipped the child would make any hook look slow.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';

interface Handle { url: string; pid: number; check(): void; stop(): Promise<void> }
interface Target { start(): Promise<Handle> }
const { baselineHook } = (await import(new URL('../../bench/targets.js', import.meta.url).href)) as { baselineHook: () => Target };

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Direct children of `pid` (Linux). */
function childrenOf(pid: number): number[] {
  return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

describe('bench floor for JS hooks (baseline-hook-server)', { timeout: 60_000 }, () => {
  let server: Handle | undefined;
  before(async () => { server = await baselineHook().start(); }, { timeout: 30_000 });
  after(async () => { await server?.stop(); }, { timeout: 15_000 });

  it('runs the validate function in a child process: a document without a title is refused', async () => {
    assert.equal(childrenOf(server!.pid).length, 1, 'one hook child beside the server');
    const refused = await post(`${server!.url}/hooked`, { priority: 3 });
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.json, { errors: { title: 'is required' } });
    const stored = await post(`${server!.url}/hooked`, { title: 'ok', priority: 3 });
    assert.equal(stored.status, 200);
    assert.match(String(stored.json.id), /^[0-9a-f]{16}$/);
    assert.equal(stored.json.title, 'ok');
  });

  it('stores plain POSTs without asking the child', async () => {
    const stored = await post(`${server!.url}/plain`, { priority: 1 });
    assert.equal(stored.status, 200);
    assert.equal(stored.json.priority, 1);
    server!.check();
  });
});
