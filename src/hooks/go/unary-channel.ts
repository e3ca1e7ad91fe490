/**
 * A lean gRPC unary client over one node:http2 session, for the hot path of Go hooks (HookService
 * /Run): one HTTP/2 stream per call, the gRPC length-prefixed message, `grpc-timeout`, and
 * `grpc-status` from the trailers.
 *
 * Why not @grpc/grpc-js here (it still does the rest: health check, stdio stream, shutdown):
 * measured on this machine, a Run through grpc-js cost ~2× the client CPU and wall time of the same
 * call on a bare http2 stream (p50 0.5 vs 0.22 ms, p99 3.7 vs 0.7 ms, 5k vs 10k calls/s in
 * flight), and the goal (p50 ≤ 0.35 ms per hook call) is out of reach with it. Only what a
 * unary call to a known server needs is here: no compression, no retries, no name resolution.
 *
 * Errors are rejected as `{ code, details, message }` with gRPC status codes, like grpc-js's
 * ServiceError, so callers map both the same way.
 */
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';

/** gRPC status codes used here (grpc.status). */
const DEADLINE_EXCEEDED = 4;
const INTERNAL = 13;
const UNAVAILABLE = 14;

export interface UnaryError extends Error {
  code: number;
  details: string;
}

function failure(code: number, details: string): UnaryError {
  return Object.assign(new Error(`${code} ${details}`), { code, details });
}

export interface ChannelTls {
  /** The server's certificate (the only trusted root), PEM. */
  ca: string;
  key: string;
  cert: string;
}

export class UnaryChannel {
  private session: http2.ClientHttp2Session | undefined;
  private closed = false;

  /** `target`: a unix socket path, or `host:port`. */
  constructor(
    private readonly target: { path: string } | { host: string; port: number },
    private readonly tlsOptions?: ChannelTls,
  ) {}

  /** Opens the session now (TLS handshake included), so the first call does not pay for it. */
  warm(timeoutMs: number): Promise<void> {
    const session = this.connect();
    if (session.connecting === false && !session.destroyed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(failure(UNAVAILABLE, `no HTTP/2 connection within ${timeoutMs} ms`)), timeoutMs);
      session.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      session.once('close', () => {
        clearTimeout(timer);
        reject(failure(UNAVAILABLE, 'connection closed while connecting'));
      });
    });
  }

  private connect(): http2.ClientHttp2Session {
    const current = this.session;
    if (current && !current.closed && !current.destroyed) return current;
    const t = this.tlsOptions;
    const createConnection = (): net.Socket =>
      t
        ? tls.connect({ ...this.target, ca: t.ca, key: t.key, cert: t.cert, servername: 'localhost', ALPNProtocols: ['h2'] })
        : net.connect(this.target as net.NetConnectOpts);
    // Large flow-control windows: no WINDOW_UPDATE round per small answer.
    const session = http2.connect(t ? 'https://localhost' : 'http://localhost', { createConnection, settings: { initialWindowSize: 1 << 20 } });
    session.once('connect', () => session.setLocalWindowSize(1 << 22));
    session.on('error', () => {}); // each call reports its own failure
    session.once('close', () => {
      if (this.session === session) this.session = undefined;
    });
    session.unref(); // an idle channel never keeps the process alive
    this.session = session;
    return session;
  }

  /** One unary call: `message` is the serialized request; resolves the serialized response. */
  call(path: string, message: Uint8Array, deadlineMs: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(failure(UNAVAILABLE, 'channel closed'));
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame[0] = 0; // not compressed
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    const timeout = Math.max(1, Math.ceil(deadlineMs));
    const deadlineAt = Date.now() + timeout;
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      const done = (err: UnaryError | undefined, value?: Buffer): void => {
        if (settled) return;
        settled = true;
        // The server enforces grpc-timeout too and may reset the stream a moment before our
        // timer fires: a transport failure at the deadline is the deadline.
        if (err && err.code === UNAVAILABLE && Date.now() >= deadlineAt - 5) err = failure(DEADLINE_EXCEEDED, `deadline of ${timeout} ms exceeded`);
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value!);
      };
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.connect().request(
          { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${timeout}m` },
          { endStream: false },
        );
      } catch (err) {
        return done(failure(UNAVAILABLE, (err as Error).message));
      }
      const timer = setTimeout(() => {
        done(failure(DEADLINE_EXCEEDED, `deadline of ${timeout} ms exceeded`));
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }, timeout);
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let statusMessage = '';
      const readStatus = (headers: http2.IncomingHttpHeaders): void => {
        const s = headers['grpc-status'];
        if (s !== undefined) {
          status = String(s);
          statusMessage = decodeURIComponent(String(headers['grpc-message'] ?? ''));
        }
      };
      stream.on('response', (headers) => {
        if (headers[':status'] !== 200) done(failure(UNAVAILABLE, `HTTP status ${headers[':status']}`));
        readStatus(headers); // trailers-only answers carry the status here
      });
      stream.on('trailers', readStatus);
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (status === undefined) return done(failure(UNAVAILABLE, 'the stream ended without a grpc-status')); // e.g. the server died
        if (status !== '0') return done(failure(Number(status), statusMessage));
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
          return done(failure(INTERNAL, 'malformed gRPC response message'));
        }
        done(undefined, body.subarray(5));
      });
      // (Checked first: an Error is costly to create, and 'close' follows every answer.)
      stream.on('error', (err) => settled || done(failure(UNAVAILABLE, err.message)));
      stream.on('close', () => settled || done(failure(UNAVAILABLE, 'stream closed before the answer')));
      stream.end(frame);
    });
  }

  close(): void {
    this.closed = true;
    this.session?.destroy();
    this.session = undefined;
  }
}
