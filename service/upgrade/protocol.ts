// The succession protocol between a running agent (the predecessor) and the agent that
// takes over from it (the successor), on the predecessor's upgrade socket
// (<stateDir>/run/upgrade.sock; native/src/succession/ carries the messages and their
// descriptors). One JSON object per message:
//
//   successor → predecessor  take-over {pid, version}
//   predecessor → successor  frozen {revision, count, pid}: mutations refused (SHUTTING_DOWN,
//                            UNAVAILABLE: retry on the successor), every commit on disk
//                            (the journal is the successor's to write from here on)
//                            fds {items} × ⌈count / 8⌉, each with up to 8 descriptors
//                            sent
//   successor → predecessor  armed: every journaled registration armed here too
//   predecessor → successor  released {triggers, signals, kernelEntriesLeft}: it writes no
//                            more (its registrations disarmed, its kernel entries left to
//                            the successor); it drains its calls and exits
//   either way               refused {reason}: the hand-over does not happen
//
// A successor that goes away before `armed` leaves the predecessor serving as before; a
// predecessor that dies after `frozen` leaves the successor serving alone once armed.

/** What a descriptor passed for a registration is. */
export type InheritedKind = "eventfd" | "vfio";

/** The descriptors a registration inherits (this process's, until armed or closed). */
export interface InheritedFds {
  eventfd: number | null;
  vfio: number | null;
}

/** What the predecessor reports once it writes no more. */
export interface ReleaseReport {
  /** Writes its registrations performed (all of them, over its life). */
  triggers: bigint;
  /** Signals those writes consumed. */
  signals: bigint;
  /** Kernel-served entries it left assigned for the successor. */
  kernelEntriesLeft: number;
}

export type SuccessionMessage =
  | { op: "take-over"; pid: number; version: string }
  | { op: "frozen"; revision: string; count: number; pid: number }
  | { op: "fds"; items: { id: string; kind: InheritedKind }[] }
  | { op: "sent" }
  | { op: "armed" }
  | { op: "released"; triggers: string; signals: string; kernelEntriesLeft: number }
  | { op: "refused"; reason: string };

export class ProtocolError extends Error {}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const str = (o: Record<string, unknown>, k: string): string => {
  const v = o[k];
  if (typeof v !== "string") throw new ProtocolError(`${String(o.op)}: ${k} is not a string`);
  return v;
};

const int = (o: Record<string, unknown>, k: string): number => {
  const v = o[k];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new ProtocolError(`${String(o.op)}: ${k} is not a count`);
  }
  return v;
};

/** Parses one message; ProtocolError when it is not one of the protocol's. */
export function parseMessage(text: string): SuccessionMessage {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new ProtocolError("not JSON");
  }
  if (!isRecord(o)) throw new ProtocolError("not an object");
  switch (o.op) {
    case "take-over":
      return { op: "take-over", pid: int(o, "pid"), version: str(o, "version") };
    case "frozen":
      return {
        op: "frozen",
        revision: str(o, "revision"),
        count: int(o, "count"),
        pid: int(o, "pid"),
      };
    case "fds": {
      const items = o.items;
      if (!Array.isArray(items)) throw new ProtocolError("fds: items is not a list");
      return {
        op: "fds",
        items: items.map((i) => {
          if (
            !isRecord(i) || typeof i.id !== "string" || (i.kind !== "eventfd" && i.kind !== "vfio")
          ) {
            throw new ProtocolError("fds: an item is not {id, kind}");
          }
          return { id: i.id, kind: i.kind };
        }),
      };
    }
    case "sent":
    case "armed":
      return { op: o.op };
    case "released":
      return {
        op: "released",
        triggers: str(o, "triggers"),
        signals: str(o, "signals"),
        kernelEntriesLeft: int(o, "kernelEntriesLeft"),
      };
    case "refused":
      return { op: "refused", reason: str(o, "reason") };
    default:
      throw new ProtocolError(`unknown op ${JSON.stringify(o.op)}`);
  }
}

export function encodeMessage(m: SuccessionMessage): string {
  return JSON.stringify(m);
}
