/**
 * Helpers for the users, sessions and access-rules suites: sign up and log in through real HTTP,
 * auth headers for each transport, requests from a chosen loopback address (for per-address login
 * throttling), and a WebSocket peer that records frames and waits with a deadline.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import WebSocket from 'ws';
import type { ApiResponse, TestServer } from './server.js';

export type Frame = Record<string, any>;

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

// ---- WebSocket peer --------------------------------------------------------------------------------

export const isEvent = (f: Frame) => f.type === 'collection_change' || f.type === 'custom_event';

/** A WebSocket client that records every frame; every wait has a deadline (5 s unless told). */
export class Peer {
  readonly frames: Frame[] = [];
  greeting?: Frame;
  closeInfo?: { code: number; reason: string };
  readonly closed: Promise<{ code: number; reason: string }>;
  private wake: () => void = () => {};

  constructor(readonly ws: WebSocket, readonly label: string) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'connected' && this.greeting === undefined) this.greeting = frame;
      else this.frames.push(frame);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        this.wake();
        resolve(this.closeInfo);
      });
    });
    ws.on('error', () => {});
  }

  static async connect(server: TestServer, label: string, options: { query?: string; headers?: Record<string, string> } = {}): Promise<Peer> {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/ws${options.query ?? ''}`, { headers: options.headers });
    const peer = new Peer(ws, label);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label}: WebSocket did not open in 5 s`)), 5000);
      ws.once('open', () => { clearTimeout(timer); resolve(); });
      ws.once('unexpected-response', (_req, res) => { clearTimeout(timer); reject(new Error(`${label}: upgrade refused with ${res.statusCode}`)); });
      ws.once('close', (code) => { clearTimeout(timer); reject(new Error(`${label}: WebSocket closed (${code}) before opening`)); });
    });
    return peer;
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  private async wait<T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (this.closeInfo) throw new Error(`${this.label}: connection closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting for ${what}`);
      if (left <= 0) throw new Error(`${this.label}: timed out waiting for ${what}; unread: ${JSON.stringify(this.frames).slice(0, 600)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => { clearTimeout(timer); resolve(); };
      });
    }
  }

  /** Removes and returns the first unread frame matching `pred`. */
  take(pred: (f: Frame) => boolean, what = 'a frame', timeoutMs = 5000): Promise<Frame> {
    return this.wait(() => {
      const i = this.frames.findIndex(pred);
      return i >= 0 ? this.frames.splice(i, 1)[0] : undefined;
    }, what, timeoutMs);
  }

  /** Sends a control message and returns the reply of type `replyType`. */
  async ask(message: unknown, replyType: string): Promise<Frame> {
    this.send(message);
    return this.take((f) => f.type === replyType, `a "${replyType}" reply`);
  }

  /**
   * Every frame up to and including the first event matching `last`, in arrival order; removes them.
   * Events are delivered in commit order, so everything published before the marker is in here.
   */
  async until(last: (f: Frame) => boolean, what = 'the marker event', timeoutMs = 5000): Promise<Frame[]> {
    const i = await this.wait(() => {
      const index = this.frames.findIndex((f) => isEvent(f) && last(f));
      return index >= 0 ? index : undefined;
    }, what, timeoutMs);
    return this.frames.splice(0, i + 1);
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}
