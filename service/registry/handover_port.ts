// The hand-over port: descriptors a process handed over to the agent (native/src/handover/)
// and the handles that name them. The registry owns this interface; service/native/handover.ts
// implements it. A handle is usable only under the owner it was handed over for; the sender
// (pid, uid, start time) is what the source binding and the exit watch judge.
//
// A predecessor agent is such a process too: at a hand-over (service/upgrade/) it passes the
// descriptors of the registrations the successor cannot take itself, by registration id,
// and leaves its kernel-served entries assigned for the successor to adopt.
import { Errno, NativeError } from "../native/errno.ts";
import type { InheritedFds } from "../upgrade/protocol.ts";
import type { ArmedRegistration } from "./data_plane.ts";
import type { Registration } from "./registration.ts";
import type { Spec } from "./validation.ts";

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
  /** True while replaying as a predecessor's successor (it is alive and armed). */
  readonly takingOver: boolean;
  /** The descriptors a predecessor passed for registration `id` (the caller owns them). */
  inherited(id: string): InheritedFds | null;
  /**
   * Records a kernel entry the predecessor left assigned as served here, without assigning
   * its key again (the kernel would refuse it: EEXIST). The data plane owns `fd` once done.
   */
  adoptKernel(request: KernelAdoption): ArmedRegistration;
}

/** The intake's part of the port (native/src/handover/): what processes handed over. */
export type IntakePort = Pick<HandoverPort, "take" | "consume" | "received">;

/** A VFIO_DEVICE_IOEVENTFD entry a predecessor left assigned. */
export interface KernelAdoption {
  vfioFd: number;
  bar: number;
  offset: bigint;
  width: number;
  data: bigint;
  /** The eventfd the entry listens on. */
  fd: number;
  pid: number;
  pidStart: bigint;
}

/** No intake configured: every handle is unknown. */
export const NO_HANDOVER: HandoverPort = {
  take() {
    throw new NativeError("handover_take", Errno.ENOENT);
  },
  consume() {},
  received: () => [],
  takingOver: false,
  inherited: () => null,
  adoptKernel() {
    throw new NativeError("adopt_kernel", Errno.EOPNOTSUPP);
  },
};

/**
 * Which NEEDS_SOURCE registrations a batch of hand-overs can arm again, and with which spec:
 * the same owner, the same sender (pid and start time) and the same eventfd (the kernel's id);
 * a VFIO device, when the spec has one, from the same message and the same holder.
 */
export function handedBack(
  waiting: readonly Registration[],
  records: readonly ReceivedHandle[],
): { registration: Registration; spec: Spec }[] {
  const out: { registration: Registration; spec: Spec }[] = [];
  for (const r of waiting) {
    const ev = records.find((x) =>
      x.kind === "eventfd" && x.owner === r.owner && x.eventfdId === r.eventfdId &&
      x.sender.pid === r.spec.source.pid && x.sender.startTime === r.startTime
    );
    if (!ev || r.spec.source.fd !== -1) continue;
    let vfio = r.spec.vfioDevice ?? null;
    if (vfio && vfio.fd === -1) {
      const vx = records.find((x) =>
        x.kind === "vfio" && x.batch === ev.batch && x.owner === r.owner &&
        x.sender.startTime === r.vfioStartTime
      );
      if (!vx) continue;
      vfio = { pid: vfio.pid, fd: -1, handle: vx.handle };
    }
    out.push({
      registration: r,
      spec: {
        ...r.spec,
        source: { pid: r.spec.source.pid, fd: -1, handle: ev.handle },
        vfioDevice: vfio,
      },
    });
  }
  return out;
}
