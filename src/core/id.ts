import { randomFillSync } from 'node:crypto';

/** Random bytes drawn a page at a time (one system call per 512 ids, not one per id). */
const pool = Buffer.allocUnsafe(4096);
let offset = pool.length;

/** Deployd's document ids: 16 lowercase hex characters, the 14th one of 8, 9, a, b. */
export function newId(): string {
  if (offset + 8 > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const start = offset;
  offset += 8;
  // The 14th hex character is the low half of the 7th byte: keep its two low bits, set the 8 bit.
  pool[start + 6] = (pool[start + 6] & 0xf3) | 0x08;
  return pool.toString('hex', start, start + 8);
}

/** Ids this server can have generated; anything else cannot exist, so it is a plain 404. */
export function isPlausibleId(id: string): boolean {
  return id.length > 0 && id.length <= 128;
}
