#!/usr/bin/env node
// `make client-package`: the client (`deployd-ts/client`) as its own npm package, @deployd-ts/client,
// with no dependencies: src/client/ bundled into one ES module by esbuild, its .d.ts, a package.json and a README,
// in dist/client-package/, then `npm pack` there. Prints the tarball's path (last line).
//   node scripts/client-package.mjs [--out DIR] [--no-pack]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const out = path.resolve(outIndex >= 0 ? args[outIndex + 1] : path.join(root, 'dist', 'client-package'));
const built = path.join(root, 'dist', 'src', 'client');
if (!fs.existsSync(path.join(built, 'index.js'))) {
  console.error('client-package: dist/src/client/index.js is missing: run `make build` first');
  process.exit(1);
}
const server = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
// One ES module bundled by esbuild from src/client/ (its modules import each other), and the types
// of its public surface, which src/client/index.ts declares in full.
await build({
  entryPoints: [path.join(root, 'src', 'client', 'index.ts')],
  outfile: path.join(out, 'index.js'),
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: ['es2022'],
  legalComments: 'none',
  logLevel: 'warning',
});
const types = fs.readFileSync(path.join(built, 'index.d.ts'), 'utf8').replace(/^\/\/# sourceMappingURL=.*$/m, '');
fs.writeFileSync(path.join(out, 'index.d.ts'), types);
for (const file of ['index.js', 'index.d.ts']) {
  const text = fs.readFileSync(path.join(out, file), 'utf8');
  if (/^\s*import\s|\brequire\(/m.test(text)) throw new Error(`${file} imports something: the client must stay dependency-free`);
}
fs.writeFileSync(path.join(out, 'package.json'), JSON.stringify({
  name: '@deployd-ts/client',
  version: server.version,
  description: 'The deployd-ts client (Deployd\'s dpd.js API) for browsers, bundlers and Node 20+: REST with callbacks or promises, real-time over WebSocket with resume. No dependencies.',
  license: server.license,
  type: 'module',
  main: './index.js',
  types: './index.d.ts',
  exports: { '.': { types: './index.d.ts', default: './index.js' } },
  files: ['index.js', 'index.d.ts', 'README.md'],
  sideEffects: false,
  engines: { node: '>=20' },
}, null, 2) + '\n');
fs.writeFileSync(path.join(out, 'README.md'), `# @deployd-ts/client

The deployd-ts client: Deployd's \`dpd\` API over HTTP and a WebSocket, with no
dependencies (the same code the server serves as \`/dpd.js\`).

\`\`\`js
import { createClient } from '@deployd-ts/client';
import { WebSocket } from 'ws'; // Node 20 only: browsers and Node 22+ have a global WebSocket

const dpd = createClient({ baseUrl: 'http://localhost:2403', WebSocket, collections: ['todos'] });
const todo = await dpd.todos.post({ title: 'Write the report' });
dpd.todos.on('created', (doc) => console.log('created', doc.title));
await dpd.subscribe(['todos']);   // only todos' changes on this socket
\`\`\`

Typed for your app: \`deployd types --client @deployd-ts/client\` in the app folder writes
\`deployd-types.ts\`; \`createAppClient({ baseUrl })\` from it returns a client whose documents, bodies
and custom events are typed.
`);
if (!args.includes('--no-pack')) {
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', out], { cwd: out, encoding: 'utf8' }).trim().split('\n').pop();
  console.log(path.join(out, tarball));
}
