/**
 * Every failure leaves as JSON with a stable code. Client mistakes keep their 4xx status and
 * message; anything unexpected is logged and answered as a bare 500 (the stack only with --dev).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DeploydError, Errors } from '../errors.js';

export function installErrorHandling(app: FastifyInstance, options: { dev: boolean; bodyLimit: number }): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const error = toDeploydError(err, options.bodyLimit);
    if (error.statusCode >= 500 && !(err instanceof DeploydError)) request.log.error({ err }, 'request failed');
    const body = error.toJSON();
    if (options.dev && error.statusCode >= 500 && err.stack) body.stack = err.stack;
    if (error.headers) reply.headers(error.headers);
    reply.code(error.statusCode).type('application/json; charset=utf-8').send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const known = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'];
    const error = known.includes(request.method) ? Errors.resourceNotFound() : Errors.methodNotAllowed(request.method);
    if (error.statusCode === 405) reply.header('Allow', known.join(', '));
    reply.code(error.statusCode).type('application/json; charset=utf-8').send(error.toJSON());
  });
}

/**
 * For Fastify's `frameworkErrors` option (a constructor option, so `createServer` must pass it):
 * errors raised before routing, such as a path that is not valid percent-encoding
 * (FST_ERR_BAD_URL), otherwise leave with Fastify's own body, without `status` or a DPD_ERR_* code.
 */
export function frameworkErrorHandler(options: { bodyLimit: number }) {
  return (err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void => {
    const error = err.code === 'FST_ERR_BAD_URL'
      ? Errors.badRequest('the URL path is not valid percent-encoding')
      : toDeploydError(err, options.bodyLimit);
    reply.code(error.statusCode).type('application/json; charset=utf-8').send(error.toJSON());
  };
}

export function toDeploydError(err: FastifyError | Error, bodyLimit: number): DeploydError {
  if (err instanceof DeploydError) return err;
  const code = (err as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return Errors.bodyTooLarge(bodyLimit);
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return Errors.unsupportedMediaType('');
  if (err instanceof SyntaxError) return Errors.invalidJson(err.message);
  const status = (err as FastifyError).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return Errors.clientError(status, err.message);
  }
  return Errors.internal();
}

/**
 * Errors Node's HTTP parser raises before any route runs (URL or headers over 16 KB, malformed
 * requests, timeouts) get the same JSON contract, written straight to the socket.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: import('node:stream').Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const error = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? Errors.timeout()
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? Errors.headersTooLarge()
      : Errors.badRequest('malformed HTTP request');
  const body = JSON.stringify(error.toJSON());
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${error.statusCode} ${STATUS_TEXT[error.statusCode]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }
  socket.destroy();
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };
