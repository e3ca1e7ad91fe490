/**
 * `$regex` with RE2's syntax and guarantees (re2js, a port of Google's RE2): matching takes time
 * linear in the input, whatever the pattern, so no query can stall the server (`^(a+)+$` against a
 * long "aaaa…!" answers at once instead of backtracking for seconds). The price is RE2's dialect:
 * no backreferences (`\1`) and no lookaround (`(?=…)`, `(?<!…)`); such patterns are a 400.
 * Flags: i (case-insensitive), m (multi-line ^ and $), s (. matches newlines); u is accepted and
 * changes nothing (RE2 always matches by code point). On MongoDB the store's own engine matches,
 * but the pattern is checked here first, so both stores take the same queries.
 */
import { RE2JS } from 're2js';
import { Errors } from '../errors.js';

export const MAX_REGEX_LENGTH = 512;

export interface SafeRegex {
  test(value: string): boolean;
}

/** Compiles a query's `$regex`, or throws a 400 that names the field. */
export function compileRegex(path: string, source: string, flags: string): SafeRegex {
  if (source.length > MAX_REGEX_LENGTH) throw Errors.badQuery(`$regex on "${path}" is longer than ${MAX_REGEX_LENGTH} characters`);
  let bits = 0;
  if (flags.includes('i')) bits |= RE2JS.CASE_INSENSITIVE;
  if (flags.includes('m')) bits |= RE2JS.MULTILINE;
  if (flags.includes('s')) bits |= RE2JS.DOTALL;
  try {
    return RE2JS.compile(source, bits);
  } catch (err) {
    throw Errors.badQuery(`$regex on "${path}" is not a valid regular expression (RE2 syntax: no backreferences or lookaround): ${(err as Error).message}`);
  }
}
