/**
 * The baselines' storage, shared so every baseline does exactly the same SQLite work: one table
 * (id, data JSON), WAL, synchronous NORMAL, expression indexes on the indexed properties — the
 * way deployd-ts's SQLite store keeps documents.
 */
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';

/** Opens (creating if needed) the todos table in `file`; returns the prepared statements. */
export function openTodos(file) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE IF NOT EXISTS todos (id TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL)');
  // The bench's todos config marks priority and status `index: true`; deployd-ts keeps an expression
  // index for each, so every insert here maintains the same two indexes.
  db.exec(`CREATE INDEX IF NOT EXISTS ix_todos_priority ON todos (json_extract(data, '$.priority'))`);
  db.exec(`CREATE INDEX IF NOT EXISTS ix_todos_status ON todos (json_extract(data, '$.status'))`);
  return {
    db,
    insert: db.prepare('INSERT INTO todos (id, data) VALUES (?, ?)'),
    // ORDER BY rowid: deployd-ts returns documents in insertion order, so both answer the same rows.
    select: db.prepare(`SELECT id, data FROM todos WHERE json_extract(data, '$.priority') >= ? ORDER BY rowid LIMIT ?`),
  };
}

/** The baselines' command line: `--db FILE [--port 0] [--host 127.0.0.1]` (exits 2 without --db). */
export function baselineArgs(name) {
  const { values } = parseArgs({
    options: {
      db: { type: 'string' },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
    },
  });
  if (!values.db) {
    process.stderr.write(`${name}: --db FILE is required\n`);
    process.exit(2);
  }
  return values;
}
