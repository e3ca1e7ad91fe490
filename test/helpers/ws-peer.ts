/**
 * A WebSocket client for tests: records every frame it receives, and every wait has a deadline
 * (5 s unless told), so a missing event fails the test with what did arrive instead of hanging.
 */
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import type { TestServer } from './server.js';

export type Frame = Record<string, any>;

export const isEvent = (f: Frame) => f.type === 'collection_change' || f.type === 'custom_event';

export interface ConnectOptions {
  /** Appended to `/ws`, e.g. `?since=<id>`. */
  query?: string;
  headers?: Record<string, string>;
}

export class Peer {
  /** Frames received and not yet taken, oldest first. */
  readonly frames: Frame[] = [];
  /** `{"type":"connected","id"}`, the first frame of a connection made without `?since=`. */
  greeting?: Frame;
  closeInfo?: { code: number; reason: string };
  readonly closed: Promise<{ code: number; reason: string }>;
  private wake: () => void = () => {};

  constructor(readonly ws: WebSocket, readonly label = 'peer') {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      // The greeting with the stream position is kept apart, so tests read only what follows it.
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
    ws.on('error', () => {}); // reported through 'close'
  }

  /** `Peer.connect(server, options)` or `Peer.connect(server, label, options)`. */
  static async connect(server: TestServer, labelOrOptions: string | ConnectOptions = {}, more: ConnectOptions = {}): Promise<Peer> {
    const label = typeof labelOrOptions === 'string' ? labelOrOptions : 'peer';
    const options = typeof labelOrOptions === 'string' ? more : labelOrOptions;
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/ws${options.query ?? ''}`, { headers: options.headers });
    const peer = new Peer(ws, label); // listeners before 'open': a resume replays right after the upgrade
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label}: WebSocket did not open in 5 s`)), 5000);
      ws.once('open', () => { clearTimeout(timer); resolve(); });
      ws.once('unexpected-response', (_req, res) => { clearTimeout(timer); reject(new Error(`${label}: upgrade refused with ${res.statusCode}`)); });
      ws.once('close', (code) => { clearTimeout(timer); reject(new Error(`${label}: WebSocket closed (${code}) before opening`)); });
    });
    return peer;
  }

  /** Sends a message: objects as JSON, strings as they are (for malformed-input tests). */
  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Waits (bounded) until `check` returns a value other than undefined. */
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

  /** Removes and returns the first `custom_event` named `event`. */
  custom(event: string, timeoutMs = 5000): Promise<Frame> {
    return this.take((f) => f.type === 'custom_event' && f.event === event, `custom_event "${event}"`, timeoutMs);
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

  /** Like `until`, but returns only the event frames; control frames stay unread. */
  async eventsUntil(last: (f: Frame) => boolean, what = 'the marker event', timeoutMs = 5000): Promise<Frame[]> {
    const head = await this.until(last, what, timeoutMs);
    this.frames.unshift(...head.filter((f) => !isEvent(f)));
    return head.filter(isEvent);
  }

  /** The connection is open and answers: ping → pong. */
  async assertAlive(): Promise<void> {
    assert.deepEqual(await this.ask({ type: 'ping' }, 'pong'), { type: 'pong' });
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}
