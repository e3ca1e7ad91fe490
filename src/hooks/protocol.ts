/**
 * The hook protocol as plain objects: the same messages as `proto/deployd/hooks/v1/hooks.proto`,
 * field for field, except that a proto `foo_json` field (JSON text) is the decoded value `foo` here.
 * The JavaScript runner passes these objects; the Go runner encodes them to protobuf.
 */

/** The hook events as file names (`post.js`, `post.go`); hooks-go's Register takes the same (convert.go). */
export const HOOK_EVENTS = ['beforerequest', 'validate', 'post', 'put', 'get', 'delete', 'aftercommit', 'login'] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** proto enum `Event` ↔ file names. */
export const PROTO_EVENT: Record<HookEvent, string> = {
  beforerequest: 'EVENT_BEFORE_REQUEST',
  validate: 'EVENT_VALIDATE',
  post: 'EVENT_POST',
  put: 'EVENT_PUT',
  get: 'EVENT_GET',
  delete: 'EVENT_DELETE',
  aftercommit: 'EVENT_AFTER_COMMIT',
  login: 'EVENT_LOGIN',
};

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface Caller {
  isRoot: boolean;
  /** The logged-in user without secrets; null when anonymous. */
  me: JsonObject | null;
}

export interface EventContext {
  collection: string;
  event: HookEvent;
  /** HTTP method: GET POST PUT DELETE. */
  method: string;
  /** BeforeRequest's `event`: GET POST PUT DELETE QUERY LOGIN LOGOUT. */
  requestEvent: string;
  data: JsonObject;
  previous: JsonObject | null;
  query: JsonObject;
  caller: Caller;
  internal: boolean;
  requestId: string;
  success: boolean;
  /** The request's path after the resource's (Deployd's `ctx.url`); "/" when there is none. */
  url?: string;
  /** The request body as sent (Deployd's `ctx.body`), never a password. */
  body?: JsonObject;
}

export interface Emit {
  event: string;
  data: Json;
  room?: string;
  usersCollection?: string;
  usersQuery?: JsonObject;
}

export interface Cancel {
  message: string;
  status: number;
  /** A failure (Error, crash, timeout) rather than a deliberate cancel. */
  isError: boolean;
}

export interface ResponseMutation {
  replaceData: boolean;
  data?: Json;
  addFields: JsonObject;
  messages: string[];
  /** 0: unchanged. */
  status: number;
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields?: JsonObject;
}

export interface HookResult {
  data: JsonObject;
  cancel?: Cancel;
  errors: Record<string, string>;
  hidden: string[];
  protected: string[];
  emits: Emit[];
  response?: ResponseMutation;
  logs: LogLine[];
  /** BeforeRequest's rewritten query. */
  query?: JsonObject;
  /** Rooms joined or left for the caller's session (`session.joinRoom`). */
  sessionRooms?: SessionRooms;
}

export interface SessionRooms {
  join: string[];
  leave: string[];
  /** Leave every room first, then join `join`. */
  leaveAll: boolean;
}
