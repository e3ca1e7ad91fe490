/**
 * `dpd` from Go (`ctx.Dpd("todos").Get(…)`): each sidecar is offered HostService over go-plugin's
 * broker (plugin-host.ts). Every Run carries a fresh invocation id, valid until its result is back;
 * a Dpd call naming it runs through the same internal handler as JavaScript's `dpd` (the caller's
 * identity and request stack, rules, hooks, recursion limit, emits after commit).
 */
import type { InternalHandler } from '../hook-runner.js';
import type { HookSet } from './hook-set.js';
import type { HostServiceHandler } from './host-service.js';
import { dpdFailure, fromProtoDpd, toProtoDpd, type ProtoDpdRequest, type ProtoDpdResponse } from './proto-convert.js';

export class DpdBridge {
  private internal?: InternalHandler;
  /** Invocations running now, by id: the request scope their `dpd` calls run in. */
  private readonly invocations = new Map<string, { scope: unknown; set: HookSet }>();
  private nextInvocation = 0;

  setInternalHandler(handler: InternalHandler): void {
    this.internal = handler;
  }

  /** A new invocation of `set` in the request `scope`: its id, valid until end(id). */
  begin(scope: unknown, set: HookSet): string {
    const id = String(++this.nextInvocation);
    this.invocations.set(id, { scope, set });
    return id;
  }

  end(id: string): void {
    this.invocations.delete(id);
  }

  /** HostService for `set`'s sidecar. */
  hostFor(set: HookSet): HostServiceHandler {
    return { dpd: (req) => this.dpd(set, req) };
  }

  private async dpd(set: HookSet, req: ProtoDpdRequest): Promise<ProtoDpdResponse> {
    const running = this.invocations.get(String(req.invocation_id));
    if (!running || running.set !== set) return dpdFailure(400, 'dpd call from a hook that is not running (finish dpd calls before the hook returns)');
    if (!this.internal) return dpdFailure(500, 'internal client unavailable');
    const call = fromProtoDpd(req);
    if (!('collection' in call)) return call;
    return toProtoDpd(await this.internal(running.scope, call));
  }
}
