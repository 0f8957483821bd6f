// Taking what a registration is armed with from the VMM: its source eventfd and, when the
// spec names one, its VFIO device descriptor (both duplicated with pidfd_getfd by the data
// plane). Each is identified by the process start time, so a PID reused in between is never
// mistaken for the VMM. A failure is a Rejection from the one refusal table.
import { Rejection } from "../rejection/rejection.ts";
import type { AcquiredSource, DataPlane, SourceIdentity } from "./data_plane.ts";
import { rejectionOf } from "./data_plane_refusals.ts";
import type { Spec } from "./validation.ts";

/** A VFIO device descriptor taken from the VMM, and who held it (its start time). */
export interface AcquiredVfio {
  fd: number;
  startTime: bigint;
}

export class Sources {
  constructor(private readonly plane: DataPlane) {}

  /** Takes the spec's source eventfd; with `expect` (replay), only the same eventfd. */
  acquire(spec: Spec, at: string, expect?: SourceIdentity): AcquiredSource {
    const { pid, fd } = spec.source;
    try {
      return this.plane.acquireSource(pid, fd, expect);
    } catch (err) {
      throw rejectionOf("source", err, at, `${at}source`, ` (pid ${pid}, fd ${fd})`);
    }
  }

  /** Closes a source that was not handed to the data plane. */
  release(source: AcquiredSource): void {
    if (source.fd < 0) return;
    this.plane.releaseSource(source.fd);
    source.fd = -1;
  }

  /**
   * Takes the VMM's VFIO device descriptor named by `spec.vfioDevice` (null when the spec has
   * none). `expectStart` (replay): only from that process. `taken` shares one take between
   * the specs of one call (a reconcile), by (pid, fd).
   *
   * No descriptor is kept per registration: the caller releases it as soon as the data plane
   * has armed, because the data plane keeps the duplicate it needs itself (a kernel-served
   * entry keeps one, to remove its key at unregister; a VFIO BAR mapping keeps one, shared by
   * every registration on the same open device file). Taking it again for each registration
   * also follows a VMM that re-opened its device at the same fd number.
   */
  acquireVfio(
    spec: Spec,
    at: string,
    taken: Map<string, AcquiredVfio> = new Map(),
    expectStart?: bigint,
  ): AcquiredVfio | null {
    const v = spec.vfioDevice;
    if (!v) return null;
    const where = `${v.pid}/${v.fd}`;
    const earlier = taken.get(where);
    if (earlier) return earlier;
    const field = `${at}vfio_device`;
    const suffix = ` (pid ${v.pid}, fd ${v.fd})`;
    const refuse = (message: string, cause?: string): never => {
      throw Rejection.of(
        [{ field, reason: "VFIO_DEVICE_INVALID", description: `${message}${suffix}` }],
        cause ? { cause } : {},
      );
    };
    const before = this.#startTime(v.pid);
    if (before === null) refuse("the VFIO device's process does not exist");
    if (expectStart !== undefined && before !== expectStart) {
      refuse(
        "the VFIO device's process is gone and its PID now names another process",
        "PID_REUSED",
      );
    }
    let fd = -1;
    try {
      fd = this.plane.acquireVfioDevice(v.pid, v.fd);
    } catch (err) {
      throw rejectionOf("vfio", err, at, field, suffix);
    }
    const acquired = { fd, startTime: before! };
    if (this.#startTime(v.pid) !== before) {
      this.releaseVfio(acquired);
      refuse("the VFIO device's process exited while it was being taken");
    }
    taken.set(where, acquired);
    return acquired;
  }

  releaseVfio(vfio: AcquiredVfio | null): void {
    if (vfio === null || vfio.fd < 0) return;
    try {
      this.plane.releaseVfioDevice(vfio.fd);
    } catch { /* closing a descriptor we own: nothing to recover */ }
    vfio.fd = -1;
  }

  /** Releases every VFIO descriptor of one call's `taken` map. */
  releaseAllVfio(taken: Map<string, AcquiredVfio>): void {
    for (const v of taken.values()) this.releaseVfio(v);
  }

  #startTime(pid: number): bigint | null {
    try {
      return this.plane.processStartTime(pid);
    } catch (err) {
      throw new Rejection("ENGINE_FAILURE", `cannot read the start time of process ${pid}: ${err}`);
    }
  }
}
