/**
 * The hook protocol between its two shapes on the host: protocol.ts's plain objects and the
 * protobuf messages of hooks.proto as @grpc/proto-loader hands them over. The host's half of
 * hooks-go/hooks/convert.go (which decodes the EventContext and encodes the HookResult on the
 * plugin's side) and of dpd.go (HostService/Dpd).
 */
import type { InternalCall, InternalOutcome } from '../hook-runner.js';
import { PROTO_EVENT, type EventContext, type HookResult, type Json, type JsonObject, type LogLine } from '../protocol.js';

/**
 * HookService messages as @grpc/proto-loader objects (keepCase: snake_case fields; enums as
 * strings, e.g. `event: 'EVENT_POST'`; bytes as Buffers; with defaults, so a missing message field
 * is null, repeated fields [] and maps {}).
 */
export interface ProtoEventContext {
  collection?: string;
  event: string | number;
  method?: string;
  request_event?: string;
  data_json?: Buffer | Uint8Array;
  previous_json?: Buffer | Uint8Array;
  query_json?: Buffer | Uint8Array;
  caller?: { is_root?: boolean; me_json?: Buffer | Uint8Array } | null;
  internal?: boolean;
  request_id?: string;
  success?: boolean;
  /** Names the invocation in the plugin's HostService calls. */
  invocation_id?: number | string;
  url?: string;
  body_json?: Buffer | Uint8Array;
}

export interface ProtoHookResult {
  data_json: Buffer;
  cancel: { message: string; status: number; is_error: boolean } | null;
  errors: Record<string, string>;
  hidden: string[];
  protected: string[];
  emits: { event: string; data_json: Buffer; room: string; users_collection: string; users_query_json: Buffer }[];
  response: { replace_data: boolean; data_json: Buffer; add_fields_json: Buffer; messages: string[]; status: number } | null;
  logs: { level: string; message: string; fields_json: Buffer }[];
  query_json: Buffer;
  session_rooms: { join: string[]; leave: string[]; leave_all: boolean } | null;
}

/** HostService/Dpd as proto-loader objects (snake_case, bytes as Buffers, uint64 as string). */
export interface ProtoDpdRequest {
  invocation_id: string;
  collection: string;
  method: string;
  id: string;
  query_json: Buffer;
  body_json: Buffer;
}

export interface ProtoDpdResponse {
  result_json?: Buffer;
  error_json?: Buffer;
}

export function toProto(ctx: EventContext): ProtoEventContext {
  return {
    collection: ctx.collection,
    event: PROTO_EVENT[ctx.event],
    method: ctx.method,
    request_event: ctx.requestEvent,
    data_json: json(ctx.data),
    previous_json: ctx.previous === null ? Buffer.alloc(0) : json(ctx.previous),
    query_json: json(ctx.query),
    caller: { is_root: ctx.caller.isRoot, me_json: ctx.caller.me ? json(ctx.caller.me) : Buffer.alloc(0) },
    internal: ctx.internal,
    request_id: ctx.requestId,
    success: ctx.success,
    url: ctx.url ?? '/',
    body_json: json(ctx.body ?? {}),
  };
}

export function fromProto(res: ProtoHookResult, ctx: EventContext): HookResult {
  const data = parse(res.data_json);
  const out: HookResult = {
    data: isObject(data) ? data : ctx.data,
    errors: { ...(res.errors ?? {}) },
    hidden: [...(res.hidden ?? [])],
    protected: [...(res.protected ?? [])],
    emits: (res.emits ?? []).map((e) => {
      const usersQuery = parse(e.users_query_json);
      return {
        event: e.event,
        data: parse(e.data_json) ?? null,
        ...(e.room ? { room: e.room } : {}),
        ...(e.users_collection ? { usersCollection: e.users_collection, usersQuery: isObject(usersQuery) ? usersQuery : {} } : {}),
      };
    }),
    logs: (res.logs ?? []).map((l) => {
      const fields = parse(l.fields_json);
      const level = (['debug', 'info', 'warn', 'error'] as const).find((x) => x === l.level) ?? 'info';
      const line: LogLine = { level, message: l.message };
      if (isObject(fields)) line.fields = fields;
      return line;
    }),
  };
  if (res.cancel) out.cancel = { message: res.cancel.message, status: res.cancel.status, isError: res.cancel.is_error };
  if (res.response) {
    const addFields = parse(res.response.add_fields_json);
    out.response = {
      replaceData: res.response.replace_data,
      ...(res.response.replace_data ? { data: parse(res.response.data_json) ?? null } : {}),
      addFields: isObject(addFields) ? addFields : {},
      messages: [...(res.response.messages ?? [])],
      status: res.response.status ?? 0,
    };
  }
  const query = parse(res.query_json);
  if (isObject(query)) out.query = query;
  if (res.session_rooms) {
    out.sessionRooms = { join: [...(res.session_rooms.join ?? [])], leave: [...(res.session_rooms.leave ?? [])], leaveAll: !!res.session_rooms.leave_all };
  }
  return out;
}

/**
 * A HostService/Dpd request as the internal call it asks for; a request that names no
 * collection, an unknown method or non-object JSON is the 400 answer to send back instead.
 */
export function fromProtoDpd(req: ProtoDpdRequest): InternalCall | ProtoDpdResponse {
  const method = req.method;
  if (method !== 'GET' && method !== 'POST' && method !== 'PUT' && method !== 'DELETE') return dpdFailure(400, `dpd: unknown method ${JSON.stringify(method)}`);
  if (!req.collection) return dpdFailure(400, 'dpd: no collection named');
  const query = parse(req.query_json) ?? {};
  const body = parse(req.body_json) ?? {};
  if (!isObject(query) || !isObject(body)) return dpdFailure(400, 'dpd: query and body must be JSON objects');
  return { collection: req.collection, method, id: req.id || undefined, query, body };
}

export function toProtoDpd(outcome: InternalOutcome): ProtoDpdResponse {
  if (outcome.error !== undefined) return { error_json: Buffer.from(JSON.stringify(outcome.error)) };
  return { result_json: Buffer.from(JSON.stringify(outcome.result ?? null)) };
}

/** A Dpd answer the host gives itself (the call never reached a collection): hooks-go's DpdError. */
export function dpdFailure(status: number, message: string): ProtoDpdResponse {
  return { error_json: Buffer.from(JSON.stringify({ message, status, statusCode: status })) };
}

function json(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v ?? {}), 'utf8');
}

function parse(buf: Buffer | Uint8Array | undefined | null): Json | undefined {
  if (!buf || buf.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.from(buf).toString('utf8')) as Json;
  } catch {
    return undefined;
  }
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
