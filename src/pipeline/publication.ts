/**
 * What a collection's requests publish, and when: a change at its commit (after what the request
 * queued before it), a hook's `emit()`s and room changes queued in the request's outbox, released by
 * the pipeline when the request succeeds. Messages go to `deps.bus`.
 */
import type { EventPublisher } from '../events/event-log.js';
import type { Emit, HookResult, JsonObject, SessionRooms } from '../hooks/protocol.js';
import type { RequestScope } from './request-scope.js';

export interface PublicationDeps {
  bus: EventPublisher;
  /** Stores a session's rooms (after `session.joinRoom` in a hook). */
  saveSessionRooms?: (sessionId: string, rooms: string[]) => Promise<void>;
  /** The user ids matching a query on a users collection (`emit(dpd.users, query, …)`). */
  resolveUsers?: (collection: string, query: JsonObject) => Promise<string[]>;
  log: { warn(obj: object, msg: string): void };
}

export class Publication {
  constructor(private readonly collection: string, private readonly deps: PublicationDeps) {}

  /** A hook's emits and room changes, queued with the request; a cancelled hook queues nothing. */
  queueHookResult(scope: RequestScope, result: HookResult): void {
    if (result.cancel) return;
    if (result.sessionRooms && scope.session) {
      // Joins apply before this request's emits go out, so `joinRoom(r); emit(r, …)` reaches the joiner.
      const rooms = changeRooms(scope.session.rooms, result.sessionRooms);
      const sessionId = scope.session.id;
      scope.session.rooms = rooms;
      scope.outbox.add(() => {
        this.deps.bus.publish({ type: 'session_rooms', sessionId, rooms });
        this.deps.saveSessionRooms?.(sessionId, rooms).catch((err: Error) => this.deps.log.warn({ err: err.message }, 'saving session rooms failed'));
      });
    }
    for (const emit of result.emits) scope.outbox.add(() => this.publishEmit(emit));
  }

  /** Login sessions that ended with this request (logout, new credentials, a deleted user). */
  queueSessionsEnded(scope: RequestScope, sessionIds: string[]): void {
    if (sessionIds.length > 0) scope.outbox.add(() => this.deps.bus.publish({ type: 'session_ended', sessionIds }));
  }

  /**
   * A committed change: what the request queued so far goes out, then the change — so events leave
   * in commit order whatever runs after, and a committed change is published even if the rest of
   * the request fails.
   */
  commitChange(scope: RequestScope, action: 'created' | 'updated' | 'deleted', document: Record<string, unknown>): void {
    const userId = scope.caller.me && typeof scope.caller.me.id === 'string' ? scope.caller.me.id : null;
    scope.outbox.commit(() => this.deps.bus.publish({
      type: 'collection_change', collection: this.collection, action, document: document as JsonObject, timestamp: new Date().toISOString(), userId,
    }));
  }

  private publishEmit(emit: Emit): void {
    const message = {
      type: 'custom_event' as const,
      event: emit.event,
      data: emit.data ?? null,
      timestamp: new Date().toISOString(),
      ...(emit.room ? { room: emit.room } : {}),
    };
    if (!emit.usersCollection) return this.deps.bus.publish(message);
    // `emit(dpd.users, query, …)`: resolved to user ids here, once, so every instance can route it.
    const resolve = this.deps.resolveUsers ?? (async () => []);
    resolve(emit.usersCollection, emit.usersQuery ?? {}).then(
      (userIds) => this.deps.bus.publish({ ...message, userIds }),
      (err: Error) => this.deps.log.warn({ collection: this.collection, event: emit.event, err: err.message }, 'emit to users failed: could not resolve the users'),
    );
  }
}

const MAX_SESSION_ROOMS = 100;

function changeRooms(current: string[], change: SessionRooms): string[] {
  const rooms = new Set(change.leaveAll ? [] : current);
  for (const room of change.leave) rooms.delete(room);
  for (const room of change.join) if (rooms.size < MAX_SESSION_ROOMS) rooms.add(room);
  return [...rooms];
}
