// Builds the dashboard (Preact) into dist/dashboard, served by the server at /dashboard/ (`make build`).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/dashboard/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // One small bundle: no code splitting, no inline data URLs (the CSP allows only 'self').
    assetsInlineLimit: 0,
  },
});
