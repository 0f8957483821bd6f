// The hand-over port: descriptors a process handed over to the agent (native/src/handover/)
// and the handles that name them. The registry owns this interface; service/native/handover.ts
// implements it. A handle is usable only under the owner it was handed over for; the sender
// (pid, uid, start time) is what the source binding and the exit watch judge.
import { Errno, NativeError } from "../native/errno.ts";

export type HandoverKind = "eventfd" | "vfio";

export interface HandoverSender {
  pid: number;
  uid: number;
  startTime: bigint;
}

/** A duplicate of a handed-over descriptor (the caller owns `fd`) and where it came from. */
export interface HandedOver {
  fd: number;
  sender: HandoverSender;
  /** The eventfd's identity (kernel id + 1), as acquireSource reports it; 0n for VFIO. */
  eventfdId: bigint;
  /** The message it came in: handles of one message share it. */
  batch: number;
}

/** A descriptor received since the last look (re-arming registrations that need a source). */
export interface ReceivedHandle extends Omit<HandedOver, "fd"> {
  handle: string;
  owner: string;
  kind: HandoverKind;
}

export interface HandoverPort {
  /**
   * A duplicate of `handle`'s descriptor if it was handed over for `owner` and is of `kind`.
   * Throws NativeError ENOENT (unknown, expired, used), EACCES (another owner),
   * EMEDIUMTYPE (another kind).
   */
  take(handle: string, owner: string, kind: HandoverKind): HandedOver;
  /** The handle was used by a committed registration: the intake's copy is closed. */
  consume(handle: string): void;
  /** Descriptors received since the last call. */
  received(): ReceivedHandle[];
}

/** No intake configured: every handle is unknown. */
export const NO_HANDOVER: HandoverPort = {
  take() {
    throw new NativeError("handover_take", Errno.ENOENT);
  },
  consume() {},
  received: () => [],
};
