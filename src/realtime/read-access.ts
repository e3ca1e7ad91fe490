/**
 * Who may read a change: the gateway asks this for each distinct identity among the recipients
 * and delivers only what it answers. The composition root (src/server.ts) passes the collections'
 * read policy (src/collections/read-access.ts), so a real-time event never reaches a client who
 * could not GET that document.
 */
import type { CollectionChange } from '../events/messages.js';
import type { Caller, JsonObject } from '../hooks/protocol.js';

export interface ReadAccess {
  /** The changed document as `caller` could GET it (hidden fields removed), or null when they may not. */
  viewOf(change: CollectionChange, caller: Caller): Promise<JsonObject | null>;
}
