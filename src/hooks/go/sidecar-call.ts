/**
 * One Go hook call: on the set's sidecar (waiting for a replacement that is starting, up to 10 s or
 * the deadline if longer, and then giving the call its full deadline), with a fresh invocation id
 * for its `dpd` calls. Every failure is a failedResult (../hook-result.ts): past the deadline 504
 * (and the possibly stuck sidecar is replaced at once), a crash 503 "restarting", else 500.
 */
import { setTimeout as wait } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import { failedResult } from '../hook-result.js';
import type { RunResult } from '../hook-runner.js';
import type { EventContext } from '../protocol.js';
import type { DpdBridge } from './dpd-bridge.js';
import { inUserFiles, placeFailure, type HookSet } from './hook-set.js';
import { GoPluginError } from './plugin-error.js';
import { fromProto, toProto, type ProtoHookResult } from './proto-convert.js';
import type { Sidecars } from './sidecars.js';

/** How long a call waits for a replacement sidecar that is starting (its own deadline starts after). */
const RESTART_WAIT_MS = 10_000;

export interface CallDeps {
  sidecars: Sidecars;
  bridge: DpdBridge;
  log: FastifyBaseLogger;
}

/** Runs `ctx.event` of `set` (whose hook file is `file`) on its sidecar. */
export async function callSidecar(set: HookSet, ctx: EventContext, scope: unknown, file: string, deps: CallDeps): Promise<RunResult> {
  let proc = set.proc;
  if (!proc || !proc.alive) {
    // A replacement is starting (a crash, a timeout): this call waits for it rather than failing
    // an innocent request; its own deadline starts once the sidecar is there.
    const restarted = await Promise.race([deps.sidecars.restart(set), wait(Math.max(set.timeoutMs, RESTART_WAIT_MS), undefined, { ref: false }).then(() => 'late' as const)]);
    if (restarted === 'late') return failedResult(`go hook ${file} timed out`, 504);
    if (!restarted) return failedResult(`go hook ${file} crashed; restarting`, 503);
    proc = restarted;
  }
  const deadline = Date.now() + set.timeoutMs;
  let res: ProtoHookResult;
  const invocation = deps.bridge.begin(scope, set);
  try {
    const request = toProto(ctx);
    request.invocation_id = invocation;
    res = await proc.run(request, Math.max(1, deadline - Date.now()));
  } catch (err) {
    const code = err instanceof GoPluginError ? err.code : 'RPC';
    // grpc-js under load sometimes reports an expired deadline as CANCELLED: count it as one.
    if (code === 'DEADLINE' || (code === 'RPC' && Date.now() >= deadline)) {
      deps.log.error({ collection: set.collection, file, pid: proc.pid }, 'go hook timed out; replacing its sidecar');
      deps.sidecars.replace(set, proc);
      return failedResult(`go hook ${file} timed out`, 504);
    }
    if (code === 'EXITED' || code === 'STOPPED' || !proc.alive) return failedResult(`go hook ${file} crashed; restarting`, 503);
    return failedResult(`go hook ${file} failed: ${(err as Error).message}`, 500);
  } finally {
    deps.bridge.end(invocation);
  }
  const out: RunResult = fromProto(res, ctx);
  out.file = file;
  if (out.cancel?.isError) {
    out.cancel.message = placeFailure(out.cancel.message, file, set);
    // The SDK logs a panic's stack at debug: it is the failure's stack (answered with --dev).
    const panic = out.logs.find((line) => line.level === 'debug' && line.message.startsWith('panic: '));
    if (panic) out.stack = inUserFiles(panic.message, set);
  }
  return out;
}
