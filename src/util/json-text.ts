/**
 * JSON texts made once per object. A committed document is serialized when it is stored; the event
 * log (its byte bound, the Redis stream), the frames of clients that see it as stored and the HTTP
 * answer reuse that text instead of serializing the document again (src/events/message-json.ts).
 *
 * Only for objects that are never changed once their text is made (a committed document, a
 * published message): a view that differs (hidden fields, a Get hook) is a new object.
 *
 * The texts of the last few objects are kept in a small ring compared by identity, not in a
 * WeakMap: a WeakMap entry per request costs more (ephemeron write barrier, GC work) than the
 * serialization it saves. A text that has left the ring is simply made again.
 */
const SLOTS = 64;
const objects: Array<object | undefined> = new Array(SLOTS).fill(undefined);
const texts: string[] = new Array(SLOTS).fill('');
let next = 0;

/** `JSON.stringify(value)`, made once while the object is among the last ones serialized. */
export function jsonOf(value: object): string {
  const made = madeJson(value);
  if (made !== undefined) return made;
  const text = JSON.stringify(value);
  rememberJson(value, text);
  return text;
}

/** The text already made for this object, if it is still kept. */
export function madeJson(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  // Newest first: the answer and the log ask right after the store made it.
  for (let i = 1; i <= SLOTS; i++) {
    const slot = (next - i + SLOTS) % SLOTS;
    if (objects[slot] === value) return texts[slot];
  }
  return undefined;
}

/** Records `text` as `JSON.stringify(value)`, made by whoever serialized it already. */
export function rememberJson(value: object, text: string): void {
  objects[next] = value;
  texts[next] = text;
  next = (next + 1) % SLOTS;
}

/**
 * `JSON.stringify({ id, ...data })` from the data's own text: how stores keep a document (its id
 * apart), turned back into the document's text without parsing and serializing it again.
 */
export function withIdJson(id: string, dataText: string): string {
  return dataText.length > 2 ? `{"id":${JSON.stringify(id)},${dataText.slice(1)}` : `{"id":${JSON.stringify(id)}}`;
}
