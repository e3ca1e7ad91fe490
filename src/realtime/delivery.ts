/**
 * Delivery: every event the log hands over reaches the connections that want it and may read it,
 * in log order.
 *
 * A collection change goes to a connection only if its caller could GET that document (asked of the
 * injected ReadAccess once per distinct identity among the recipients, not once per socket; a
 * failure means "not delivered"); each audience's frame is serialized once. Session control
 * messages change who connections are. A reconnecting client (`?since=<id>`) gets what it missed
 * from the log, then live events, with none twice — or `resync_required`.
 */
import type { FastifyBaseLogger } from 'fastify';
import { covers, type EventLog, type LoggedEvent, type LogListener } from '../events/event-log.js';
import { storedChangeFrame } from '../events/message-json.js';
import type { CollectionChange, CustomEvent } from '../events/messages.js';
import type { JsonObject } from '../hooks/protocol.js';
import { ANONYMOUS, wants, type Connection, type Identity } from './connection.js';
import { serverFrames } from './protocol.js';
import type { ReadAccess } from './read-access.js';
import type { Transport } from './transport.js';

/** Who an event reached on this instance: sockets per identity, and identities refused by permissions. */
export interface Audience {
  delivered: Record<string, number>;
  refused: string[];
}

export type DeliveryObserver = (event: LoggedEvent, audience: Audience) => void;

export class Delivery implements LogListener {
  /** Frames go out in log order: each event's sends wait for the previous event's. */
  private chain: Promise<void> = Promise.resolve();
  /** Links of `chain` not yet run: at 0, an event nobody here receives needs no link of its own. */
  private waiting = 0;
  private readonly observers = new Set<DeliveryObserver>();

  constructor(
    private readonly transport: Transport,
    private readonly events: EventLog,
    private readonly readAccess: ReadAccess,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Calls `observer` with every event fanned out here and who got it (the dashboard's monitor). */
  observe(observer: DeliveryObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** A message from the log (committed here or, with Redis, on any instance): to local sockets. */
  event(event: LoggedEvent): void {
    try {
      const { message } = event;
      if (message.type === 'session_ended') return this.endSessions(new Set(message.sessionIds));
      if (message.type === 'session_rooms') return this.setSessionRooms(message.sessionId, message.rooms);
      if (message.type === 'collection_change' && message.action === 'updated') this.refreshUser(message);
      this.fanOut(event, message);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'real-time delivery failed');
    }
  }

  /** The log may have lost events: every client refetches (`resync_required`), then live events go on. */
  gap(): void {
    this.then(() => {
      for (const connection of this.transport.connections) this.transport.send(connection, serverFrames.resyncRequired());
    });
  }

  /** Replays what a reconnecting client missed, then lets live events through, in order. */
  async resume(connection: Connection, since: string): Promise<void> {
    // Live events are held from now on: the log answers asynchronously, and whatever is
    // delivered meanwhile is either in its answer or in `pending` (duplicates are skipped below).
    const pending: LoggedEvent[] = [];
    connection.pending = pending;
    try {
      const missed = await this.events.since(since).catch((err: Error) => {
        this.log.warn({ err: err.message }, 'real-time history unavailable for a resume: asking the client to resync');
        return undefined;
      });
      if (!missed) this.transport.send(connection, serverFrames.resyncRequired()); // live events still follow
      // Live events up to here were replayed, or were seen elsewhere: a client coming from another
      // instance may be ahead of this one's reader.
      else connection.replayedThrough = missed.length > 0 ? missed[missed.length - 1].id : since;
      for (const event of missed ?? []) {
        if (!this.transport.isOpen(connection)) return; // gone (or dropped as too slow) mid-replay
        const frame = await this.frameFor(event, connection.identity);
        if (frame && wants(connection, event.message)) this.transport.send(connection, frame);
      }
      // Live events that arrived during the replay (and while these are sent), skipping any the
      // replay already covered; only then does the client take live events directly.
      const replayed = new Set((missed ?? []).map((e) => e.id));
      while (pending.length > 0) {
        const event = pending.shift()!;
        if (!this.transport.isOpen(connection)) return;
        if (replayed.has(event.id) || (connection.replayedThrough !== null && covers(connection.replayedThrough, event.id))) continue;
        const frame = await this.frameFor(event, connection.identity);
        if (frame && wants(connection, event.message)) this.transport.send(connection, frame);
      }
    } finally {
      connection.pending = null;
    }
  }

  /** Logout or new credentials: those connections become anonymous at once (Deployd §7.2 #6 closed). */
  private endSessions(ended: Set<string>): void {
    for (const connection of this.transport.connections) {
      if (!connection.identity.sessionId || !ended.has(connection.identity.sessionId)) continue;
      connection.identity = ANONYMOUS;
      connection.sessionRooms.clear();
      this.transport.send(connection, serverFrames.sessionEnded());
    }
  }

  /**
   * A user record changed (a role, a team): the connections logged in as that user read as the new
   * record from this event on, on every instance — not as the user was when they connected.
   */
  private refreshUser(change: CollectionChange): void {
    const me = change.document;
    for (const connection of this.transport.connections) {
      const { identity } = connection;
      if (identity.userId !== me.id || identity.usersCollection !== change.collection) continue;
      connection.identity = { ...identity, caller: { isRoot: false, me } };
    }
  }

  private setSessionRooms(sessionId: string, rooms: string[]): void {
    for (const connection of this.transport.connections) {
      if (connection.identity.sessionId === sessionId) connection.sessionRooms = new Set(rooms);
    }
  }

  private fanOut(event: LoggedEvent, message: CollectionChange | CustomEvent): void {
    const recipients = [...this.transport.connections].filter((c) => c.pending !== null || wants(c, message));
    if (recipients.length === 0 && this.waiting === 0) {
      // No socket here wants it and nothing is still being sent: only the observers hear of it, now
      // (in log order all the same), without a permission check or a link in the chain.
      for (const observer of this.observers) observer(event, { delivered: {}, refused: [] });
      return;
    }
    // Who each recipient was when the event was committed: an `auth` that lands while the
    // permissions are evaluated must not make the client miss the event.
    const keys = recipients.map((c) => c.identity.key);
    // Evaluate permissions now (concurrently with earlier events), deliver in log order.
    const frames = this.audienceFrames(event, recipients.map((c) => c.identity));
    frames.catch(() => {}); // awaited (and reported) in the delivery chain; never an unhandled rejection
    this.then(async () => {
      const byIdentity = await frames;
      const audience: Audience = { delivered: {}, refused: [] };
      recipients.forEach((connection, i) => {
        if (connection.pending) {
          connection.pending.push(event);
          return;
        }
        if (!this.transport.isOpen(connection) || !wants(connection, message)) return;
        if (connection.replayedThrough !== null) {
          if (covers(connection.replayedThrough, event.id)) return; // the resume already sent it
          connection.replayedThrough = null;
        }
        const frame = byIdentity.get(keys[i]);
        if (frame) this.transport.send(connection, frame);
        if (frame) audience.delivered[keys[i]] = (audience.delivered[keys[i]] ?? 0) + 1;
        else if (!audience.refused.includes(keys[i])) audience.refused.push(keys[i]);
      });
      for (const observer of this.observers) observer(event, audience);
    });
  }

  /** Runs `step` after every step queued before it (a failure is reported, and the chain goes on). */
  private then(step: () => void | Promise<void>): void {
    this.waiting++;
    this.chain = this.chain.then(step)
      .catch((err: Error) => this.log.error({ err: err.message }, 'real-time delivery failed'))
      .finally(() => { this.waiting--; });
  }

  /** One serialized frame per distinct identity (null: not allowed). */
  private async audienceFrames(event: LoggedEvent, recipients: Identity[]): Promise<Map<string, string | null>> {
    const identities = new Map<string, Identity>();
    for (const identity of recipients) identities.set(identity.key, identity);
    const frames = new Map<string, string | null>();
    const message = event.message;
    if (message.type !== 'collection_change') {
      const frame = message.type === 'custom_event' ? serverFrames.custom(message, event.id) : null;
      for (const key of identities.keys()) frames.set(key, frame);
      return frames;
    }
    const byDocument = new Map<string, string>(); // serialize once per distinct visible document
    await Promise.all([...identities.values()].map(async (identity) => {
      let document: JsonObject | null;
      try {
        document = await this.readAccess.viewOf(message, identity.caller);
      } catch {
        document = null; // a failing read check (a Get hook that fails) fails closed
      }
      if (!document) return frames.set(identity.key, null);
      // A reader whose view is the stored document itself gets the change's one shared text.
      if (document === message.document) return frames.set(identity.key, storedChangeFrame(message, event.id));
      const key = JSON.stringify(document);
      let frame = byDocument.get(key);
      if (!frame) {
        frame = serverFrames.change(message, document, event.id);
        byDocument.set(key, frame);
      }
      frames.set(identity.key, frame);
    }));
    return frames;
  }

  private async frameFor(event: LoggedEvent, identity: Identity): Promise<string | null> {
    const frames = await this.audienceFrames(event, [identity]);
    return frames.get(identity.key) ?? null;
  }
}
