// A registration: one accepted ioeventfd, as the registry holds it and the journal stores it,
// and the events that report its life. A Registration is built in exactly one place
// (newRegistration) and turned into a journal record in one place (toRecord).
import type { JournalRecord } from "./journal.ts";
import type { Backend, RegistrationStats } from "./data_plane.ts";
import type { Spec } from "./validation.ts";

/**
 * ARMED: the data plane writes on every signal. ORPHANED: its device went away; no write.
 * NEEDS_SOURCE: its source was handed over (not taken) and the agent restarted since: it
 * is armed again as soon as the sender hands the same eventfd over again; no write until.
 */
export type State = "ARMED" | "ORPHANED" | "NEEDS_SOURCE";
export type RemovalCause = "REQUEST" | "RECONCILE" | "SOURCE_EXIT";

export interface Registration {
  id: string;
  owner: string;
  requestId: string;
  spec: Spec;
  state: State;
  /** Who performs the write (data_plane.ts Backend). */
  backend: Backend;
  createdAtMs: number;
  /** Identity of the source recorded when it was first acquired. */
  startTime: bigint;
  eventfdId: bigint;
  /** Start time of the `spec.vfioDevice` process when first taken (0n: none). */
  vfioStartTime: bigint;
  /** The data plane's id while armed; null when orphaned. */
  nativeId: bigint | null;
  /**
   * Why it is ORPHANED: the device rule it no longer passes (DEVICE_NOT_FOUND,
   * DEVICE_NOT_MANAGED, OUT_OF_BAR, OVERLAPS_MSIX_TABLE, …); absent while armed.
   */
  orphanCause?: string;
}

/**
 * What the registry reports, in commit order. `final` is what a registration had counted
 * when the data plane let it go (read after the unregister barrier, so no write is missed);
 * null when it was not armed.
 */
export type RegistryEvent =
  | { type: "ADDED"; registration: Registration; revision: bigint }
  | {
    type: "REMOVED";
    registration: Registration;
    cause: RemovalCause;
    final: RegistrationStats | null;
    revision: bigint;
  }
  | {
    type: "UPDATED";
    registration: Registration;
    final: RegistrationStats | null;
    revision: bigint;
  };

export interface WatchFilter {
  device?: string;
  owner?: string;
}

export function matches(r: Registration, f: WatchFilter): boolean {
  return (!f.device || r.spec.device === f.device) && (!f.owner || r.owner === f.owner);
}

function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return "ioe-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The identity of what was armed: the source's and the VFIO device's, as acquired. */
export interface ArmedIdentity {
  nativeId: bigint;
  backend: Backend;
  startTime: bigint;
  eventfdId: bigint;
  vfioStartTime: bigint;
}

/** A new, armed registration with a fresh id. */
export function newRegistration(
  owner: string,
  requestId: string,
  spec: Spec,
  armed: ArmedIdentity,
): Registration {
  return {
    id: newId(),
    owner,
    requestId,
    spec,
    state: "ARMED",
    backend: armed.backend,
    createdAtMs: Date.now(),
    startTime: armed.startTime,
    eventfdId: armed.eventfdId,
    vfioStartTime: armed.vfioStartTime,
    nativeId: armed.nativeId,
  };
}

/** A registration as the journal had it (replay), in the state replay found it. */
export function fromRecord(
  rec: JournalRecord,
  spec: Spec,
  state: State,
  backend: Backend,
  nativeId: bigint | null,
): Registration {
  return {
    id: rec.id,
    owner: rec.owner,
    requestId: rec.requestId,
    spec,
    state,
    backend,
    createdAtMs: rec.createdAtMs,
    startTime: rec.startTime,
    eventfdId: rec.eventfdId,
    vfioStartTime: rec.vfio?.startTime ?? 0n,
    nativeId,
  };
}

export function toRecord(r: Registration): JournalRecord {
  return {
    id: r.id,
    owner: r.owner,
    requestId: r.requestId,
    device: r.spec.device,
    bar: r.spec.bar,
    offset: r.spec.offset,
    width: r.spec.width,
    data: r.spec.data,
    labels: r.spec.labels,
    pid: r.spec.source.pid,
    fd: r.spec.source.fd,
    startTime: r.startTime,
    eventfdId: r.eventfdId,
    createdAtMs: r.createdAtMs,
    backend: r.backend,
    vfio: r.spec.vfioDevice
      ? { pid: r.spec.vfioDevice.pid, fd: r.spec.vfioDevice.fd, startTime: r.vfioStartTime }
      : null,
  };
}

/**
 * What a validate-only create or a dry run reports: the registration it would make, with the
 * source identity its check found, no id and not armed.
 */
export function wouldBe(
  owner: string,
  requestId: string,
  spec: Spec,
  identity: { startTime: bigint; eventfdId: bigint; vfioStartTime: bigint },
): Registration {
  const r = newRegistration(owner, requestId, spec, {
    nativeId: 0n,
    // "auto" asks the kernel first for a VFIO device; the sysfs mmap otherwise.
    backend: spec.vfioDevice ? "kernel" : "user-mmap",
    ...identity,
  });
  return { ...r, id: "", nativeId: null };
}
