import { randomBytes } from 'node:crypto';

/** Deployd's document ids: 16 lowercase hex characters, the 14th one of 8, 9, a, b. */
export function newId(): string {
  const chars = randomBytes(8).toString('hex').split('');
  chars[13] = ((parseInt(chars[13], 16) & 3) | 8).toString(16);
  return chars.join('');
}

/** Ids this server can have generated; anything else cannot exist, so it is a plain 404. */
export function isPlausibleId(id: string): boolean {
  return id.length > 0 && id.length <= 128;
}
