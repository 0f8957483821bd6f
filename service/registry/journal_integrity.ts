// The journal's integrity: a sibling marker (`<journal>.marker`) rewritten in place after each
// commit with the commit sequence, the revision and the number of registrations, and the checks at
// open (SQLite's quick_check, then the journal against its marker). A journal that holds less
// than its marker says it did, or fails the check, is refused with one line (JournalDamaged)
// naming the file, what was expected and how to recover: never a silently empty host.
import type { DatabaseSync } from "node:sqlite";
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";

/** What the marker file holds: the journal as of its last commit. */
export interface JournalMarker {
  /** The journal's commit sequence (meta.commits), one more per committed transaction. */
  commits: number;
  /** The registry's revision as of that commit. */
  revision: string;
  /** Registrations (rows) in the journal after that commit. */
  registrations: number;
}

/** The marker's path for a journal at `path`. */
export function markerPath(path: string): string {
  return `${path}.marker`;
}

/** The journal cannot be trusted: the agent refuses to start on it (see the README). */
export class JournalDamaged extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JournalDamaged";
  }
}

export function readMarker(path: string): JournalMarker | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return null;
    throw new JournalDamaged(`journal marker ${path} cannot be read: ${err}`);
  }
  // A power loss before the first record reached the disk leaves it empty (or NULs).
  if (text.replaceAll("\0", "").trim() === "") return null;
  try {
    const m = JSON.parse(text) as JournalMarker;
    if (
      Number.isSafeInteger(m.commits) && Number.isSafeInteger(m.registrations) &&
      typeof m.revision === "string" && /^\d+$/.test(m.revision)
    ) return m;
  } catch { /* reported below */ }
  throw new JournalDamaged(
    `journal marker ${path} is not valid (${JSON.stringify(text.slice(0, 80))}); ` +
      `if the journal is known good, remove the marker and start again`,
  );
}

/** One record's size: the marker is rewritten in place, always the same bytes of one page. */
const RECORD_BYTES = 128;

/**
 * The marker, held open and rewritten in place (one pwrite of a fixed-size record at offset 0,
 * within one disk sector) after each commit: a few µs, where write-then-rename cost a file
 * creation, a rename and their metadata per commit. Not fsync'd (that would double the cost of
 * a commit): after a power loss the marker holds the old record or the new one, so it may lag
 * the journal, which open accepts; a marker never reached the disk reads as none.
 */
export class MarkerFile {
  readonly #fd: number;

  private constructor(readonly path: string, fd: number) {
    this.#fd = fd;
  }

  static open(path: string): MarkerFile {
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    return new MarkerFile(path, fd);
  }

  /** The journal as of its last commit; throws (the disk is full, …) leaving the older record. */
  write(marker: JournalMarker): void {
    const json = JSON.stringify(marker);
    const record = new TextEncoder().encode(json.padEnd(RECORD_BYTES - 1, " ") + "\n");
    if (record.length !== RECORD_BYTES) throw new Error(`journal marker too long: ${json}`);
    writeSync(this.#fd, record, 0, RECORD_BYTES, 0);
    // An older agent's marker (written whole, of any length) leaves no tail behind the record.
    if (!this.#sized) {
      ftruncateSync(this.#fd, RECORD_BYTES);
      this.#sized = true;
    }
  }
  #sized = false;

  close(): void {
    closeSync(this.#fd);
  }
}

/** What a journal file holds, read before anything is written to it. */
export interface Found {
  commits: number;
  revision: bigint;
  registrations: number;
}

function tableExists(db: DatabaseSync, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
    undefined;
}

export function inspect(db: DatabaseSync, path: string): Found {
  const check = db.prepare("PRAGMA quick_check").all() as { quick_check: string }[];
  if (check.length !== 1 || check[0].quick_check !== "ok") {
    const problems = check.slice(0, 3).map((c) => c.quick_check).join("; ");
    throw new JournalDamaged(
      `journal ${path} is damaged (quick_check: ${problems}); restore it from a backup, ` +
        `or move it aside to start with an empty journal (every registration is then lost)`,
    );
  }
  const meta = new Map<string, string>();
  if (tableExists(db, "meta")) {
    for (const row of db.prepare("SELECT key, value FROM meta").all() as Record<string, string>[]) {
      meta.set(row.key, row.value);
    }
  }
  const registrations = tableExists(db, "ioeventfds")
    ? Number((db.prepare("SELECT COUNT(*) AS n FROM ioeventfds").get() as { n: number }).n)
    : 0;
  return {
    commits: Number(meta.get("commits") ?? "0"),
    revision: BigInt(meta.get("revision") ?? "0"),
    registrations,
  };
}

/** Refuses a journal that holds less than its marker says it did. */
export function verify(path: string, existed: boolean, found: Found, marker: JournalMarker): void {
  const behind = found.commits < marker.commits;
  const differs = found.commits === marker.commits && found.registrations !== marker.registrations;
  if (!behind && !differs) return;
  const what = !existed
    ? "is missing or empty"
    : `holds commit ${found.commits} with ${found.registrations} registrations`;
  throw new JournalDamaged(
    `journal ${path} ${what}, but its marker ${markerPath(path)} says commit ` +
      `${marker.commits} with ${marker.registrations} registrations (revision ${marker.revision}): ` +
      `the journal lost committed changes. Restore the journal (with its -wal) from a backup, ` +
      `or, to run with what it holds and lose the rest, remove the marker and start again`,
  );
}
