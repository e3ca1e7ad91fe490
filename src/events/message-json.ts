/**
 * One serialization per committed change: the message's JSON is built around the document's text
 * (made once, when the store wrote it: src/util/json-text.ts), and a client whose view is the stored
 * document gets a frame made from the same text.
 */
import { jsonOf, madeJson, rememberJson } from '../util/json-text.js';
import type { CollectionChange, EventMessage } from './messages.js';

/** `JSON.stringify(message)`, made once; a change's document text is the shared one. */
export function messageJson(message: EventMessage): string {
  if (message.type !== 'collection_change') return jsonOf(message);
  let text = madeJson(message);
  if (text === undefined) {
    // The keys in the order Publication writes them, so this is `JSON.stringify(message)`.
    text = `{"type":"collection_change","collection":${JSON.stringify(message.collection)},"action":${JSON.stringify(message.action)},`
      + `"document":${jsonOf(message.document)},"timestamp":${JSON.stringify(message.timestamp)},"userId":${JSON.stringify(message.userId)}}`;
    rememberJson(message, text);
  }
  return text;
}

/** The client frame of a change for a reader who sees the stored document: the message plus its id. */
export function storedChangeFrame(message: CollectionChange, id: string): string {
  return `${messageJson(message).slice(0, -1)},"id":${JSON.stringify(id)}}`;
}
