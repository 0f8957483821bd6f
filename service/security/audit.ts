// The audit log: one JSON line per mutation attempt — who, what, result — appended to a
// file only the agent's user can read. Written synchronously when the call ends, so the
// line exists before the caller sees the answer; reopened on SIGHUP for log rotation.
import { closeSync, fchmodSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";

export interface AuditRecord {
  ts: string;
  /** The identity's name ("local", "CN=…") and the policy entry that granted the call. */
  identity: string;
  transport: string;
  grant: string | null;
  role: string | null;
  peer: string;
  method: string;
  /** The request, reduced to what says what was asked (bounded, see summarize). */
  request: unknown;
  /** "OK" or the gRPC code name, with the rejection reason when there is one. */
  result: string;
  reason?: string;
  message?: string;
  /** Ioeventfds the call created or removed. */
  added?: string[];
  removed?: string[];
}

const MAX_STRING = 256;
const MAX_ITEMS = 32;

/** A bounded copy of a request: long strings cut, long lists cut, depth limited. */
export function summarize(value: unknown, depth = 0): unknown {
  if (typeof value === "string") {
    return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…(${value.length})` : value;
  }
  if (typeof value === "bigint") return value.toString();
  if (value === null || typeof value !== "object") return value;
  if (depth >= 4) return "…";
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => summarize(v, depth + 1));
    if (value.length > MAX_ITEMS) items.push(`…(${value.length} items)`);
    return items;
  }
  const out: Record<string, unknown> = {};
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [k, v] of entries.slice(0, MAX_ITEMS)) {
    out[summarize(k) as string] = summarize(v, depth + 1);
  }
  return out;
}

export class AuditLog {
  #fd: number;
  /** Lines that could not be written (disk full, file removed): counted, and logged once each. */
  failures = 0;

  private constructor(readonly path: string) {
    this.#fd = AuditLog.#open(path);
  }

  static #open(path: string): number {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const fd = openSync(path, "a", 0o600);
    fchmodSync(fd, 0o600); // the mode only applies on creation; an older file may be wider
    return fd;
  }

  static open(path: string): AuditLog {
    return new AuditLog(path);
  }

  write(record: AuditRecord): void {
    const line = JSON.stringify(record) + "\n";
    try {
      writeSync(this.#fd, line);
    } catch (err) {
      this.failures++;
      throw err;
    }
  }

  /** After a rotation: later lines go to a new file at the same path. */
  reopen(): void {
    const fd = AuditLog.#open(this.path);
    const old = this.#fd;
    this.#fd = fd;
    closeSync(old);
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}
