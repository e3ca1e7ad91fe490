/**
 * Every failure leaves as JSON with a stable code. Client mistakes keep their 4xx status and
 * message; anything unexpected is logged and answered as a bare 500 (the stack only with --dev).
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { DeploydError, Errors } from '../errors.js';

export function installErrorHandling(app: FastifyInstance, options: { dev: boolean; bodyLimit: number }): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const error = toDeploydError(err, options.bodyLimit);
    if (error.statusCode >= 500 && !(err instanceof DeploydError)) request.log.error({ err }, 'request failed');
    const body = error.toJSON();
    if (options.dev && error.statusCode >= 500 && err.stack) body.stack = err.stack;
    reply.code(error.statusCode).type('application/json; charset=utf-8').send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const known = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'];
    const error = known.includes(request.method) ? Errors.resourceNotFound() : Errors.methodNotAllowed(request.method);
    if (error.statusCode === 405) reply.header('Allow', known.join(', '));
    reply.code(error.statusCode).type('application/json; charset=utf-8').send(error.toJSON());
  });
}

export function toDeploydError(err: FastifyError | Error, bodyLimit: number): DeploydError {
  if (err instanceof DeploydError) return err;
  const code = (err as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return Errors.bodyTooLarge(bodyLimit);
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return Errors.unsupportedMediaType('');
  if (err instanceof SyntaxError) return Errors.invalidJson(err.message);
  const status = (err as FastifyError).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new DeploydError('DPD_ERR_BAD_REQUEST', status, err.message);
  }
  return Errors.internal();
}
