// The data-plane port: everything the registry asks of whoever performs the writes. The
// registry owns this interface; the native engine (service/native/engine.ts) implements it,
// and tests that stand in for a device implement it too. There is no other route from the
// registry to the native layer, and no optional member: one path in production and in tests.
//
// Failures are thrown as NativeError (service/native/errno.ts: one errno table); the registry
// turns them into rejection reasons in one place (arming.ts).

/**
 * Who performs the write of an ioeventfd: the engine through an mmap of a sysfs `resourceN`
 * ("user-mmap") or of a VFIO BAR region ("vfio-mmap"), or the kernel itself
 * (VFIO_DEVICE_IOEVENTFD, "kernel").
 */
export type Backend = "user-mmap" | "vfio-mmap" | "kernel";
export const BACKENDS: readonly Backend[] = ["user-mmap", "vfio-mmap", "kernel"];

/**
 * How a VFIO-backed write picks its backend: "auto" asks the kernel first and falls back to
 * "vfio-mmap" where the kernel refuses for a reason the engine does not share (its
 * 1000-per-device limit, its 8-byte rule, no support); "vfio-mmap" only the engine's mmap of
 * the VFIO region; "kernel" only the kernel (its refusal is returned).
 */
export type VfioMode = "auto" | "vfio-mmap" | "kernel";

/** A source eventfd duplicated into the agent, and the identity of where it came from. */
export interface AcquiredSource {
  /** The agent's own descriptor of the eventfd. */
  fd: number;
  /** Start time of the source process (clock ticks since boot): detects PID reuse. */
  startTime: bigint;
  /** The kernel's eventfd-id (+1): detects an fd number that now holds another eventfd. */
  eventfdId: bigint;
}

/** What a replay expects of a source it takes again: the identity it had when journaled. */
export interface SourceIdentity {
  startTime: bigint;
  eventfdId: bigint;
}

/** A write through the mmap of a sysfs `resourceN` file. */
export interface RegistrationRequest {
  barPath: string;
  offset: bigint;
  width: number;
  data: bigint;
  /** A local fd from acquireSource; the data plane owns it once register succeeds. */
  fd: number;
  /** Source process to watch for exit (0: none) and its start time. */
  pid: number;
  pidStart: bigint;
}

/** A write on a VFIO device's BAR (the kernel's ioeventfd, or the engine's mmap of it). */
export interface VfioRegistrationRequest {
  /** A VFIO device fd of this process (not taken over). */
  vfioFd: number;
  /** BAR index 0..5 (= the VFIO region index). */
  bar: number;
  offset: bigint;
  width: number;
  data: bigint;
  /** A local eventfd; the data plane owns it once registerVfio succeeds. */
  fd: number;
  pid: number;
  pidStart: bigint;
  mode: VfioMode;
}

/** A registration armed by the data plane. */
export interface ArmedRegistration {
  /** The data plane's id of the registration. */
  id: bigint;
  backend: Backend;
}

/** One outcome of registerMany, in the order of the requests. */
export type RegisterOutcome =
  | {
    ok: true;
    id: bigint;
    backend: Backend;
    /** null: served by the kernel */
    worker: number | null;
  }
  | { ok: false; error: Error };

/** A registration's counters. After unregister they are final: no write can follow. */
export interface RegistrationStats {
  triggers: bigint;
  signals: bigint;
  /** Unix time in ns of the last write, 0n if none yet. */
  lastTriggerNs: bigint;
}

/** One outcome of unregisterMany, in the order of the ids. */
export type UnregisterOutcome =
  | { ok: true; final: RegistrationStats }
  | { ok: false; error: Error };

export interface DataPlane {
  /** Duplicates fd `fd` of process `pid`; with `expect`, refuses a reused PID or fd. */
  acquireSource(pid: number, fd: number, expect?: SourceIdentity): AcquiredSource;
  /**
   * acquireSource for many fds of one process (a replay), with one pidfd and one start-time
   * read: one outcome per fd, in order. The process's own failures (gone, PID reused:
   * `expectStart` differs) throw for all of them.
   */
  acquireSources(
    pid: number,
    wanted: readonly { fd: number; eventfdId: bigint }[],
    expectStart: bigint,
  ): ({ ok: true; source: AcquiredSource } | { ok: false; error: Error })[];
  /** Closes an acquired fd that was not handed to register. */
  releaseSource(fd: number): void;

  /** Takes VFIO device fd `fd` of process `pid` (the VMM): a local descriptor. */
  acquireVfioDevice(pid: number, fd: number): number;
  /** Closes a descriptor from acquireVfioDevice. */
  releaseVfioDevice(fd: number): void;
  /** The raw VFIO_DEVICE_IOEVENTFD on a VFIO device fd (`fd` -1 de-assigns a key). */
  kernelIoeventfd(
    vfioFd: number,
    bar: number,
    offset: bigint,
    width: number,
    data: bigint,
    fd: number,
  ): void;
  /** Start time of process `pid` as acquireSource records it; null when there is none. */
  processStartTime(pid: number): bigint | null;

  /** Arms a write through a sysfs resource file. */
  register(request: RegistrationRequest): ArmedRegistration;
  /** Arms a write on a VFIO device's BAR; says which backend serves it. */
  registerVfio(request: VfioRegistrationRequest): ArmedRegistration;
  /**
   * Arms many at once (replay, reconcile, creates of one turn), with one control operation
   * per worker: outcomes in request order; a refusal affects only its own request (its fd
   * stays the caller's).
   */
  registerMany(
    requests: readonly (RegistrationRequest | VfioRegistrationRequest)[],
  ): RegisterOutcome[];

  /**
   * A barrier: when it returns, no write for `id` is in flight and none will happen again.
   * Returns the registration's final counters, read after the barrier.
   */
  unregister(id: bigint): RegistrationStats;
  /** unregister for many ids, one control operation per worker. */
  unregisterMany(ids: readonly bigint[]): UnregisterOutcome[];

  /** Counters of every registration now armed, by id; of just `ids` (those armed) when given. */
  registrationStats(ids?: readonly bigint[]): Map<bigint, RegistrationStats>;
}
