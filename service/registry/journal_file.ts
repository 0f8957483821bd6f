// The journal's SQLite file: its schema and the migration of an older one, the connection's
// settings, and the file-level helpers (0600 files, the WAL's identity, ending a failed
// transaction). What is written, when and how it is checked lives in journal.ts and
// journal_integrity.ts.
import { DatabaseSync } from "node:sqlite";
import { chmodSync, closeSync, existsSync, openSync, statSync } from "node:fs";

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS ioeventfds (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  request_id TEXT NOT NULL,
  device TEXT NOT NULL,
  bar INTEGER NOT NULL,
  offset TEXT NOT NULL,
  width INTEGER NOT NULL,
  data TEXT NOT NULL,
  labels TEXT NOT NULL,
  pid INTEGER NOT NULL,
  fd INTEGER NOT NULL,
  start_time TEXT NOT NULL,
  eventfd_id TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  vfio_pid INTEGER,
  vfio_fd INTEGER,
  vfio_start_time TEXT,
  backend TEXT
);`;

const ADDED_COLUMNS: readonly { name: string; ddl: string }[] = [
  { name: "vfio_pid", ddl: "ALTER TABLE ioeventfds ADD COLUMN vfio_pid INTEGER" },
  { name: "vfio_fd", ddl: "ALTER TABLE ioeventfds ADD COLUMN vfio_fd INTEGER" },
  { name: "vfio_start_time", ddl: "ALTER TABLE ioeventfds ADD COLUMN vfio_start_time TEXT" },
  { name: "backend", ddl: "ALTER TABLE ioeventfds ADD COLUMN backend TEXT" },
];

const META_SCHEMA = `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`;

/**
 * A connection with the journal's settings. Exclusive, before the first access: the WAL index
 * lives in the agent's memory, not in a -shm file, so a journal opens on a full disk (SQLite
 * cannot create and map a -shm there), and no second agent can open the same journal meanwhile.
 */
export function connect(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA locking_mode = EXCLUSIVE");
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec("PRAGMA synchronous = FULL");
  return db;
}

/** The WAL file's inode, or null when there is none at `path`. */
export function walInode(path: string): number | null {
  const st = statSync(path, { throwIfNoEntry: false });
  return st ? st.ino : null;
}

/** Creates `path` 0600 if absent (never truncating it) and makes it 0600 if present. */
export function privateFile(path: string, create: boolean): void {
  if (create) closeSync(openSync(path, "a", 0o600));
  if (existsSync(path)) chmodSync(path, 0o600);
}

/** Brings a journal written by an older agent up to the current schema (idempotent). */
export function migrate(db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const have = new Set(
      (db.prepare("PRAGMA table_info(ioeventfds)").all() as { name: string }[]).map((c) => c.name),
    );
    for (const column of ADDED_COLUMNS) {
      if (!have.has(column.name)) db.exec(column.ddl);
    }
    db.exec(META_SCHEMA);
    db.exec("COMMIT");
  } catch (err) {
    rollback(db);
    throw err;
  }
}

/**
 * Ends a failed transaction, if SQLite has not already (a failed COMMIT rolls back by
 * itself): the caller rethrows the original error, never "cannot rollback".
 */
export function rollback(db: DatabaseSync): void {
  if (!db.isTransaction) return;
  try {
    db.exec("ROLLBACK");
  } catch { /* the original error is what matters */ }
}
