/**
 * Helpers for the users, sessions and access-rules suites: sign up and log in through real HTTP,
 * auth headers for each transport, requests from a chosen loopback address (for per-address login
 * throttling), and a WebSocket peer that records frames and waits with a deadline.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { ApiResponse, TestServer } from './server.js';

export type { Frame } from './ws-peer.js';

export interface LoggedIn {
  /** The session token (`id` of the login answer). */
  token: string;
  /** The user's id (`uid` of the login answer). */
  uid: string;
  res: ApiResponse;
}

/** Signs up; fails the test unless the answer is 200. Returns the created user. */
export async function signup(server: TestServer, username: string, password: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const res = await server.post('/users', { username, password, ...extra });
  assert.equal(res.status, 200, `signup of ${username}: ${res.status} ${res.text}`);
  return res.body;
}

/** Logs in through `POST /users/login`; fails the test unless the answer is 200. */
export async function login(server: TestServer, username: string, password: string): Promise<LoggedIn> {
  const res = await server.post('/users/login', { username, password });
  assert.equal(res.status, 200, `login of ${username}: ${res.status} ${res.text}`);
  return { token: res.body.id, uid: res.body.uid, res };
}

/** Signs up and logs in; the user, its token and its id. */
export async function newUser(server: TestServer, username: string, password = 'correct horse', extra: Record<string, unknown> = {}) {
  const user = await signup(server, username, password, extra);
  const session = await login(server, username, password);
  return { user, token: session.token, uid: session.uid, password, headers: bearer(session.token) };
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
export const sessionHeader = (token: string): Record<string, string> => ({ 'x-session-token': token });
export const cookie = (token: string): Record<string, string> => ({ cookie: `sid=${token}` });

/** Every Set-Cookie header line of a response. */
export function setCookies(res: ApiResponse): string[] {
  return res.headers.getSetCookie();
}

/** The Set-Cookie line for `sid`, split into its attributes (lower-cased names; value kept). */
export function sidCookie(res: ApiResponse): { value: string; attributes: Map<string, string | true>; line: string } | undefined {
  const line = setCookies(res).find((l) => /^sid=/i.test(l.trim()));
  if (!line) return undefined;
  const [pair, ...rest] = line.split(';').map((p) => p.trim());
  const attributes = new Map<string, string | true>();
  for (const part of rest) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) attributes.set(part.toLowerCase(), true);
    else attributes.set(part.slice(0, eq).toLowerCase(), part.slice(eq + 1));
  }
  return { value: pair.slice(pair.indexOf('=') + 1), attributes, line };
}

/**
 * An HTTP request made from a chosen loopback source address (127.0.0.x all reach a server bound to
 * 127.0.0.1 on Linux), so per-address limits can be exercised from several "clients".
 */
export function requestFrom(server: TestServer, localAddress: string, method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
  const url = new URL(server.url + urlPath);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname, port: Number(url.port), path: url.pathname + url.search, method, localAddress, timeout: 15_000,
      headers: { ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }), ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => {
        let json: unknown;
        try { json = text === '' ? undefined : JSON.parse(text); } catch { json = undefined; }
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (Array.isArray(v)) for (const item of v) h.append(k, item);
          else if (v !== undefined) h.set(k, v);
        }
        resolve({ status: res.statusCode!, headers: h, body: json as any, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer in 15 s`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Asserts a Deployd error body with a DPD_ERR_* code. */
export function assertError(res: ApiResponse, status: number, code?: string, message?: string | RegExp): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.equal(typeof res.body, 'object', `a JSON error body: ${res.text}`);
  if (code !== undefined) assert.equal(res.body.code, code, `code of ${res.text}`);
  if (message !== undefined) {
    if (typeof message === 'string') assert.equal(res.body.message, message, res.text);
    else assert.match(res.body.message, message);
  }
}

/** Deep search for a key anywhere in a JSON value (to prove `password` is nowhere in an answer). */
export function hasKeyDeep(value: unknown, key: string): boolean {
  if (Array.isArray(value)) return value.some((v) => hasKeyDeep(v, key));
  if (value && typeof value === 'object') {
    return Object.entries(value).some(([k, v]) => k === key || hasKeyDeep(v, key));
  }
  return false;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- WebSocket peer: the shared one (helpers/ws-peer.ts) ----------------------------------------

export { isEvent, Peer } from './ws-peer.js';
