/**
 * The WebSocket transport of `/ws`: the upgrade (path, connection limit, caller lookup, JSON
 * refusals), the heartbeat that closes silent peers, the per-connection message rate limit, and
 * sending with backpressure (a client that stops reading is closed with 1013, never buffered for
 * without bound).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { RealtimeConfig } from './config.js';
import type { Connection } from './connection.js';

export class Transport {
  /** The open connections (a closed or dropped one is removed at once). */
  readonly connections = new Set<Connection>();
  /** Frames sent, frames not sent (client gone or too slow), 1013 closes: read by /metrics. */
  readonly stats = { delivered: 0, dropped: 0, slowClosed: 0 };
  private readonly wss: WebSocketServer;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly config: RealtimeConfig) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes, perMessageDeflate: false });
    // Checked four times per ping interval, so a ping goes out at most a quarter late.
    this.heartbeat = setInterval(() => this.beat(), Math.max(10, this.pingEveryMs / 4));
    this.heartbeat.unref();
  }

  /**
   * Takes over `upgrade` requests for `/ws` on the HTTP server: `authenticate` resolves the caller
   * (a rejection answers 401 with its message), then `accepted` gets the open socket.
   */
  attach<R>(server: Server, authenticate: (request: IncomingMessage, url: URL) => Promise<R>, accepted: (ws: WebSocket, resolved: R, url: URL) => void): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      if (url.pathname !== '/ws') return refuse(socket, 404, 'DPD_ERR_RESOURCE_NOT_FOUND', 'resource not found');
      if (this.connections.size >= this.config.maxConnections) {
        return refuse(socket, 503, 'DPD_ERR_TOO_MANY_CONNECTIONS', `the server has reached its limit of ${this.config.maxConnections} real-time connections`);
      }
      // Node removed its own error listener before 'upgrade': a reset during the lookup must not crash.
      const onError = () => socket.destroy();
      socket.on('error', onError);
      authenticate(request, url).then(
        (resolved) => {
          socket.off('error', onError);
          if (socket.destroyed) return;
          this.wss.handleUpgrade(request, socket, head, (ws) => accepted(ws, resolved, url));
        },
        (err: Error) => refuse(socket, 401, 'DPD_ERR_UNAUTHORIZED', err.message),
      );
    });
  }

  /** Counts the connection as open until its socket closes; pongs keep it alive. */
  track(connection: Connection): void {
    const { ws } = connection;
    this.connections.add(connection);
    ws.on('pong', () => { connection.lastSeen = Date.now(); });
    ws.on('close', () => this.connections.delete(connection));
    ws.on('error', () => this.connections.delete(connection));
  }

  isOpen(connection: Connection): boolean {
    return this.connections.has(connection);
  }

  /** Closes the connection; what it still sends is ignored from now on. */
  drop(connection: Connection, code: number, reason: string): void {
    this.connections.delete(connection);
    connection.ws.close(code, reason);
  }

  /** Sends unless the client stopped reading: past the buffer cap it is closed with 1013 (it may resume). */
  send(connection: Connection, frame: string): void {
    const { ws } = connection;
    if (ws.readyState !== ws.OPEN) return void this.stats.dropped++;
    // What is still waiting for this client, plus this frame, over the cap. A frame larger than the
    // cap still goes to a client that has read everything (the cap is about readers falling behind).
    const waiting = ws.bufferedAmount;
    if (waiting > 0 && waiting + Buffer.byteLength(frame) > this.config.maxBufferedBytes) {
      this.connections.delete(connection);
      this.stats.slowClosed++; this.stats.dropped++;
      ws.close(1013, 'too slow: reconnect with ?since= to resume');
      // Enough time for a reader that is only slow to get the 1013; the bytes it holds stay capped.
      setTimeout(() => ws.terminate(), 5000).unref();
      return;
    }
    ws.send(frame);
    this.stats.delivered++;
  }

  /** Token bucket: `messageRateLimit` messages per second, with as much burst. */
  allow(connection: Connection): boolean {
    const now = Date.now();
    const rate = this.config.messageRateLimit;
    connection.tokens = Math.min(rate, connection.tokens + ((now - connection.tokensAt) / 1000) * rate);
    connection.tokensAt = now;
    if (connection.tokens < 1) return false;
    connection.tokens -= 1;
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const connection of this.connections) connection.ws.close(1001, 'server shutting down');
    this.connections.clear();
    // Peers that do not answer the close (or stopped reading) must not hold the shutdown for ws's 30 s.
    const stragglers = setTimeout(() => {
      for (const ws of this.wss.clients) ws.terminate();
    }, 1000);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    clearTimeout(stragglers);
  }

  /** How often a silent peer is pinged: at least twice per idle timeout, so a live peer always has time to answer. */
  private get pingEveryMs(): number {
    return Math.min(this.config.pingIntervalMs, this.config.idleTimeoutMs / 2);
  }

  /** Pings everyone; closes peers silent for longer than the idle timeout. */
  private beat(): void {
    const now = Date.now();
    for (const connection of this.connections) {
      if (now - connection.lastSeen > this.config.idleTimeoutMs) {
        this.connections.delete(connection);
        connection.ws.terminate();
        continue;
      }
      if (now - connection.lastSeen >= this.pingEveryMs && now - connection.pingedAt >= this.pingEveryMs) {
        connection.pingedAt = now;
        connection.ws.ping();
      }
    }
  }
}

/** Answers an upgrade we will not accept with a JSON error, then closes the socket. */
function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ message, statusCode: status, status, code });
  const reason = { 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' }[status] ?? 'Error';
  // Node removed its own error listener before 'upgrade': a peer that resets now must not crash the process.
  socket.on('error', () => socket.destroy());
  const timer = setTimeout(() => socket.destroy(), 5000); // a peer that never reads the answer
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
