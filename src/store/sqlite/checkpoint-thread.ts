/**
 * The thread behind ./checkpointer.ts: its own connection to the database file, copying the WAL
 * into the file when asked (a PASSIVE checkpoint never waits on, nor blocks, the server's
 * connection) and answering with what SQLite reports.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database((workerData as { file: string }).file, { fileMustExist: true });
db.pragma('busy_timeout = 0');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');

parentPort!.on('message', () => {
  let row: { busy: number; log: number; checkpointed: number } | undefined;
  try {
    row = checkpoint.get() as typeof row;
  } catch {
    row = undefined; // another connection holds the checkpoint lock: the next tick tries again
  }
  parentPort!.postMessage(row ?? { busy: 1, log: -1, checkpointed: -1 });
});
parentPort!.postMessage('ready');
