/**
 * A byte string whose order (memcmp, as SQLite compares BLOBs) is MongoDB's order of BSON values,
 * for sorting by object-valued fields: an object compares field by field — the value's type rank,
 * then the field name, then the value — and a shorter object that is a prefix sorts first. Arrays
 * compare element by element in the same way.
 */

/** MongoDB's canonical type order: null < numbers < strings < objects < arrays < booleans. */
const RANK = { null: 1, number: 2, string: 3, object: 4, array: 5, boolean: 6 } as const;
const END = 0x00;

export function sortKey(jsonText: unknown): Buffer | null {
  if (typeof jsonText !== 'string') return null;
  const out: number[] = [];
  encodeValue(JSON.parse(jsonText), out);
  return Buffer.from(out);
}

function encodeValue(value: unknown, out: number[]): void {
  if (value === null || value === undefined) return;
  if (typeof value === 'number') return encodeNumber(value, out);
  if (typeof value === 'string') return encodeString(value, out);
  if (typeof value === 'boolean') {
    out.push(value ? 1 : 0);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) {
      out.push(rank(item));
      encodeValue(item, out);
    }
    out.push(END);
    return;
  }
  for (const [name, item] of Object.entries(value as Record<string, unknown>)) {
    out.push(rank(item));
    encodeString(name, out);
    encodeValue(item, out);
  }
  out.push(END);
}

function rank(value: unknown): number {
  if (value === null || value === undefined) return RANK.null;
  if (Array.isArray(value)) return RANK.array;
  return RANK[typeof value as 'number' | 'string' | 'object' | 'boolean'];
}

/** IEEE-754 big-endian with the sign bit flipped (all bits for negatives): memcmp order = numeric order. */
function encodeNumber(n: number, out: number[]): void {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleBE(n === 0 ? 0 : n); // -0 sorts as 0
  if (bytes[0] & 0x80) for (let i = 0; i < 8; i++) bytes[i] ^= 0xff;
  else bytes[0] ^= 0x80;
  out.push(...bytes);
}

/** UTF-8 bytes (MongoDB's string order), 0x00 escaped, ended by 0x00 0x00 so that a prefix sorts first. */
function encodeString(text: string, out: number[]): void {
  for (const byte of Buffer.from(text, 'utf8')) {
    out.push(byte);
    if (byte === 0) out.push(0xff);
  }
  out.push(0, 0);
}
