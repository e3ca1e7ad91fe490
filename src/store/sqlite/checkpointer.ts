/**
 * Keeps SQLite's WAL checkpoints off the request path. By default the connection that commits the
 * 1000th page of WAL copies the whole WAL back into the database file inside that commit: one
 * insert in ~430 then takes 1–14 ms instead of ~10 µs (measured, bench/PROFILE.md), which is the
 * p99.9 of every write. Here the server's connection never checkpoints (`wal_autocheckpoint = 0`);
 * a worker thread with its own connection runs a PASSIVE checkpoint when there were writes, at
 * most every `intervalMs`. If that thread cannot run, the connection checkpoints itself again, as
 * SQLite does by default, so the WAL never grows without bound.
 */
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** SQLite's own default (`wal_autocheckpoint`), used again when the thread is gone. */
const AUTOCHECKPOINT_PAGES = 1000;

/** A checkpoint unanswered this long means the thread is stuck: the connection takes over. */
const STUCK_MS = 10_000;

export class Checkpointer {
  readonly thread: Worker;
  private readonly timer: NodeJS.Timeout;
  private readonly changes: Database.Statement;
  private seenChanges = 0;
  /** When the checkpoint in progress was asked for (0: none is). */
  private askedAt = 0;
  private closed = false;

  constructor(private readonly db: Database.Database, file: string, intervalMs = 200) {
    this.changes = db.prepare('SELECT total_changes() AS n');
    db.pragma('wal_autocheckpoint = 0');
    this.thread = new Worker(new URL('./checkpoint-thread.js', import.meta.url), { workerData: { file } });
    this.thread.unref();
    this.thread.on('message', (message) => {
      if (message !== 'ready') this.askedAt = 0;
    });
    this.thread.on('error', () => this.fallBack());
    this.thread.on('exit', () => this.fallBack());
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  /** Asks the thread for a checkpoint when this connection wrote since the last one. */
  private tick(): void {
    if (this.closed || !this.db.open) return;
    if (this.askedAt > 0) {
      if (Date.now() - this.askedAt > STUCK_MS) void this.thread.terminate(); // 'exit' falls back
      return;
    }
    const { n } = this.changes.get() as { n: number };
    if (n === this.seenChanges) return;
    this.seenChanges = n;
    this.askedAt = Date.now();
    this.thread.postMessage('checkpoint');
  }

  /** The thread is gone: the connection checkpoints by itself again. */
  private fallBack(): void {
    clearInterval(this.timer);
    if (this.closed || !this.db.open) return;
    this.db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.thread.terminate();
  }
}
