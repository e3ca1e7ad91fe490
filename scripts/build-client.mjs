#!/usr/bin/env node
// `make build`: the browser client (/dpd.js) bundled by esbuild from src/client/ into one script,
// dist/src/client/browser-client.js, which src/client/browser-bundle.ts wraps per app. The script
// defines `deploydClient` (the module's exports); nothing leaks out of the server's wrapper.
//   node scripts/build-client.mjs
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

await build({
  entryPoints: [path.join(root, 'src', 'client', 'index.ts')],
  outfile: path.join(root, 'dist', 'src', 'client', 'browser-client.js'),
  bundle: true,
  format: 'iife',
  globalName: 'deploydClient',
  platform: 'browser',
  // The language level tsc compiles the server to (tsconfig.json): evergreen browsers and Node 20.
  target: ['es2022'],
  legalComments: 'none',
  logLevel: 'warning',
});
