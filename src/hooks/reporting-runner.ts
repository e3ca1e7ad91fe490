/**
 * Puts what hooks do in the server log, once per event, whatever runs them: each `console.log`
 * (JavaScript) or `ctx.Log` (Go) line tagged with its collection, event and file, and each
 * failure (an uncaught error, a panic, a time or memory limit, a crashed worker or sidecar) as one
 * error line naming the place (`todos/validate.js:3:7: TypeError: …`). A deliberate `cancel()` is
 * an answer, not a failure: it is logged at debug only.
 *
 * It also holds hooks to the real-time event size: an `emit()` whose data is larger than
 * `maxEventBytes` (as JSON) fails its hook, naming the event and the limit, before anything of it
 * is published (every subscriber and the history would otherwise carry it).
 */
import type { FastifyBaseLogger } from 'fastify';
import { failure } from './hook-result.js';
import type { HookLimits, HookRunner, HookSource, InternalHandler, RunnerStatus, RunResult } from './hook-runner.js';
import { jsonSize } from '../util/json-size.js';
import type { EventContext, HookEvent } from './protocol.js';

export class ReportingRunner implements HookRunner {
  constructor(private readonly inner: HookRunner, private readonly log: FastifyBaseLogger, private readonly maxEventBytes = Infinity) {}

  load(hookSet: string, hooks: HookSource[], limits: HookLimits): Promise<Partial<Record<HookEvent, string>>> {
    return this.inner.load(hookSet, hooks, limits);
  }

  unload(hookSet: string): void {
    this.inner.unload(hookSet);
  }

  setCollections(names: string[]): void {
    this.inner.setCollections(names);
  }

  setInternalHandler(handler: InternalHandler): void {
    this.inner.setInternalHandler(handler);
  }

  ready(hookSet: string, events: HookEvent[]): Promise<void> | undefined {
    return this.inner.ready?.(hookSet, events);
  }

  status(): Partial<RunnerStatus> {
    return this.inner.status?.() ?? {};
  }

  async run(ctx: EventContext, scope?: unknown, hookSet?: string): Promise<RunResult> {
    const result = await this.inner.run(ctx, scope, hookSet);
    this.limitEmits(result);
    const where = { collection: ctx.collection, event: ctx.event, file: result.file ?? `${ctx.collection}/${ctx.event}` };
    for (const line of result.logs) {
      const level = line.level === 'debug' || line.level === 'warn' || line.level === 'error' ? line.level : 'info';
      this.log[level]({ ...where, hookLog: true, ...(line.fields ? { fields: line.fields } : {}) }, line.message);
    }
    const cancel = result.cancel;
    if (cancel?.isError) this.log.error({ ...where, status: cancel.status, ...(result.stack ? { stack: result.stack } : {}) }, `hook failed: ${cancel.message}`);
    else if (cancel) this.log.debug({ ...where, status: cancel.status }, `hook cancelled the request: ${cancel.message}`);
    return result;
  }

  /** An over-large emit turns the event into a failure with no emits. */
  private limitEmits(result: RunResult): void {
    if (result.cancel || result.emits.length === 0 || !Number.isFinite(this.maxEventBytes)) return;
    for (const emit of result.emits) {
      const bytes = jsonSize(emit.data ?? null);
      if (bytes <= this.maxEventBytes) continue;
      const file = result.file ? `${result.file}: ` : '';
      result.cancel = failure(`${file}emit("${emit.event}") carries ${bytes} bytes; real-time events are limited to ${this.maxEventBytes} (limits.maxEventBytes in .deployd/realtime.json)`);
      result.emits = [];
      return;
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
