// The journal: every accepted registration, durably on disk before the API answers, so an
// agent restart (upgrade or crash) re-arms exactly what callers were told exists. SQLite in
// WAL mode with synchronous=FULL: a committed transaction survives kill -9 and power loss,
// and a torn write is rolled back on the next open.
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type Backend, BACKENDS } from "./data_plane.ts";

/** What is needed to rebuild a registration, and to refuse a reused PID or fd. */
export interface JournalRecord {
  id: string;
  owner: string;
  requestId: string;
  device: string;
  bar: number;
  offset: bigint;
  width: number;
  data: bigint;
  labels: Record<string, string>;
  pid: number;
  fd: number;
  startTime: bigint;
  eventfdId: bigint;
  createdAtMs: number;
  /** Who performed the write when it was last armed (an orphan reports it after a restart). */
  backend: Backend;
  /**
   * The VMM's VFIO device fd (`spec.vfio_device`) and the start time of that process, which
   * replay requires again (a reused PID is refused); null when the spec has none.
   */
  vfio: { pid: number; fd: number; startTime: bigint } | null;
}

/** One change of a transaction: a registration written (or rewritten), or removed. */
export type JournalOp = { put: JournalRecord } | { remove: string };

interface Row {
  id: string;
  owner: string;
  request_id: string;
  device: string;
  bar: number;
  offset: string;
  width: number;
  data: string;
  labels: string;
  pid: number;
  fd: number;
  start_time: string;
  eventfd_id: string;
  created_at_ms: number;
  vfio_pid: number | null;
  vfio_fd: number | null;
  vfio_start_time: string | null;
  backend: string | null;
}

const SCHEMA = `
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

/**
 * Columns added after the first schema, each with the ALTER TABLE that brings an older
 * journal up to date. All nullable: an old row has no VFIO device, which is what NULL says.
 * Added in order, once (guarded by PRAGMA table_info), in one transaction at open.
 */
const ADDED_COLUMNS: readonly { name: string; ddl: string }[] = [
  { name: "vfio_pid", ddl: "ALTER TABLE ioeventfds ADD COLUMN vfio_pid INTEGER" },
  { name: "vfio_fd", ddl: "ALTER TABLE ioeventfds ADD COLUMN vfio_fd INTEGER" },
  { name: "vfio_start_time", ddl: "ALTER TABLE ioeventfds ADD COLUMN vfio_start_time TEXT" },
  { name: "backend", ddl: "ALTER TABLE ioeventfds ADD COLUMN backend TEXT" },
];

/** A journaled backend; a row from before the column existed says nothing, and reads as user-mmap. */
function backendOf(value: string | null): Backend {
  return BACKENDS.find((b) => b === value) ?? "user-mmap";
}

/** Brings a journal written by an older agent up to the current schema (idempotent). */
function migrate(db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const have = new Set(
      (db.prepare("PRAGMA table_info(ioeventfds)").all() as { name: string }[]).map((c) => c.name),
    );
    for (const column of ADDED_COLUMNS) {
      if (!have.has(column.name)) db.exec(column.ddl);
    }
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}

export class Journal {
  #db: DatabaseSync;
  #insert: StatementSync;
  #delete: StatementSync;

  private constructor(db: DatabaseSync) {
    this.#db = db;
    this.#insert = db.prepare(
      `INSERT OR REPLACE INTO ioeventfds (id, owner, request_id, device, bar, offset, width,
       data, labels, pid, fd, start_time, eventfd_id, created_at_ms, vfio_pid, vfio_fd,
       vfio_start_time, backend)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#delete = db.prepare("DELETE FROM ioeventfds WHERE id = ?");
  }

  static open(path: string): Journal {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec(SCHEMA);
    migrate(db);
    return new Journal(db);
  }

  all(): JournalRecord[] {
    const rows = this.#db.prepare("SELECT * FROM ioeventfds ORDER BY id").all() as unknown as Row[];
    return rows.map((r) => ({
      id: r.id,
      owner: r.owner,
      requestId: r.request_id,
      device: r.device,
      bar: r.bar,
      offset: BigInt(r.offset),
      width: r.width,
      data: BigInt(r.data),
      labels: JSON.parse(r.labels) as Record<string, string>,
      pid: r.pid,
      fd: r.fd,
      startTime: BigInt(r.start_time),
      eventfdId: BigInt(r.eventfd_id),
      createdAtMs: r.created_at_ms,
      backend: backendOf(r.backend),
      vfio: r.vfio_pid === null || r.vfio_fd === null ? null : {
        pid: r.vfio_pid,
        fd: r.vfio_fd,
        startTime: BigInt(r.vfio_start_time ?? "0"),
      },
    }));
  }

  /** One atomic, durable transaction: all `ops`, in order, are on disk when this returns. */
  apply(ops: JournalOp[]): void {
    if (ops.length === 0) return;
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const op of ops) {
        if ("remove" in op) {
          this.#delete.run(op.remove);
          continue;
        }
        const r = op.put;
        this.#insert.run(
          r.id,
          r.owner,
          r.requestId,
          r.device,
          r.bar,
          r.offset.toString(),
          r.width,
          r.data.toString(),
          JSON.stringify(r.labels),
          r.pid,
          r.fd,
          r.startTime.toString(),
          r.eventfdId.toString(),
          r.createdAtMs,
          r.vfio?.pid ?? null,
          r.vfio?.fd ?? null,
          r.vfio?.startTime.toString() ?? null,
          r.backend,
        );
      }
      this.#db.exec("COMMIT");
    } catch (err) {
      this.#db.exec("ROLLBACK");
      throw err;
    }
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}
