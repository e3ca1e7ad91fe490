/**
 * Request bodies: JSON (also when no or an unknown Content-Type is sent, as Deployd) and HTML
 * form posts. Every decoded body passes the input guards before a handler sees it.
 */
import type { FastifyInstance } from 'fastify';
import qs from 'qs';
import { Errors } from '../errors.js';
import { checkEncodedKeys, checkInput } from '../util/input.js';

export function installBodyParsers(app: FastifyInstance, options: { maxDepth: number }): void {
  app.removeAllContentTypeParsers();

  const json = (body: string): unknown => {
    if (body.trim() === '') return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      throw Errors.invalidJson((err as Error).message);
    }
    checkInput(parsed, options.maxDepth);
    return parsed;
  };

  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, json(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    try {
      checkEncodedKeys(body as string);
      // qs would keep a badly encoded value as its raw text; refuse it like a bad key.
      for (const pair of (body as string).split('&')) {
        const eq = pair.indexOf('=');
        if (eq !== -1) decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, ' '));
      }
      const parsed = qs.parse(body as string, { depth: options.maxDepth, plainObjects: true, parameterLimit: 1000 });
      checkInput(parsed, options.maxDepth);
      done(null, { ...parsed });
    } catch (err) {
      done(err instanceof URIError ? Errors.badRequest('the form body is not valid percent-encoding') : (err as Error), undefined);
    }
  });

  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, json(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}
