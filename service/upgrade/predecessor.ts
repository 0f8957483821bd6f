// The running agent's side of a hand-over (protocol.ts): it listens on its upgrade socket
// and, when a successor asks, freezes its mutations, passes the descriptors the successor
// cannot take itself (handed-over eventfds and VFIO devices, kernel-served entries' eventfds
// and devices) and keeps writing until the successor says it is armed. Only then does it
// stop writing (release) and leave; a successor that goes away before that leaves it
// serving as before.
import type { Logger } from "../log.ts";
import {
  MAX_FDS_PER_MESSAGE,
  type SuccessionConnection,
  SuccessionListener,
} from "../native/succession.ts";
import {
  encodeMessage,
  type InheritedKind,
  parseMessage,
  ProtocolError,
  type ReleaseReport,
  type SuccessionMessage,
} from "./protocol.ts";

/** A registration whose descriptors the successor needs, and how to duplicate them. */
export interface PassedRegistration {
  id: string;
  /** Duplicates (this process's) to pass: closed here once sent. */
  fds(): { eventfd: number | null; vfio: number | null };
}

/** What the predecessor side needs of the agent. */
export interface PredecessorHost {
  /** Refuse new mutations; resolves once every change made so far is on disk. */
  freeze(): Promise<bigint>;
  /** The hand-over did not happen: accept mutations again. */
  resume(): void;
  /** Registrations whose descriptors must be passed. */
  toPass(): PassedRegistration[];
  /** Stop writing: disarm (kernel entries left assigned); the totals. */
  release(): ReleaseReport;
  /** Told once released: drain and exit. */
  handedOver(): void;
  closeFd(fd: number): void;
}

/** How long each step of a successor may take before the hand-over is abandoned. */
const STEP_MS = { hello: 5_000, armed: 300_000 };

export class UpgradeListener {
  #closed = false;
  #loop: Promise<void>;

  private constructor(
    private readonly listener: SuccessionListener,
    private readonly host: PredecessorHost,
    private readonly log: Logger,
  ) {
    this.#loop = this.#serve();
  }

  /** Listens at `path` (renamed over a predecessor's listener, if any). */
  static open(path: string, host: PredecessorHost, log: Logger): UpgradeListener {
    return new UpgradeListener(SuccessionListener.listen(path), host, log);
  }

  async #serve(): Promise<void> {
    while (!this.#closed) {
      const conn = await this.listener.accept(250);
      if (conn === null) continue;
      if (this.#closed) {
        conn.close();
        break;
      }
      try {
        const done = await this.#handOver(conn);
        if (done) return; // released: this agent leaves
      } catch (err) {
        this.log.log("warn", "hand-over to a successor failed; serving on", {
          error: err instanceof Error ? err.message : String(err),
        });
      } finally {
        conn.close();
      }
    }
  }

  /** One successor's session; true once released (this agent must leave). */
  async #handOver(conn: SuccessionConnection): Promise<boolean> {
    const hello = await conn.recv(STEP_MS.hello);
    if (hello === null) return false;
    for (const fd of hello.fds) this.host.closeFd(fd);
    const m = parseMessage(hello.text);
    if (m.op !== "take-over") throw new ProtocolError(`expected take-over, got ${m.op}`);
    this.log.log("info", "a successor asks to take over: freezing mutations", {
      successor_pid: m.pid,
      successor_version: m.version,
    });
    const revision = await this.host.freeze();
    let released = false;
    try {
      const passed = this.host.toPass();
      const items: { id: string; kind: InheritedKind; fd: number }[] = [];
      for (const p of passed) {
        const fds = p.fds();
        if (fds.eventfd !== null) items.push({ id: p.id, kind: "eventfd", fd: fds.eventfd });
        if (fds.vfio !== null) items.push({ id: p.id, kind: "vfio", fd: fds.vfio });
      }
      const send = (msg: SuccessionMessage, fds: number[] = []) =>
        conn.send(encodeMessage(msg), fds);
      try {
        send({ op: "frozen", revision: String(revision), count: items.length, pid: Deno.pid });
        for (let i = 0; i < items.length; i += MAX_FDS_PER_MESSAGE) {
          const chunk = items.slice(i, i + MAX_FDS_PER_MESSAGE);
          send(
            { op: "fds", items: chunk.map(({ id, kind }) => ({ id, kind })) },
            chunk.map((c) => c.fd),
          );
        }
        send({ op: "sent" });
      } finally {
        for (const it of items) this.host.closeFd(it.fd); // the successor holds its own now
      }
      // Both agents are armed from the successor's `armed` on; until then only this one
      // is sure to be. Exactly one non-blocking read consumes each wake-up's count.
      const armed = await conn.recv(STEP_MS.armed);
      if (armed === null) throw new ProtocolError("the successor went away before it was armed");
      for (const fd of armed.fds) this.host.closeFd(fd);
      const a = parseMessage(armed.text);
      if (a.op !== "armed") throw new ProtocolError(`expected armed, got ${a.op}`);
      const report = this.host.release();
      released = true;
      send({
        op: "released",
        triggers: String(report.triggers),
        signals: String(report.signals),
        kernelEntriesLeft: report.kernelEntriesLeft,
      });
      this.log.log("info", "handed over to the successor: writing no more", {
        successor_pid: m.pid,
        passed_fds: items.length,
        triggers: String(report.triggers),
        signals: String(report.signals),
        kernel_entries_left: report.kernelEntriesLeft,
      });
      this.host.handedOver();
      return true;
    } finally {
      if (!released) this.host.resume();
    }
  }

  /** Stops listening (the socket path stays if a successor's listener replaced it). */
  async close(): Promise<void> {
    this.#closed = true;
    // The accept in flight holds the descriptor's number: close only once it has returned.
    await this.#loop.catch(() => {});
    this.listener.close();
  }
}
