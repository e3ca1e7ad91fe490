/**
 * Keeps SQLite's WAL checkpoints off the request path. By default the connection that commits the
 * 1000th page of WAL copies the whole WAL back into the database file inside that commit: one
 * insert in ~430 then takes 1–14 ms instead of ~10 µs (measured, bench/PROFILE.md), which is the
 * p99.9 of every write. Here the server's connection never checkpoints (`wal_autocheckpoint = 0`);
 * a worker thread with its own connection runs a PASSIVE checkpoint when there were writes, at
 * most every `intervalMs` (started once the WAL first reaches THREAD_AFTER_WAL_BYTES: a server that
 * reads or writes little never pays its few MB). If that thread cannot run, the connection
 * checkpoints itself again, as SQLite does by default, so the WAL never grows without bound.
 */
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** SQLite's own default (`wal_autocheckpoint`), used again when the thread is gone. */
const AUTOCHECKPOINT_PAGES = 1000;

/** A checkpoint unanswered this long means the thread is stuck: the connection takes over. */
const STUCK_MS = 10_000;

/** Below this much WAL (a quarter of SQLite's default autocheckpoint) a checkpoint can wait. */
const THREAD_AFTER_WAL_BYTES = 1024 * 1024;

/** The thread's own heap is tiny: it only runs one prepared statement. */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8, codeRangeSizeMb: 1, stackSizeMb: 1 };

export class Checkpointer {
  private thread?: Worker;
  private readonly timer: NodeJS.Timeout;
  private readonly changes: Database.Statement;
  private seenChanges = 0;
  /** When the checkpoint in progress was asked for (0: none is). */
  private askedAt = 0;
  private closed = false;

  constructor(private readonly db: Database.Database, private readonly file: string, intervalMs = 200) {
    this.changes = db.prepare('SELECT total_changes() AS n');
    db.pragma('wal_autocheckpoint = 0');
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  /** Whether the thread has been started. */
  get threadStarted(): boolean {
    return this.thread !== undefined;
  }

  /** The thread, started on first use. */
  started(): Worker {
    if (this.thread) return this.thread;
    const thread = new Worker(new URL('./checkpoint-thread.js', import.meta.url), { workerData: { file: this.file }, resourceLimits: THREAD_LIMITS });
    this.thread = thread;
    thread.unref();
    thread.on('message', (message) => {
      if (message !== 'ready') this.askedAt = 0;
    });
    thread.on('error', () => this.fallBack());
    thread.on('exit', () => this.fallBack());
    return thread;
  }

  /** Asks the thread for a checkpoint when this connection wrote since the last one. */
  private tick(): void {
    if (this.closed || !this.db.open) return;
    if (this.askedAt > 0) {
      if (Date.now() - this.askedAt > STUCK_MS) void this.thread?.terminate(); // 'exit' falls back
      return;
    }
    const { n } = this.changes.get() as { n: number };
    if (n === this.seenChanges) return;
    this.seenChanges = n;
    if (!this.thread && walBytes(this.file) < THREAD_AFTER_WAL_BYTES) return;
    this.askedAt = Date.now();
    this.started().postMessage('checkpoint');
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
    await this.thread?.terminate();
  }
}

function walBytes(file: string): number {
  try {
    return fs.statSync(`${file}-wal`).size;
  } catch {
    return 0; // no WAL yet
  }
}
