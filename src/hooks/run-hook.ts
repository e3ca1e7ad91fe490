/**
 * Unit tests for JavaScript hooks: `runHook('resources/todos/post.js', { data, me, previous })`
 * runs one hook file in the real sandbox (an isolated-vm isolate in a hook worker process, the
 * same code path as the server's) and resolves to what it did: the document after it, validation
 * errors, a cancel, hidden and protected fields, emits, response changes, log lines. No server, no
 * database: `dpd` calls go to the functions the test gives, by collection name.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { InternalCall } from './hook-runner.js';
import { JsHookRunner } from './js/js-runner.js';
import { HOOK_EVENTS, type HookEvent, type HookResult, type Json, type JsonObject } from './protocol.js';

export interface RunHookContext {
  /** Default: the file's name (`post.js` → post). */
  event?: HookEvent;
  /** Default: the file's folder name. */
  collection?: string;
  /** HTTP method; default from the event (POST for validate/post, PUT, GET, DELETE). */
  method?: string;
  /** BeforeRequest's request event (GET POST PUT DELETE QUERY LOGIN LOGOUT). */
  requestEvent?: string;
  data?: JsonObject;
  /** The stored document before the write (PUT, AfterCommit). */
  previous?: JsonObject | null;
  query?: JsonObject;
  /** The logged-in user; null or absent: anonymous. */
  me?: JsonObject | null;
  isRoot?: boolean;
  internal?: boolean;
  /** A Login hook's "the password matched". */
  success?: boolean;
  /**
   * Answers the hook's `dpd.<collection>` calls, by collection name: return the result (or a
   * promise of it); throw `{ message, status }` to fail the call.
   */
  dpd?: Record<string, (call: InternalCall) => Json | Promise<Json>>;
  /** The hook's time limit; default 1000 ms. */
  timeoutMs?: number;
}

export interface RunHookResult extends HookResult {
  /** The hook's `dpd` calls, in order. */
  dpdCalls: InternalCall[];
}

const METHODS: Partial<Record<HookEvent, string>> = { validate: 'POST', post: 'POST', put: 'PUT', get: 'GET', delete: 'DELETE', login: 'POST' };

const silent = {
  level: 'silent',
  fatal() {},
  error() {},
  warn() {},
  info() {},
  debug() {},
  trace() {},
  silent() {},
  child() {
    return silent;
  },
} as unknown as FastifyBaseLogger;

/** Runs the JavaScript hook in `file` once with `context`; rejects when the file does not load. */
export async function runHook(file: string, context: RunHookContext = {}): Promise<RunHookResult> {
  const source = await fs.promises.readFile(file, 'utf8');
  const event = context.event ?? (path.basename(file, '.js') as HookEvent);
  if (!(HOOK_EVENTS as readonly string[]).includes(event)) throw new Error(`runHook: ${file} is not a hook file (want one of ${HOOK_EVENTS.join(', ')}.js), or pass context.event`);
  const collection = context.collection ?? path.basename(path.dirname(path.resolve(file)));
  const runner = new JsHookRunner(1, silent);
  const dpdCalls: InternalCall[] = [];
  try {
    runner.setCollections(Object.keys(context.dpd ?? {}));
    runner.setInternalHandler(async (_scope, call) => {
      dpdCalls.push(call);
      const answer = context.dpd?.[call.collection];
      if (!answer) return { error: { message: `runHook: no context.dpd.${call.collection} to answer`, status: 500 } };
      try {
        return { result: await answer(call) };
      } catch (err) {
        const e = err as { message?: unknown; status?: unknown };
        return { error: { message: String(e?.message ?? err), status: typeof e?.status === 'number' ? e.status : 500 } };
      }
    });
    const timeoutMs = context.timeoutMs ?? 1000;
    const errors = await runner.load(collection, [{ event, file: `${collection}/${event}.js`, source }], { timeoutMs, memoryMb: 64 });
    if (errors[event]) throw new Error(`runHook: ${errors[event]}`);
    const result = await runner.run({
      collection,
      event,
      method: context.method ?? METHODS[event] ?? 'GET',
      requestEvent: context.requestEvent ?? '',
      data: context.data ?? {},
      previous: context.previous ?? (event === 'aftercommit' ? null : {}),
      query: context.query ?? {},
      caller: { isRoot: context.isRoot ?? false, me: context.me ?? null },
      internal: context.internal ?? false,
      requestId: 'runHook',
      success: context.success ?? false,
    });
    return { ...result, dpdCalls };
  } finally {
    await runner.close();
  }
}
