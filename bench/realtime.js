/**
 * Real-time load drivers for bench/scenarios.js: WebSocket subscribers (the `ws` package, in this
 * process, loopback only) plus one HTTP sender on one keep-alive connection. Each driver is a
 * scenario `load(url, seconds, server)`: it resolves a flat object of numbers (plus `info`, a short
 * note for the table) and throws when an event is not delivered in time, a subscriber is refused or
 * closed by the server (e.g. 1013 "too slow": a dropped event), a POST fails, or — for
 * memory — the server's /proc entry is gone. Timing is measured, never asserted.
 *
 * - deliveryLatency: sequential POST /todos; per event, the time from just before the request is
 *   issued to the first and to the last subscriber receiving it (each event carries a unique title).
 * - fanOut: many subscribers; a sender (a helper child process, bench/ws-sender.js) POSTs as fast
 *   as the server answers for `seconds`, then every subscriber must have received every event;
 *   deliveries/s = events × subscribers / time from the start to the last delivery.
 * - idleMemory: the server's VmRSS before and after opening N idle connections, per connection.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const SENDER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ws-sender.js');

const DELIVERY_TIMEOUT_MS = 5_000; // an event not everywhere by then counts as never delivered
const DRAIN_LIMIT_MS = 60_000; // fan-out: the longest wait for the backlog after the last POST
const CONNECT_TIMEOUT_MS = 10_000;
const OPEN_BATCH = 50; // handshakes in flight at once (the listen backlog is 511)
const CLOSE_TIMEOUT_MS = 5_000;
const TICKS_PER_SECOND = 100; // Linux USER_HZ for /proc/<pid>/stat

// ---- subscribers --------------------------------------------------------------------------------

/**
 * What a set of subscribers shares whatever its protocol (WebSocket here, PocketBase's SSE in
 * peers/sse.js): opening `count` connections OPEN_BATCH at a time (closing what opened if one fails),
 * and the first failure, kept in `failure` and passed to `onFailure`.
 */
export class SubscriberSet {
  constructor() {
    this.failure = null;
    this.onFailure = null;
    this.closing = false;
  }

  /** Opens `count` connections with `connect(index)`; on a failure closes the set and throws. */
  async openAll(count, connect) {
    try {
      for (let start = 0; start < count; start += OPEN_BATCH) {
        const batch = [];
        for (let i = start; i < Math.min(count, start + OPEN_BATCH); i++) batch.push(connect(i));
        await Promise.all(batch);
        if (this.failure) throw this.failure;
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    return this;
  }

  fail(err) {
    if (this.failure) return;
    this.failure = err;
    this.onFailure?.(err);
  }
}

/**
 * `count` WebSocket clients on `url`/ws. `onMessage(index, data, at)` gets each text frame as a
 * Buffer with its arrival time (performance.now()). Any refusal, error or server-side close fails
 * the set: `failure` holds the first error and `onFailure` (if set) is called with it.
 */
export class Subscribers extends SubscriberSet {
  constructor() {
    super();
    this.sockets = [];
  }

  static open(url, count, onMessage = () => {}) {
    const wsUrl = `${url.replace(/^http/, 'ws')}/ws`;
    const subs = new Subscribers();
    return subs.openAll(count, (i) => subs.connect(wsUrl, i, onMessage));
  }

  connect(wsUrl, index, onMessage) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS });
      this.sockets[index] = ws;
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk) => { body += chunk; });
        res.on('end', () => reject(new Error(`subscriber #${index} refused: ${res.statusCode} ${body.slice(0, 200)}`)));
      });
      ws.once('open', () => resolve());
      ws.on('message', (data, isBinary) => {
        const at = performance.now();
        if (isBinary) return this.fail(new Error(`subscriber #${index} received a binary frame`));
        // deployd-ts greets each connection with {"type":"connected","id"} (its stream position).
        if (data.length < 120 && data.indexOf('"type":"connected"') !== -1) return;
        onMessage(index, data, at);
      });
      ws.on('error', (err) => {
        reject(err);
        this.fail(new Error(`subscriber #${index}: ${err.message}`));
      });
      ws.on('close', (code, reason) => {
        reject(new Error(`subscriber #${index} closed during the handshake (${code})`));
        if (!this.closing) this.fail(new Error(`subscriber #${index} was closed by the server: ${code} ${reason.toString() || ''}`.trim()));
      });
    });
  }

  /** Closes every connection; those not closed within CLOSE_TIMEOUT_MS are terminated. */
  async close() {
    this.closing = true;
    const open = this.sockets.filter((ws) => ws && ws.readyState !== WebSocket.CLOSED);
    const closed = Promise.all(open.map((ws) => new Promise((resolve) => {
      ws.once('close', resolve);
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000);
    })));
    let timer;
    const timedOut = new Promise((resolve) => { timer = setTimeout(() => resolve(true), CLOSE_TIMEOUT_MS); });
    if (await Promise.race([closed, timedOut])) for (const ws of open) ws.terminate();
    clearTimeout(timer);
  }
}

// ---- the sender ---------------------------------------------------------------------------------

/**
 * POSTs to `path` (the collection's create route) over one keep-alive connection (checked: a
 * reconnect would add a handshake).
 */
export function sender(url, path = '/todos') {
  const { hostname, port } = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set();
  return {
    /** Resolves the parsed answer; rejects on a non-2xx answer, an error or DELIVERY_TIMEOUT_MS. */
    post(body) {
      return new Promise((resolve, reject) => {
        const req = http.request({
          hostname, port, path, method: 'POST', agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        }, (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            if (res.statusCode < 200 || res.statusCode > 299) reject(new Error(`POST ${path} answered ${res.statusCode}: ${text.slice(0, 300)}`));
            else resolve(text);
          });
          res.on('error', reject);
        });
        req.on('socket', (socket) => sockets.add(socket));
        req.setTimeout(DELIVERY_TIMEOUT_MS, () => req.destroy(new Error(`POST ${path}: no answer within ${DELIVERY_TIMEOUT_MS / 1000} s`)));
        req.on('error', (err) => reject(new Error(`POST ${path}: ${err.message}`)));
        req.end(body);
      });
    },
    connections: () => sockets.size,
    close: () => agent.destroy(),
  };
}

/** The bench's document; `title` is what identifies its event on the subscribers' side. */
export const todo = (title) => JSON.stringify({ title, priority: 3, status: 'open', completed: false });

/** Throws unless `frame` is the collection_change for a created todo titled `title`. */
function checkEvent(frame, title) {
  let event;
  try {
    event = JSON.parse(frame.toString());
  } catch {
    throw new Error(`a subscriber received a frame that is not JSON: ${frame.toString().slice(0, 200)}`);
  }
  const ok = event?.type === 'collection_change' && event.collection === 'todos' && event.action === 'created' &&
    typeof event.document?.id === 'string' && event.document.title === title && typeof event.id === 'string';
  if (!ok) throw new Error(`a subscriber received ${frame.toString().slice(0, 300)}; expected the collection_change for "${title}"`);
}

/**
 * How a server is subscribed to and written to. The drivers default to deployd-ts's: WebSocket
 * subscribers on /ws, POST /todos, collection_change frames. bench/peers/sse.js has PocketBase's.
 */
export const websocket = {
  open: (url, count, onMessage) => Subscribers.open(url, count, onMessage),
  path: '/todos',
  check: checkEvent,
};

// ---- drivers ------------------------------------------------------------------------------------

/**
 * Create → delivery latency with `subscribers` clients: sequential POSTs (at most `maxEvents`, at
 * most `seconds`), each waiting until answered and delivered everywhere before the next.
 * Resolves { firstP50, firstP99, lastP50, lastP99, httpP50, httpP99 } in ms.
 */
export function deliveryLatency({ subscribers, maxEvents, protocol = websocket }) {
  // `server.subscribeUrl`: subscribers on another instance than the one the POSTs go to.
  return async (url, seconds, server) => {
    const tag = randomBytes(4).toString('hex');
    let current = null; // the event in flight
    let frameBytes = 0;
    const subs = await protocol.open(server?.subscribeUrl ?? url, subscribers, (index, data, at) => {
      const event = current;
      if (!event || data.indexOf(event.pattern) === -1) {
        return subs.fail(new Error(`subscriber #${index} received a frame for no event in flight: ${data.toString().slice(0, 200)}`));
      }
      if (event.seen[index]) return subs.fail(new Error(`subscriber #${index} received "${event.title}" twice`));
      event.seen[index] = 1;
      if (event.received++ === 0) event.first = at;
      event.last = at;
      if (index === 0) { // full check on one subscriber, after taking the time
        try {
          protocol.check(data, event.title);
        } catch (err) {
          return subs.fail(err);
        }
        frameBytes = data.length;
      }
      if (event.received === subscribers) event.delivered();
    });
    const client = sender(url, protocol.path);
    const first = [];
    const last = [];
    const answered = [];
    try {
      const deadline = performance.now() + seconds * 1000;
      for (let k = 0; k < maxEvents && performance.now() < deadline; k++) {
        if (subs.failure) throw subs.failure;
        const title = `rt-${tag}-${k}`;
        const body = todo(title);
        const event = { title, pattern: Buffer.from(`"title":"${title}"`), seen: new Uint8Array(subscribers), received: 0, first: 0, last: 0 };
        const delivered = new Promise((resolve, reject) => {
          event.delivered = resolve;
          subs.onFailure = reject;
        });
        current = event;
        let answeredAt = 0;
        const t0 = performance.now();
        const answer = client.post(body).then((text) => {
          answeredAt = performance.now();
          if (!text.includes(`"title":"${title}"`)) throw new Error(`POST ${protocol.path}: unexpected answer ${text.slice(0, 300)}`);
        });
        await deadlineFor(Promise.all([answer, delivered]), DELIVERY_TIMEOUT_MS,
          () => `event "${title}" (#${k + 1}) was delivered to ${event.received} of ${subscribers} subscriber(s) within ${DELIVERY_TIMEOUT_MS / 1000} s${answeredAt ? '' : ' and the POST was not answered'}`);
        first.push(event.first - t0);
        last.push(event.last - t0);
        answered.push(answeredAt - t0);
      }
      if (first.length === 0) throw new Error('no event was sent');
      if (client.connections() !== 1) throw new Error(`the sender used ${client.connections()} connections instead of one keep-alive connection`);
    } finally {
      current = null;
      client.close();
      await subs.close();
    }
    const [firstP50, firstP99] = percentiles(first);
    const [lastP50, lastP99] = percentiles(last);
    const [httpP50, httpP99] = percentiles(answered);
    return { firstP50, firstP99, lastP50, lastP99, httpP50, httpP99, info: `${first.length} events, ${frameBytes} B frames` };
  };
}

/**
 * Fan-out to `clients` subscribers while one sender POSTs back to back for `seconds` (at most
 * `maxEvents`). The sender is a child process: in this process it would wait for its answers
 * behind the subscribers' frames, and server and harness would take turns instead of working in
 * parallel. Resolves { deliveries, events, serverCpu, harnessCpu, senderCpu, serverCpuPerDelivery }:
 * deliveries per second, POSTs answered per second, CPU use (% of one core) of each process, and
 * the server's CPU time per delivery in µs (POST included; less sensitive to other load on the
 * machine than the rates, and to the harness being the bottleneck).
 */
export function fanOut({ clients, maxEvents, protocol = websocket }) {
  return async (url, seconds, server) => {
    const tag = randomBytes(4).toString('hex');
    const counts = new Uint32Array(clients);
    let total = 0;
    let lastAt = 0;
    let frameBytes = 0;
    const subs = await protocol.open(url, clients, (index, data, at) => {
      total++;
      lastAt = at;
      if (counts[index]++ === 0) { // the first frame each subscriber gets is checked in full
        try {
          // A server that does not keep the order of events per client (PocketBase sends each
          // event to each client from its own goroutine) may deliver any of them first.
          const title = protocol.ordered === false ? /"title":"(rt-[^"]+)"/.exec(data.toString())?.[1] ?? '' : `rt-${tag}-0`;
          if (!title.startsWith(`rt-${tag}-`)) throw new Error(`subscriber #${index} received ${data.toString().slice(0, 300)}`);
          protocol.check(data, title);
        } catch (err) {
          return subs.fail(err);
        }
        frameBytes = data.length;
      }
    });
    const child = fork(SENDER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
    const messages = [];
    let wake = () => {};
    child.on('message', (message) => { messages.push(message); wake(); });
    const next = (ms, what) => deadlineFor(new Promise((resolve, reject) => {
      const check = () => (messages.length > 0 ? resolve(messages.shift()) : undefined);
      wake = check;
      exited.then((code) => { check(); reject(new Error(`the sender process exited (${code}) before ${what}`)); });
      check();
    }), ms, () => `the sender process did not ${what} within ${ms / 1000} s`);
    let sent;
    let elapsedSend;
    let elapsedDelivery;
    let cpu;
    try {
      await next(CONNECT_TIMEOUT_MS, 'start');
      const cpuBefore = { server: serverTicks(server.pid), sender: serverTicks(child.pid), harness: process.cpuUsage(), machine: machineTicks() };
      const t0 = performance.now();
      child.send({ url, path: protocol.path, seconds, maxEvents, tag });
      const report = await next(seconds * 1000 + 2 * DELIVERY_TIMEOUT_MS, 'report');
      if (report.error) throw new Error(`sender: ${report.error}`);
      ({ sent, elapsedMs: elapsedSend } = report);
      const senderTicks = serverTicks(child.pid) - cpuBefore.sender;
      // Everything sent must arrive: no progress for DELIVERY_TIMEOUT_MS means lost deliveries.
      const expected = sent * clients;
      const drainDeadline = performance.now() + DRAIN_LIMIT_MS;
      let progressAt = performance.now();
      let seen = total;
      while (total < expected && !subs.failure) {
        await sleep(5);
        const now = performance.now();
        if (total !== seen) {
          seen = total;
          progressAt = now;
        } else if (now - progressAt > DELIVERY_TIMEOUT_MS || now > drainDeadline) {
          const short = counts.reduce((n, c) => n + (c < sent ? 1 : 0), 0);
          throw new Error(`${(expected - total).toLocaleString('en-US')} of ${expected.toLocaleString('en-US')} deliveries never arrived (${short} of ${clients} subscribers are missing events; ${sent} events sent)`);
        }
      }
      if (subs.failure) throw subs.failure;
      if (sent === 0) throw new Error('the sender sent no event');
      elapsedDelivery = lastAt - t0;
      const wall = (performance.now() - t0) / 1000;
      const harness = process.cpuUsage(cpuBefore.harness);
      const serverSeconds = (serverTicks(server.pid) - cpuBefore.server) / TICKS_PER_SECOND;
      cpu = {
        perDelivery: (serverSeconds * 1e6) / expected,
        server: (serverSeconds / wall) * 100,
        harness: ((harness.user + harness.system) / 1e6 / wall) * 100,
        sender: (senderTicks / TICKS_PER_SECOND / (elapsedSend / 1000)) * 100,
        machine: machineShares(cpuBefore.machine, machineTicks()),
      };
      const wrong = counts.findIndex((c) => c !== sent);
      if (wrong !== -1) throw new Error(`subscriber #${wrong} received ${counts[wrong]} events, ${sent} were sent`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await subs.close();
    }
    const ours = Math.round(cpu.server + cpu.harness + cpu.sender);
    return {
      deliveries: (sent * clients) / (elapsedDelivery / 1000),
      events: sent / (elapsedSend / 1000),
      serverCpu: cpu.server,
      harnessCpu: cpu.harness,
      senderCpu: cpu.sender,
      serverCpuPerDelivery: cpu.perDelivery,
      info: `${sent.toLocaleString('en-US')} events × ${clients.toLocaleString('en-US')} subscribers, ${frameBytes} B frames, last delivery ${Math.round(elapsedDelivery - elapsedSend)} ms after the sender stopped, machine ${cpu.machine.busy}% busy of ${cpu.machine.cores * 100}% (${cpu.machine.softirq}% softirq), the bench's three processes ${ours}%${cpu.machine.busy - ours > 20 ? ' (the rest: other load on the machine)' : ''}`,
    };
  };
}

/**
 * RSS per idle connection: the server's VmRSS before and `settleMs` after opening `connections`
 * clients (after priming with a few, so one-time code paths are not counted as per-connection).
 * Resolves { perConnection } in KiB plus { rssBefore, rssAfter } in MiB. Kernel socket buffers are
 * not in RSS.
 */
export function idleMemory({ connections, settleMs = 1000 }) {
  return async (url, _seconds, server) => {
    const primer = await Subscribers.open(url, 20);
    await primer.close();
    await sleep(500);
    const before = vmRssKiB(server.pid);
    const subs = await Subscribers.open(url, connections);
    try {
      await sleep(settleMs);
      if (subs.failure) throw subs.failure;
      const after = vmRssKiB(server.pid);
      return {
        perConnection: (after - before) / connections,
        rssBefore: before / 1024,
        rssAfter: after / 1024,
        info: `VmRSS ${(before / 1024).toFixed(1)} → ${(after / 1024).toFixed(1)} MiB with ${connections.toLocaleString('en-US')} idle connections`,
      };
    } finally {
      await subs.close();
    }
  };
}

// ---- helpers ------------------------------------------------------------------------------------

function percentiles(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return [at(0.5), at(0.99)];
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function deadlineFor(promise, ms, describe) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(describe())), ms); });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function proc(pid, file) {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    throw new Error(`cannot read /proc/${pid}/${file}: the server is gone`);
  }
}

function vmRssKiB(pid) {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(proc(pid, 'status'));
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

/** All CPUs' time by state (/proc/stat "cpu" line: user nice system idle iowait irq softirq steal …). */
function machineTicks() {
  return fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
}

/** Whole-machine busy and softirq time (% of one core, like the per-process numbers) between two readings. */
function machineShares(before, after) {
  const delta = after.map((ticks, i) => ticks - before[i]);
  const total = delta.reduce((a, b) => a + b, 0) || 1;
  const cores = os.availableParallelism();
  const share = (ticks) => Math.round((100 * cores * ticks) / total);
  return { cores, busy: share(total - delta[3] - delta[4]), softirq: share(delta[6]) };
}

/** utime + stime of the whole process (all threads), in clock ticks. */
function serverTicks(pid) {
  const stat = proc(pid, 'stat');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
  return Number(fields[11]) + Number(fields[12]); // #14 utime, #15 stime
}
