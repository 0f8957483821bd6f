// The successor's side of a hand-over (protocol.ts): before it opens the journal, a new
// agent asks the one running on the same state directory to freeze, receives the
// descriptors it cannot take itself, arms everything from the journal while the running
// agent still writes, and only then tells it to stop writing.
import type { Logger } from "../log.ts";
import { NativeError } from "../native/errno.ts";
import { closeReceived, SuccessionConnection } from "../native/succession.ts";
import { VERSION } from "../version.ts";
import {
  encodeMessage,
  type InheritedFds,
  parseMessage,
  ProtocolError,
  type ReleaseReport,
} from "./protocol.ts";

/** "auto": take over when an agent runs there; "require": fail when none does; "never". */
export type TakeOverMode = "auto" | "require" | "never";
export const TAKE_OVER_MODES: readonly TakeOverMode[] = ["auto", "require", "never"];

/** How long the predecessor may take to freeze (its in-flight commits) and to release. */
const STEP_MS = { frozen: 30_000, fds: 10_000, released: 30_000 };

/** Whether process `pid` still exists (signal 0). */
function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT"); // harmless to a running agent; fails once it is gone
    return true;
  } catch {
    return false;
  }
}

/** No agent listens there: a plain start. */
function nobodyThere(err: unknown): boolean {
  return err instanceof NativeError && (err.is("ENOENT") || err.is("ECONNREFUSED"));
}

export class Inheritance {
  readonly #fds = new Map<string, InheritedFds>();

  private constructor(
    private readonly conn: SuccessionConnection,
    /** The predecessor's journal revision when it froze. */
    readonly revision: bigint,
    /** The predecessor's pid (whether it is still alive, if it stops answering). */
    readonly pid: number,
  ) {}

  /**
   * Asks the agent listening at `path` to hand over; null when none runs there (mode
   * "auto"). Resolves once the predecessor is frozen and every descriptor has arrived.
   */
  static async takeOver(
    path: string,
    mode: TakeOverMode,
    log: Logger,
  ): Promise<Inheritance | null> {
    if (mode === "never") return null;
    let conn: SuccessionConnection;
    try {
      conn = SuccessionConnection.connect(path, 5_000);
    } catch (err) {
      if (mode === "auto" && nobodyThere(err)) return null;
      throw new Error(`no running agent to take over from at ${path}: ${err}`, { cause: err });
    }
    try {
      conn.send(encodeMessage({ op: "take-over", pid: Deno.pid, version: VERSION }));
      const frozen = await Inheritance.#next(conn, STEP_MS.frozen);
      if (frozen.op === "refused") throw new ProtocolError(`refused: ${frozen.reason}`);
      if (frozen.op !== "frozen") throw new ProtocolError(`expected frozen, got ${frozen.op}`);
      const inheritance = new Inheritance(conn, BigInt(frozen.revision), frozen.pid);
      let received = 0;
      for (;;) {
        const msg = await conn.recv(STEP_MS.fds);
        if (msg === null) throw new ProtocolError("the predecessor went away");
        const m = parseMessage(msg.text);
        if (m.op === "sent") {
          for (const fd of msg.fds) closeReceived(fd);
          break;
        }
        if (m.op !== "fds" || m.items.length !== msg.fds.length) {
          for (const fd of msg.fds) closeReceived(fd);
          inheritance.close();
          throw new ProtocolError(`expected fds with their descriptors, got ${m.op}`);
        }
        m.items.forEach((item, i) => {
          const got = inheritance.#fds.get(item.id) ?? { eventfd: null, vfio: null };
          const earlier = got[item.kind];
          if (earlier !== null) closeReceived(earlier);
          got[item.kind] = msg.fds[i];
          inheritance.#fds.set(item.id, got);
        });
        received += msg.fds.length;
      }
      if (received !== frozen.count) {
        inheritance.close();
        throw new ProtocolError(`announced ${frozen.count} descriptors, ${received} arrived`);
      }
      log.log("info", "taking over from the running agent: it is frozen", {
        revision: frozen.revision,
        inherited_fds: received,
      });
      return inheritance;
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  static async #next(conn: SuccessionConnection, timeoutMs: number) {
    const msg = await conn.recv(timeoutMs);
    if (msg === null) throw new ProtocolError("the predecessor went away");
    for (const fd of msg.fds) closeReceived(fd);
    return parseMessage(msg.text);
  }

  /** The descriptors passed for registration `id` (the caller owns them from here on). */
  take(id: string): InheritedFds | null {
    const fds = this.#fds.get(id) ?? null;
    this.#fds.delete(id);
    return fds;
  }

  /**
   * Everything is armed here: the predecessor stops writing. Resolves with its report once
   * it has (it then drains its calls and exits), or null when it died meanwhile.
   */
  async armed(): Promise<ReleaseReport | null> {
    this.#closeUnused();
    try {
      this.conn.send(encodeMessage({ op: "armed" }));
      const m = await Inheritance.#next(this.conn, STEP_MS.released);
      if (m.op !== "released") throw new ProtocolError(`expected released, got ${m.op}`);
      return {
        triggers: BigInt(m.triggers),
        signals: BigInt(m.signals),
        kernelEntriesLeft: m.kernelEntriesLeft,
      };
    } catch (err) {
      // A predecessor that died meanwhile writes no more either: this agent serves alone
      // (null). One still alive but not answering: this start fails (and it resumes).
      if (!alive(this.pid)) return null;
      throw err;
    } finally {
      this.conn.close();
    }
  }

  #closeUnused(): void {
    for (const fds of this.#fds.values()) {
      if (fds.eventfd !== null) closeReceived(fds.eventfd);
      if (fds.vfio !== null) closeReceived(fds.vfio);
    }
    this.#fds.clear();
  }

  /** Abandons the hand-over: the predecessor resumes (it sees the connection close). */
  close(): void {
    this.#closeUnused();
    this.conn.close();
  }
}
