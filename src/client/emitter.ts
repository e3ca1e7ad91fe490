/**
 * The client's listeners: `dpd.on` / `once` / `off` for collection changes, custom events and the
 * client's own events. A listener that throws does not stop the others.
 */
import type { Listener } from './index.js';

export class Emitter {
  private readonly listeners = new Map<string, Array<Listener & { original?: Listener }>>();

  add(event: string, fn: Listener, once: boolean): void {
    let wrapped: Listener & { original?: Listener } = fn;
    if (once) {
      wrapped = (...args: unknown[]) => {
        this.remove(event, wrapped);
        fn(...args);
      };
      wrapped.original = fn;
    }
    const list = this.listeners.get(event) ?? [];
    list.push(wrapped);
    this.listeners.set(event, list);
  }

  remove(event: string, fn?: Listener): void {
    if (!fn) {
      this.listeners.delete(event);
      return;
    }
    const list = this.listeners.get(event);
    if (!list) return;
    const index = list.findIndex((l) => l === fn || l.original === fn);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.listeners.delete(event);
  }

  emit(event: string, ...args: unknown[]): void {
    const list = this.listeners.get(event);
    if (!list) return;
    for (const fn of [...list]) {
      try {
        fn(...args);
      } catch (err) {
        // One failing listener must not starve the others or the socket: report it like any
        // uncaught error, outside this loop.
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
}
