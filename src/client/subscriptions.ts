/**
 * Which collections' changes and which rooms a client's socket follows (`dpd.subscribe`,
 * `unsubscribe`, `join`, `leave`): kept by the client so that every (re)connect asks for them again.
 */

export type ControlType = 'subscribe' | 'unsubscribe' | 'join' | 'leave';

/** The gateway's reply to each control message (src/realtime/gateway.ts). */
export const ACKS = { subscribe: 'subscribed', unsubscribe: 'unsubscribed', join: 'joined', leave: 'left' } as const;

export type ControlMessage =
  | { type: 'subscribe' | 'unsubscribe'; collections: string[] }
  | { type: 'join' | 'leave'; room: string };

export class Subscriptions {
  /** Only these collections' changes; null = every collection but `excluded`. */
  private only: Set<string> | null = null;
  private readonly excluded = new Set<string>();
  private readonly rooms = new Set<string>();

  apply(type: ControlType, names: readonly string[]): void {
    for (const name of names) {
      if (type === 'subscribe') {
        (this.only ??= new Set()).add(name);
        this.excluded.delete(name);
      } else if (type === 'unsubscribe') {
        if (this.only) this.only.delete(name);
        else this.excluded.add(name);
      } else if (type === 'join') this.rooms.add(name);
      else this.rooms.delete(name);
    }
  }

  /** What a new connection must be told to be in the same state; none for a client that never asked. */
  messages(): ControlMessage[] {
    const messages: ControlMessage[] = [];
    // An empty subscription list still means "none": a name no collection can have says so.
    if (this.only) messages.push({ type: 'subscribe', collections: this.only.size > 0 ? [...this.only] : [' '] });
    else if (this.excluded.size > 0) messages.push({ type: 'unsubscribe', collections: [...this.excluded] });
    for (const room of this.rooms) messages.push({ type: 'join', room });
    return messages;
  }
}
