/**
 * PocketBase's real-time, as its JS SDK uses it: GET /api/realtime (Server-Sent Events), wait for
 * the PB_CONNECT event with the clientId, POST /api/realtime { clientId, subscriptions: ['todos'] },
 * then one `todos` event per change: {"action":"create","record":{…}}, not necessarily in order. The same interface as
 * bench/realtime.js's WebSocket `Subscribers`, so its drivers run unchanged against PocketBase.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { SubscriberSet } from '../realtime.js';

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Splits an SSE stream into events. `push(text)` returns the complete events so far, each
 * { event, data, id } (multi-line data joined with \n); a partial event waits for the next chunk.
 */
export function sseParser() {
  let pending = '';
  return {
    push(text) {
      pending += text;
      const events = [];
      let end;
      while ((end = pending.indexOf('\n\n')) !== -1) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        const event = { event: 'message', data: '', id: '' };
        const data = [];
        for (const line of block.split('\n')) {
          if (line === '' || line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          let value = colon === -1 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'data') data.push(value);
          else if (field === 'event') event.event = value;
          else if (field === 'id') event.id = value;
        }
        event.data = data.join('\n');
        events.push(event);
      }
      return events;
    },
  };
}

export class SseSubscribers extends SubscriberSet {
  constructor() {
    super();
    this.requests = [];
  }

  static open(url, count, onMessage = () => {}) {
    const subs = new SseSubscribers();
    return subs.openAll(count, (i) => subs.connect(url, i, onMessage));
  }

  connect(url, index, onMessage) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`subscriber #${index}: not subscribed within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
      const settle = (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const req = http.get(`${url}/api/realtime`, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return settle(new Error(`subscriber #${index} refused: ${res.statusCode}`));
        }
        res.setEncoding('utf8');
        const parser = sseParser();
        let subscribed = false;
        res.on('data', (chunk) => {
          const at = performance.now();
          for (const event of parser.push(chunk)) {
            if (event.event === 'PB_CONNECT') {
              subscribe(url, JSON.parse(event.data).clientId).then(() => { subscribed = true; settle(); }, (err) => settle(new Error(`subscriber #${index}: ${err.message}`)));
            } else if (!subscribed) {
              this.fail(new Error(`subscriber #${index} received "${event.event}" before it subscribed`));
            } else {
              onMessage(index, Buffer.from(event.data), at);
            }
          }
        });
        res.on('close', () => {
          settle(new Error(`subscriber #${index} closed during the handshake`));
          if (!this.closing) this.fail(new Error(`subscriber #${index} was closed by the server`));
        });
      });
      req.on('error', (err) => {
        settle(err);
        if (!this.closing) this.fail(new Error(`subscriber #${index}: ${err.message}`));
      });
      this.requests[index] = req;
    });
  }

  async close() {
    this.closing = true;
    for (const req of this.requests) req?.destroy();
  }
}

function subscribe(url, clientId) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ clientId, subscriptions: ['todos'] });
    const req = http.request(`${url}/api/realtime`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => (res.statusCode === 204 ? resolve() : reject(new Error(`POST /api/realtime answered ${res.statusCode}: ${text.slice(0, 200)}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Throws unless `data` is PocketBase's create event for a todo titled `title`. */
function checkEvent(data, title) {
  let event;
  try {
    event = JSON.parse(data.toString());
  } catch {
    throw new Error(`a subscriber received data that is not JSON: ${data.toString().slice(0, 200)}`);
  }
  const ok = event?.action === 'create' && typeof event.record?.id === 'string' && event.record.title === title && event.record.collectionName === 'todos';
  if (!ok) throw new Error(`a subscriber received ${data.toString().slice(0, 300)}; expected the create event for "${title}"`);
}

/** bench/realtime.js's `protocol` for PocketBase. */
export const pocketbaseSse = {
  open: (url, count, onMessage) => SseSubscribers.open(url, count, onMessage),
  path: '/api/collections/todos/records',
  check: checkEvent,
  ordered: false, // each event goes to each client from its own goroutine
};
