/**
 * Changes to the app folder that are all-or-nothing: a reader (the resources watcher, another
 * instance sharing the folder) sees the old file or the new one, never half of one.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Writes `text` to a temporary file beside `file`, flushes it, then renames it over `file`. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  // A dot name: the registry ignores it, and it stays in the same folder (rename is atomic there).
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.promises.open(temp, 'wx', 0o644);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.promises.rename(temp, file);
  } catch (err) {
    await fs.promises.rm(temp, { force: true });
    throw err;
  }
}

/** The file's text, or undefined when there is none. */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Puts back what `readIfExists` returned before a change: the old text, or no file. */
export async function restore(file: string, previous: string | undefined): Promise<void> {
  if (previous === undefined) await fs.promises.rm(file, { force: true });
  else await writeFileAtomic(file, previous);
}
