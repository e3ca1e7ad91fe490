/** IPC between the server and a hook worker process (JSON over the fork channel). */
import type { HookVariant } from '../hook-params.js';
import type { HookEvent } from '../protocol.js';

export interface HookSource {
  event: HookEvent;
  /** Shown in errors and stack traces: `todos/post.js`. */
  file: string;
  source: string;
  /** A prebuilt go-plugin program serving this event (config.json `goPlugin`): its absolute path. */
  plugin?: string;
}

/** Server → worker. */
export type WorkerRequest =
  | { t: 'load'; id: number; collection: string; hooks: HookSource[]; timeoutMs: number; memoryMb: number; collections: string[] }
  | { t: 'unload'; collection: string }
  | { t: 'names'; collections: string[] }
  | { t: 'run'; id: number; collection: string; variant: HookVariant; ctxJson: string }
  | { t: 'reply'; worker: number; call: number; resultJson?: string; errorJson?: string }
  | { t: 'memory'; id: number };

/** One isolate's heap, as isolated-vm's `getHeapStatistics` reports it. */
export interface IsolateMemory {
  /** The hook set (collection and hook version) the isolate serves. */
  hookSet: string;
  usedHeapBytes: number;
  totalHeapBytes: number;
  /** Memory held outside the heap (ArrayBuffers), counted against the limit too. */
  externalBytes: number;
}

/** Worker → server. */
export type WorkerMessage =
  | { t: 'ready' }
  | { t: 'memory'; id: number; rssBytes: number; isolates: IsolateMemory[] }
  | { t: 'loaded'; id: number; errors: Record<string, string> }
  | { t: 'result'; id: number; resultJson: string }
  /** The run's hook code returned without an outcome (it waits on a `dpd` call or a callback): the worker is free. */
  | { t: 'parked'; id: number }
  /** A `dpd.<collection>` call from inside a hook; answered with a `reply`. */
  | { t: 'call'; inv: number; worker: number; call: number; payload: string };
