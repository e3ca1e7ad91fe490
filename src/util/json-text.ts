/**
 * JSON texts made once per object. A committed document is serialized when it is stored; the event
 * log (its byte bound, the Redis stream), the frames of clients that see it as stored and the HTTP
 * answer reuse that text instead of serializing the document again (src/events/message-json.ts).
 *
 * Only for objects that are never changed once their text is made (a committed document, a
 * published message): a view that differs (hidden fields, a Get hook) is a new object.
 */
const texts = new WeakMap<object, string>();

/** `JSON.stringify(value)`, made once per object. */
export function jsonOf(value: object): string {
  let text = texts.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    texts.set(value, text);
  }
  return text;
}

/** The text already made for this object, if any. */
export function madeJson(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null ? texts.get(value) : undefined;
}

/** Records `text` as `JSON.stringify(value)`, made by whoever serialized it already. */
export function rememberJson(value: object, text: string): void {
  texts.set(value, text);
}

/**
 * `JSON.stringify({ id, ...data })` from the data's own text: how stores keep a document (its id
 * apart), turned back into the document's text without parsing and serializing it again.
 */
export function withIdJson(id: string, dataText: string): string {
  return dataText.length > 2 ? `{"id":${JSON.stringify(id)},${dataText.slice(1)}` : `{"id":${JSON.stringify(id)}}`;
}
