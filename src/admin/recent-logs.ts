/**
 * The last few hundred log lines about collections and hooks (hook `console.log`s, load errors,
 * rejected configs, worker and sidecar restarts), kept in memory for the dashboard's log view.
 * They are taken from a logger wrapper whatever the log level, so the dashboard shows a hook's
 * output even when the server logs only warnings.
 */
import type { FastifyBaseLogger } from 'fastify';

export interface LogLine {
  seq: number;
  time: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  collection?: string;
  event?: string;
  /** Fields a hook logged with its line, or an error's message. */
  detail?: unknown;
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
/** One line's detail is cut to this size in the view. */
const MAX_DETAIL_CHARS = 4000;

export class RecentLogs {
  private readonly lines: LogLine[] = [];
  private seq = 0;

  constructor(private readonly size = 500) {}

  /** Lines after `seq` (all kept lines when 0), oldest first. */
  after(seq: number): LogLine[] {
    return this.lines.filter((line) => line.seq > seq);
  }

  record(level: LogLine['level'], fields: Record<string, unknown>, message: string): void {
    const line: LogLine = { seq: ++this.seq, time: new Date().toISOString(), level, message: String(message).slice(0, MAX_DETAIL_CHARS) };
    if (typeof fields.collection === 'string') line.collection = fields.collection;
    if (typeof fields.event === 'string') line.event = fields.event;
    const detail = fields.fields ?? fields.err;
    if (detail !== undefined) {
      const text = typeof detail === 'string' ? detail : JSON.stringify(detail);
      line.detail = text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}…` : detail;
    }
    this.lines.push(line);
    if (this.lines.length > this.size) this.lines.shift();
  }

  /**
   * `log` with every debug/info/warn/error call also recorded here. Only calls of the form
   * `log.info({fields}, 'message')` are recorded (the form this code base uses).
   */
  tap(log: FastifyBaseLogger): FastifyBaseLogger {
    return new Proxy(log, {
      get: (target, property, receiver) => {
        const value = Reflect.get(target, property, receiver);
        if (!LEVELS.includes(property as LogLine['level']) || typeof value !== 'function') return value;
        return (fields: unknown, message?: unknown, ...rest: unknown[]) => {
          // Debug lines only when a hook wrote them (the server's own are noise here).
          const wanted = property !== 'debug' || (fields as Record<string, unknown> | null)?.hookLog === true;
          if (wanted && typeof fields === 'object' && fields !== null && typeof message === 'string') {
            this.record(property as LogLine['level'], fields as Record<string, unknown>, message);
          }
          return (value as (...args: unknown[]) => unknown).call(target, fields, message, ...rest);
        };
      },
    });
  }
}
