/**
 * Document ids (core/id.ts): Deployd's format, unique, and random across the pool they are drawn
 * from (ids are taken 8 random bytes at a time from a page refilled by the system's CSPRNG).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newId } from '../src/core/id.js';

const ID = /^[0-9a-f]{13}[89ab][0-9a-f]{2}$/;

describe('newId', () => {
  it('gives 16 lowercase hex characters with the 14th in [89ab], all different, across many pool refills', () => {
    const seen = new Set<string>();
    const variants = new Set<string>();
    const firsts = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const id = newId();
      assert.match(id, ID);
      seen.add(id);
      variants.add(id[13]);
      firsts.set(id[0], (firsts.get(id[0]) ?? 0) + 1);
    }
    assert.equal(seen.size, 20_000);
    assert.deepEqual([...variants].sort(), ['8', '9', 'a', 'b']);
    // Each of the 16 first characters turns up about 1,250 times; a fixed or repeated pool would not.
    assert.equal(firsts.size, 16);
    for (const [char, count] of firsts) assert.ok(count > 900 && count < 1600, `first character ${char}: ${count} times`);
  });
});
