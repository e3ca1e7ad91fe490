/**
 * The dependency direction of src/, checked on the sources: a module may import only from its own
 * folder or from the layers below it, so the domain (`core/`) can be read and tested without HTTP,
 * stores or hooks, and no two folders import each other. ARCHITECTURE.md draws the same picture.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/** Folder (or top-level file) → the folders it may import, besides itself. */
const BOTTOM = ['errors', 'util'];
const ALLOWED: Record<string, string[]> = {
  errors: [],
  util: ['errors'],
  core: [...BOTTOM],
  query: [...BOTTOM, 'core'],
  store: [...BOTTOM, 'core', 'query'],
  // The hook runners speak the protocol (hooks/protocol.ts) and know nothing of collections or HTTP.
  hooks: [...BOTTOM, 'core'],
  // The log carries the hook protocol's JSON values; it knows nothing of HTTP, collections or sockets.
  events: [...BOTTOM, 'hooks'],
  // The gateway reads the log and asks an injected ReadAccess who may read: never the collections.
  realtime: [...BOTTOM, 'events', 'hooks'],
  // Decisions only (rules, read and write policy): no I/O, so the pipeline and real-time can share it.
  policy: [...BOTTOM, 'core', 'query', 'hooks'],
  // Sessions and who calls; a session's users collection is found through an injected directory.
  auth: [...BOTTOM, 'core', 'hooks', 'store'],
  // The request scope, its outbox and the one place a request runs.
  pipeline: [...BOTTOM, 'core', 'hooks', 'events', 'auth', 'policy'],
  // CRUD over the pipeline; read-access.ts implements the gateway's ReadAccess interface (a type).
  collections: [...BOTTOM, 'core', 'query', 'store', 'hooks', 'events', 'policy', 'auth', 'pipeline', 'realtime'],
};

/** Imports between folders whose cycle is known and being removed; each entry must still exist. */
const KNOWN_CYCLES: Array<[string, string]> = [];

interface Edge { from: string; to: string; file: string; spec: string }

function layerOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length === 1 ? rel[0].replace(/\.ts$/, '') : rel[0];
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every relative import and export-from of src/, type-only ones included (they couple too). */
function edges(): Edge[] {
  const out: Edge[] = [];
  const importRe = /(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s*'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g;
  for (const file of sourceFiles(SRC)) {
    // The browser client is compiled on its own and never imports the server.
    if (file.includes(`${path.sep}client${path.sep}`)) continue;
    const text = fs.readFileSync(file, 'utf8');
    for (const match of text.matchAll(importRe)) {
      const spec = match[1] ?? match[2];
      const target = path.resolve(path.dirname(file), spec);
      if (!target.startsWith(SRC)) continue;
      const from = layerOf(file);
      const to = layerOf(target.replace(/\.js$/, '.ts'));
      if (from !== to) out.push({ from, to, file: path.relative(SRC, file), spec });
    }
  }
  return out;
}

describe('dependency direction of src/', () => {
  const all = edges();

  it('finds the imports it checks (the scanner itself works)', () => {
    assert.ok(all.some((e) => e.from === 'store' && e.to === 'core'), 'store imports core');
    assert.ok(all.some((e) => e.from === 'server'), 'the composition root imports the layers');
  });

  for (const [layer, allowed] of Object.entries(ALLOWED)) {
    it(`${layer}/ imports only ${allowed.length ? allowed.join(', ') : 'nothing outside itself'}`, () => {
      const wrong = all.filter((e) => e.from === layer && !allowed.includes(e.to));
      assert.deepEqual(wrong.map((e) => `${e.file} → ${e.spec}`), []);
    });
  }

  it('no two folders import each other, directly or through others (apart from the known cycles)', () => {
    const graph = new Map<string, Set<string>>();
    for (const e of all) {
      if (KNOWN_CYCLES.some(([a, b]) => a === e.from && b === e.to)) continue;
      if (!graph.has(e.from)) graph.set(e.from, new Set());
      graph.get(e.from)!.add(e.to);
    }
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (node: string): void => {
      state.set(node, 'open');
      stack.push(node);
      for (const next of graph.get(node) ?? []) {
        if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].join(' → '));
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(node, 'done');
    };
    for (const node of graph.keys()) if (!state.has(node)) visit(node);
    assert.deepEqual(cycles, []);
  });

  it('each known cycle still exists (remove it from the list once it is gone)', () => {
    for (const [a, b] of KNOWN_CYCLES) {
      assert.ok(all.some((e) => e.from === a && e.to === b), `${a} → ${b} no longer exists`);
    }
  });
});
