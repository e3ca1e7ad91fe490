/**
 * Errors as data: every error the server answers with has a stable `code`, an HTTP status and a
 * message. The JSON body keeps Deployd's shape (`message`, `statusCode`, `status`, and `errors` for
 * validation) so existing clients keep working; `code` is additive. Every code is defined here, and
 * only here (test/errors.test.ts checks): elsewhere an error is made with `Errors.<name>(…)`.
 */

const kDeploydError = Symbol.for('deployd-ts.error');

export class DeploydError extends Error {
  readonly code: string;
  readonly statusCode: number;
  /** Field → message map, for validation failures (Deployd's `{"errors":{...}}`). */
  readonly errors?: Record<string, string>;
  /** Response headers that belong to this error (`Retry-After`). */
  headers?: Record<string, string>;

  constructor(code: string, statusCode: number, message: string, errors?: Record<string, string>) {
    super(message);
    this.name = 'DeploydError';
    this.code = code;
    this.statusCode = statusCode;
    if (errors) this.errors = errors;
  }

  /** Brand check that survives duplicated copies of this module (undici's pattern). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kDeploydError] === true;
  }

  toJSON(): Record<string, unknown> {
    const body: Record<string, unknown> = { message: this.message };
    if (this.errors) body.errors = this.errors;
    body.statusCode = this.statusCode;
    body.status = this.statusCode;
    body.code = this.code;
    return body;
  }
}
Object.defineProperty(DeploydError.prototype, kDeploydError, { value: true });

type Factory<A extends unknown[]> = (...args: A) => DeploydError;

function define<A extends unknown[]>(code: string, statusCode: number, message: (...args: A) => string): Factory<A> & { code: string; statusCode: number } {
  const factory = (...args: A) => new DeploydError(code, statusCode, message(...args));
  return Object.assign(factory, { code, statusCode });
}

export const Errors = {
  notFound: define('DPD_ERR_NOT_FOUND', 404, () => 'not found'),
  resourceNotFound: define('DPD_ERR_RESOURCE_NOT_FOUND', 404, () => 'resource not found'),
  methodNotAllowed: define('DPD_ERR_METHOD_NOT_ALLOWED', 405, (method: string) => `method ${method} not allowed`),
  invalidJson: define('DPD_ERR_INVALID_JSON', 400, (detail: string) => `invalid JSON body: ${detail}`),
  unsupportedMediaType: define('DPD_ERR_UNSUPPORTED_MEDIA_TYPE', 415, (type: string) => `unsupported content type: ${type}`),
  bodyTooLarge: define('DPD_ERR_BODY_TOO_LARGE', 413, (limit: number) => `request body is larger than ${limit} bytes`),
  forbiddenKey: define('DPD_ERR_FORBIDDEN_KEY', 400, (key: string) => `the key "${key}" is not allowed`),
  tooDeep: define('DPD_ERR_TOO_DEEP', 400, (max: number) => `input is nested more than ${max} levels deep`),
  badQuery: define('DPD_ERR_BAD_QUERY', 400, (detail: string) => `invalid query: ${detail}`),
  badRequest: define('DPD_ERR_BAD_REQUEST', 400, (detail: string) => detail),
  unauthorized: define('DPD_ERR_UNAUTHORIZED', 401, (detail: string) => detail),
  forbidden: define('DPD_ERR_FORBIDDEN', 403, (detail: string) => detail),
  conflict: define('DPD_ERR_CONFLICT', 409, (detail: string) => detail),
  configInvalid: define('DPD_ERR_CONFIG_INVALID', 500, (detail: string) => detail),
  /** The admin API refused a config or hook file: nothing was changed. */
  changeRefused: define('DPD_ERR_CHANGE_REFUSED', 400, (detail: string) => detail),
  notImplemented: define('DPD_ERR_NOT_IMPLEMENTED', 501, (detail: string) => detail),
  tooManyAttempts: (seconds: number) => Object.assign(
    new DeploydError('DPD_ERR_TOO_MANY_ATTEMPTS', 429, `too many failed logins; try again in ${seconds} s`),
    { headers: { 'Retry-After': String(seconds) } },
  ),
  badCredentials: define('DPD_ERR_BAD_CREDENTIALS', 401, () => 'bad credentials'),
  storeBusy: define('DPD_ERR_STORE_BUSY', 503, () => 'the database is busy, try again'),
  storeUnavailable: define('DPD_ERR_STORE_UNAVAILABLE', 503, () => 'the database cannot be reached, try again later'),
  internal: define('DPD_ERR_INTERNAL', 500, () => 'internal server error'),
  /** A 4xx that Fastify raised (its status kept), answered in the Deployd shape. */
  clientError: withStatus('DPD_ERR_BAD_REQUEST', (detail: string) => detail),
  timeout: define('DPD_ERR_TIMEOUT', 408, () => 'the request took too long to arrive'),
  headersTooLarge: define('DPD_ERR_HEADERS_TOO_LARGE', 431, () => 'the URL and headers must fit in 16 KB; send large queries with POST /<collection>/query'),
  upgradeRequired: define('DPD_ERR_UPGRADE_REQUIRED', 426, () => 'connect with a WebSocket client (Upgrade: websocket)'),
  tooManyConnections: define('DPD_ERR_TOO_MANY_CONNECTIONS', 503, (max: number) => `the server has reached its limit of ${max} real-time connections`),
  realtimeOff: define('DPD_ERR_REALTIME_OFF', 409, () => 'real-time is turned off in .deployd/realtime.json'),
  collectionMissing: define('DPD_ERR_NOT_FOUND', 404, (name: string) => `no collection "${name}"`),
  writeFailed: define('DPD_ERR_WRITE_FAILED', 500, (where: string, why: string) => `could not write ${where}: ${why}`),
  dashboardNotBuilt: define('DPD_ERR_DASHBOARD_NOT_BUILT', 503, () => 'the dashboard is not built: run `make build`'),
  /** A hook's `cancel(message, status)` with a 4xx status. */
  hookCancelled: withStatus('DPD_ERR_HOOK_CANCELLED', (message: string) => message),
  /** A hook's cancel with a 5xx status. */
  hookFailed: withStatus('DPD_ERR_HOOK_FAILED', (message: string) => message),

  // ---- hooks (src/hooks/): a hook that cannot run at all; a failed run is a result (hook-result.ts)
  /** A hook file that did not load or compile (the message names file:line): the request fails closed. */
  hookLoad: define('DPD_ERR_HOOK_LOAD', 500, (detail: string) => detail),
  /** The collection's Go hooks are still being built; Retry-After says when to try again. */
  hookBuilding: Object.assign(
    (detail: string, retryAfterSeconds: number) => Object.assign(
      new DeploydError('DPD_ERR_HOOK_BUILDING', 503, detail),
      { headers: { 'Retry-After': String(retryAfterSeconds) } },
    ),
    { code: 'DPD_ERR_HOOK_BUILDING', statusCode: 503 },
  ),
};

/** An error whose status is chosen where it is raised (within the class its code names). */
function withStatus<A extends unknown[]>(code: string, message: (...args: A) => string): ((statusCode: number, ...args: A) => DeploydError) & { code: string } {
  const factory = (statusCode: number, ...args: A) => new DeploydError(code, statusCode, message(...args));
  return Object.assign(factory, { code });
}

export const validationError = Object.assign(
  (errors: Record<string, string>): DeploydError => new DeploydError('DPD_ERR_VALIDATION', 400, 'validation failed', errors),
  { code: 'DPD_ERR_VALIDATION', statusCode: 400 },
);

export const uniqueViolation = Object.assign(
  (field: string): DeploydError => new DeploydError('DPD_ERR_UNIQUE', 409, `${field} must be unique`, { [field]: 'must be unique' }),
  { code: 'DPD_ERR_UNIQUE', statusCode: 409 },
);
