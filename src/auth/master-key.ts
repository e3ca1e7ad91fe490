/**
 * The master key makes a request root. It is generated on first start into
 * `.deployd/security.json` (mode 0600) unless `MASTER_KEY` provides it.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface MasterKey {
  /** Where the key lives (`env:MASTER_KEY` or the file path). */
  source: string;
  /** True only when this start created the key (the CLI prints it once). */
  generated: boolean;
  matches(candidate: string): boolean;
  /** The key itself, for `deployd showkey`; never logged. */
  reveal(): string;
}

export function securityFile(appDir: string): string {
  return path.join(appDir, '.deployd', 'security.json');
}

export function generateKey(): string {
  return randomBytes(48).toString('hex');
}

export function writeKeyFile(appDir: string, key: string): string {
  const file = securityFile(appDir);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify({ masterKey: key }, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

export function readKeyFile(appDir: string): string | undefined {
  const file = securityFile(appDir);
  if (!fs.existsSync(file)) return undefined;
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { masterKey?: unknown };
  if (typeof parsed.masterKey !== 'string' || parsed.masterKey.length < 16) {
    throw new Error(`${file} has no usable "masterKey"`);
  }
  return parsed.masterKey;
}

export function loadMasterKey(appDir: string, fromEnv: string | undefined): MasterKey {
  if (fromEnv) return makeKey(fromEnv, 'env:MASTER_KEY', false);
  const existing = readKeyFile(appDir);
  if (existing) return makeKey(existing, securityFile(appDir), false);
  const key = generateKey();
  return makeKey(key, writeKeyFile(appDir, key), true);
}

function makeKey(key: string, source: string, generated: boolean): MasterKey {
  const digest = sha256(key);
  return {
    source,
    generated,
    // Compare digests so the comparison is constant-time whatever the candidate's length.
    matches: (candidate) => timingSafeEqual(sha256(candidate), digest),
    reveal: () => key,
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
