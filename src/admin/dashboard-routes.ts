/**
 * The dashboard at `/dashboard/`: static files built from dashboard/ by `make build` (Vite) into
 * dist/dashboard. The files hold no secrets; everything they show comes from the admin API, which
 * asks for root. A strict Content-Security-Policy keeps the page to its own scripts and server.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { Errors } from '../errors.js';

/** dist/src/admin/ → dist/dashboard (where `vite build` writes). */
export const DASHBOARD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dashboard');

const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export async function dashboardRoutes(app: FastifyInstance, options: { dir?: string } = {}): Promise<void> {
  const dir = options.dir ?? DASHBOARD_DIR;
  app.get('/dashboard', async (_request, reply) => reply.redirect('/dashboard/', 302));
  if (!fs.existsSync(path.join(dir, 'index.html'))) {
    app.get('/dashboard/*', async () => {
      throw Errors.dashboardNotBuilt();
    });
    return;
  }
  await app.register(async (scoped) => {
    scoped.addHook('onSend', async (_request, reply) => {
      reply.header('Content-Security-Policy', CSP);
      reply.header('X-Frame-Options', 'DENY');
      reply.header('X-Content-Type-Options', 'nosniff');
      reply.header('Referrer-Policy', 'no-referrer');
    });
    await scoped.register(fastifyStatic, { root: dir, prefix: '/dashboard/', decorateReply: false, index: ['index.html'], cacheControl: false });
    scoped.addHook('onSend', async (request, reply) => {
      // index.html changes with every build; the hashed assets never do.
      reply.header('Cache-Control', request.url.startsWith('/dashboard/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    });
  });
}
