// The journal: every accepted registration, durably on disk before the API answers, so an
// agent restart (upgrade or crash) re-arms exactly what callers were told exists. SQLite in
// WAL mode with synchronous=FULL: a committed transaction survives kill -9 and power loss,
// and a torn write is rolled back on the next open. The WAL is guarded, not checkpointed per
// commit (that cost ~1 ms of fsyncs per commit): after each commit, before anyone is answered,
// the WAL's path is checked to still be the file SQLite writes; a WAL deleted or replaced while
// the agent runs is checkpointed into the main file from SQLite's open descriptor at once, and
// the connection reopened onto a new WAL, so nothing answered is lost. Once commits pause
// (CHECKPOINT_IDLE_MS) the WAL is checkpointed and emptied, so a WAL damaged later loses nothing
// either; one damaged while it holds commits is caught at open by the marker.
//
// Damage is never silent: the journal keeps, in the same transaction as the changes, its
// commit sequence and the registry's revision (table `meta`), and after each commit rewrites a
// sibling marker (`<journal>.marker`, one fixed-size record in place) with that sequence
// and the number of registrations. At open, a marker that says more than the journal holds
// (the journal missing, emptied, rolled back to an older copy, or a WAL that lost commits)
// or a failed `PRAGMA quick_check` refuses the open with one line (JournalDamaged) naming
// the file, what was expected and how to recover. The marker lags the journal by at most
// one commit after a crash, which is accepted (the journal is ahead, never behind).
//
// The files are the agent's alone: journal, -wal, -shm and marker are 0600 whatever the
// state directory's mode (owners and labels are in them).
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { type Backend, BACKENDS } from "./data_plane.ts";
import { connect, migrate, privateFile, rollback, SCHEMA, walInode } from "./journal_file.ts";
import {
  type Found,
  inspect,
  JournalDamaged,
  MarkerFile,
  markerPath,
  readMarker,
  verify,
} from "./journal_integrity.ts";

export { JournalDamaged, type JournalMarker, markerPath } from "./journal_integrity.ts";

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

/**
 * Columns added after the first schema, each with the ALTER TABLE that brings an older
 * journal up to date. All nullable: an old row has no VFIO device, which is what NULL says.
 * Added in order, once (guarded by PRAGMA table_info), in one transaction at open.
 */

/** A journaled backend; a row from before the column existed says nothing, and reads as user-mmap. */
function backendOf(value: string | null): Backend {
  return BACKENDS.find((b) => b === value) ?? "user-mmap";
}

/** The journal's own bookkeeping, written in the same transaction as the changes. */

/**
 * A short, bounded name for why SQLite failed (a metric label): SQLite's message for the
 * common causes (Deno's node:sqlite gives no error code, only the text).
 */
export function journalFailureCause(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  if (/disk is full|no space/i.test(text)) return "disk_full";
  if (/readonly|read-only/i.test(text)) return "read_only";
  if (/disk I\/O error/i.test(text)) return "io_error";
  if (/malformed|not a database|corrupt/i.test(text)) return "corrupt";
  if (/unable to open/i.test(text)) return "cannot_open";
  if (/locked|busy/i.test(text)) return "busy";
  return "other";
}

/** How long commits must pause before the WAL is checkpointed into the main file. */
const CHECKPOINT_IDLE_MS = 500;

/** What the journal tells the agent about itself (a WAL lost while running, …). */
export interface JournalObserver {
  walLost?(path: string, error: unknown): void;
}

export class Journal {
  #db: DatabaseSync;
  #insert!: StatementSync;
  #delete!: StatementSync;
  #setMeta!: StatementSync;
  #count!: StatementSync;
  #found: Found;
  #marker: MarkerFile | null = null;
  /** The WAL SQLite writes (its inode), once it exists; checked after every commit. */
  #walIno: number | null = null;
  #idleCheckpoint: ReturnType<typeof setTimeout> | null = null;
  observer: JournalObserver = {};

  private constructor(db: DatabaseSync, readonly path: string, found: Found) {
    this.#db = db;
    this.#found = found;
    this.#prepare();
  }

  #prepare(): void {
    const db = this.#db;
    this.#insert = db.prepare(
      `INSERT OR REPLACE INTO ioeventfds (id, owner, request_id, device, bar, offset, width,
       data, labels, pid, fd, start_time, eventfd_id, created_at_ms, vfio_pid, vfio_fd,
       vfio_start_time, backend)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#delete = db.prepare("DELETE FROM ioeventfds WHERE id = ?");
    this.#setMeta = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    this.#count = db.prepare("SELECT COUNT(*) AS n FROM ioeventfds");
  }

  /**
   * Opens (or creates) the journal at `path`. Throws JournalDamaged when it holds less than
   * its marker says, or fails SQLite's quick_check; nothing is written to it then.
   */
  static open(path: string): Journal {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const existed = existsSync(path) && statSync(path).size > 0;
    // 0600 before SQLite opens it: SQLite gives the -wal and -shm it creates the same mode.
    privateFile(path, true);
    privateFile(`${path}-wal`, false);
    privateFile(`${path}-shm`, false);
    const marker = readMarker(markerPath(path));
    const db = connect(path);
    let found: Found;
    try {
      found = inspect(db, path);
      if (marker) verify(path, existed, found, marker);
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(SCHEMA);
      migrate(db);
    } catch (err) {
      db.close();
      if (err instanceof JournalDamaged) throw err;
      if (journalFailureCause(err) === "corrupt") {
        throw new JournalDamaged(
          `journal ${path} is damaged (${(err as Error).message}); restore it from a backup, ` +
            `or move it aside to start with an empty journal (every registration is then lost)`,
        );
      }
      throw err;
    }
    privateFile(`${path}-wal`, false);
    privateFile(`${path}-shm`, false);
    const journal = new Journal(db, path, found);
    // A journal from before the marker, or one a crash left ahead of it: mark it now, so that
    // losing it before the next commit is noticed too (best effort: the disk may be full).
    if (!marker || marker.commits !== found.commits) journal.#mark();
    return journal;
  }

  /** The registry's revision as of the last commit (0 for a new journal). */
  revision(): bigint {
    return this.#found.revision;
  }

  /** Committed transactions so far (the marker's sequence). */
  get commits(): number {
    return this.#found.commits;
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

  /**
   * One atomic, durable transaction: all `ops`, in order, and the registry's `revision`
   * (never lowered), are on disk when this returns, and checkpointed into the main file.
   * On failure nothing of it is; the SQLite error is thrown as it came. With nothing to
   * write, nothing is, unless `force` (a probe: does the journal take writes again?).
   */
  apply(ops: JournalOp[], revision: bigint = this.#found.revision, force = false): void {
    const next = revision > this.#found.revision ? revision : this.#found.revision;
    if (ops.length === 0 && next === this.#found.revision && !force) return;
    const commits = this.#found.commits + 1;
    let registrations: number;
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
      this.#setMeta.run("commits", String(commits));
      this.#setMeta.run("revision", next.toString());
      registrations = Number((this.#count.get() as { n: number }).n);
      this.#db.exec("COMMIT");
    } catch (err) {
      rollback(this.#db);
      throw err;
    }
    this.#found = { commits, revision: next, registrations };
    this.#guardWal();
    this.#mark();
    this.#scheduleCheckpoint();
  }

  /**
   * The WAL that holds the commits just made must be the file at its path. If it was deleted
   * or replaced, SQLite's descriptor still reaches it: checkpoint from there into the main file
   * (which fsyncs it), then reopen onto a new WAL. A failure throws, as a failed commit does:
   * the commit is then not answered as durable.
   */
  #guardWal(): void {
    const wal = `${this.path}-wal`;
    const ino = walInode(wal);
    if (ino !== null && (this.#walIno === null || ino === this.#walIno)) {
      this.#walIno = ino;
      return;
    }
    const lost = new Error(ino === null ? `${wal} was deleted` : `${wal} was replaced`);
    this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    this.#db.close();
    if (ino !== null) rmSync(wal, { force: true }); // a file that is not SQLite's
    this.#db = connect(this.path);
    this.#db.exec("PRAGMA journal_mode = WAL");
    this.#prepare();
    this.#walIno = null;
    this.observer.walLost?.(wal, lost);
  }

  /** Once commits pause, the WAL goes into the main file and is emptied. */
  #scheduleCheckpoint(): void {
    if (this.#idleCheckpoint !== null) clearTimeout(this.#idleCheckpoint);
    this.#idleCheckpoint = setTimeout(() => {
      this.#idleCheckpoint = null;
      this.checkpoint();
    }, CHECKPOINT_IDLE_MS);
    Deno.unrefTimer(this.#idleCheckpoint);
  }

  /** Folds the WAL into the main file now; a failure loses nothing (the WAL keeps it). */
  checkpoint(): void {
    if (!this.#db.isOpen) return;
    try {
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch { /* the WAL still holds every commit; the next pause retries */ }
  }

  /** Writes the marker for the journal as it is now; a failure leaves the older one. */
  #mark(): void {
    try {
      this.#marker ??= MarkerFile.open(markerPath(this.path));
      this.#marker.write({
        commits: this.#found.commits,
        revision: this.#found.revision.toString(),
        registrations: this.#found.registrations,
      });
    } catch {
      // The marker then lags the journal, which open accepts (the disk may be full).
    }
  }

  close(): void {
    if (this.#idleCheckpoint !== null) clearTimeout(this.#idleCheckpoint);
    this.#idleCheckpoint = null;
    this.#marker?.close();
    this.#marker = null;
    if (this.#db.isOpen) this.#db.close();
  }

  /**
   * Opens the journal again after `close` (a hand-over to a successor that did not happen:
   * service/upgrade/), with the same checks as `open`.
   */
  reopen(): void {
    if (this.#db.isOpen) return;
    const j = Journal.open(this.path);
    this.#db = j.#db;
    this.#found = j.#found;
    this.#marker = j.#marker;
    this.#walIno = null;
    this.#prepare();
  }
}
