// Taking what a registration is armed with from the VMM: its source eventfd and, when the
// spec names one, its VFIO device descriptor (both duplicated with pidfd_getfd by the data
// plane). Each is identified by the process start time, so a PID reused in between is never
// mistaken for the VMM. A failure is a Rejection from the one refusal table.
//
// A source may instead name a handle: a descriptor its process handed over to the agent's
// intake (handover_port.ts) for one owner. Either way the caller must be allowed to name the
// process (the source binding, caller.ts), and the agent's own process is never a source
// (its control and canary eventfds). A handed-over source is recorded as the sender's pid
// with fd -1 and the handle; the handle is consumed once the registration is committed.
import { NativeError } from "../native/errno.ts";
import { Rejection } from "../rejection/rejection.ts";
import type { Caller } from "./caller.ts";
import type { AcquiredSource, DataPlane, SourceIdentity } from "./data_plane.ts";
import { rejectionOf } from "./data_plane_refusals.ts";
import { type HandoverKind, type HandoverPort, NO_HANDOVER } from "./handover_port.ts";
import type { Source, Spec } from "./validation.ts";

/** Who a take is for: the owner (a handle is bound to one) and the caller (its binding). */
export interface TakeFor {
  owner: string;
  caller?: Caller;
}

const OWN = "the agent's own file descriptors are never sources";

/** A VFIO device descriptor taken from the VMM, and who held it (its start time). */
export interface AcquiredVfio {
  fd: number;
  startTime: bigint;
}

export class Sources {
  /** Handles taken by the mutation now running: consumed when it commits. */
  readonly usedHandles = new Set<string>();
  /** Who the mutation now running takes for (set by the registry around it). */
  current: TakeFor | undefined;

  constructor(
    private readonly plane: DataPlane,
    readonly handover: HandoverPort = NO_HANDOVER,
  ) {}

  /**
   * SOURCE_ACCESS_DENIED (field `field`) unless `pid` may be named: never the agent itself,
   * and within the caller's binding when there is a caller.
   */
  checkBound(pid: number, field: string, who?: TakeFor): void {
    const w = who ?? this.current;
    const why = pid === Deno.pid ? OWN : w?.caller?.mayName(pid, w.owner) ?? null;
    if (why !== null) {
      throw Rejection.of([{ field, reason: "SOURCE_ACCESS_DENIED", description: why }], {
        cause: pid === Deno.pid ? "AGENT_PROCESS" : "SOURCE_BINDING",
      });
    }
  }

  /**
   * Takes the spec's source eventfd; with `expect` (replay), only the same eventfd. A handle
   * is taken from the intake (and `spec.source` becomes the sender's pid, fd -1).
   */
  acquire(spec: Spec, at: string, expect?: SourceIdentity, who?: TakeFor): AcquiredSource {
    const field = `${at}source`;
    if (spec.source.handle) {
      const h = this.#takeHandle(spec.source, "eventfd", field, who);
      spec.source = { pid: h.sender.pid, fd: -1, handle: spec.source.handle };
      return { fd: h.fd, startTime: h.sender.startTime, eventfdId: h.eventfdId };
    }
    const { pid, fd } = spec.source;
    this.checkBound(pid, field, who);
    try {
      return this.plane.acquireSource(pid, fd, expect);
    } catch (err) {
      throw rejectionOf("source", err, at, field, ` (pid ${pid}, fd ${fd})`);
    }
  }

  /**
   * Takes many sources of one process again (replay): each as `acquire` with its `expect`
   * would, with one pidfd and one start-time read for all. Per item, in order: the source,
   * or the Rejection `acquire` would have thrown.
   */
  acquireMany(
    pid: number,
    startTime: bigint,
    items: readonly { fd: number; eventfdId: bigint }[],
    at: string,
  ): (AcquiredSource | Rejection)[] {
    const field = `${at}source`;
    const refusal = (err: unknown, fd: number) =>
      err instanceof Rejection
        ? err
        : rejectionOf("source", err, at, field, ` (pid ${pid}, fd ${fd})`);
    try {
      this.checkBound(pid, field);
      const outcomes = this.plane.acquireSources(pid, items, startTime);
      return outcomes.map((o, i) => o.ok ? o.source : refusal(o.error, items[i].fd));
    } catch (err) {
      return items.map((i) => refusal(err, i.fd));
    }
  }

  /** A handed-over descriptor, within the owner and the caller's binding. */
  #takeHandle(source: Source, kind: HandoverKind, field: string, who?: TakeFor) {
    const handle = source.handle!;
    const refuse = (
      reason:
        | "SOURCE_ACCESS_DENIED"
        | "SOURCE_FD_INVALID"
        | "SOURCE_NOT_EVENTFD"
        | "VFIO_DEVICE_INVALID",
      description: string,
      cause: string,
    ): never => {
      throw Rejection.of([{ field, reason, description: `${description} (handle ${handle})` }], {
        cause,
      });
    };
    let h;
    try {
      h = this.handover.take(handle, (who ?? this.current)?.owner ?? "", kind);
    } catch (err) {
      if (err instanceof NativeError && err.is("EACCES")) {
        refuse(
          "SOURCE_ACCESS_DENIED",
          "the handle was handed over for another owner",
          "HANDLE_OWNER",
        );
      }
      if (err instanceof NativeError && err.is("EMEDIUMTYPE")) {
        refuse(
          kind === "eventfd" ? "SOURCE_NOT_EVENTFD" : "VFIO_DEVICE_INVALID",
          `the handle is not ${kind === "eventfd" ? "an eventfd" : "a VFIO device"}`,
          "HANDLE_KIND",
        );
      }
      if (err instanceof NativeError && err.is("ENOENT")) {
        refuse(
          kind === "eventfd" ? "SOURCE_FD_INVALID" : "VFIO_DEVICE_INVALID",
          "no such handle (never handed over, expired after its time to live, or used)",
          "HANDLE_UNKNOWN",
        );
      }
      throw new Rejection("ENGINE_FAILURE", `the hand-over intake failed: ${err}`);
    }
    try {
      this.checkBound(h.sender.pid, field, who);
    } catch (err) {
      this.plane.releaseSource(h.fd);
      throw err;
    }
    this.usedHandles.add(handle);
    return h;
  }

  /** Closes a source that was not handed to the data plane. */
  release(source: AcquiredSource): void {
    if (source.fd < 0) return;
    this.plane.releaseSource(source.fd);
    source.fd = -1;
  }

  /**
   * Takes the spec's source eventfd and its VFIO device (if it names one), all or nothing: a
   * failure to take the device gives the eventfd back. The caller releases both (the VFIO
   * descriptor once armed, see acquireVfio).
   */
  take(spec: Spec, at: string): { source: AcquiredSource; vfio: AcquiredVfio | null } {
    const source = this.acquire(spec, at);
    try {
      return { source, vfio: this.acquireVfio(spec, at) };
    } catch (err) {
      this.release(source);
      throw err;
    }
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
    who?: TakeFor,
  ): AcquiredVfio | null {
    const v = spec.vfioDevice;
    if (!v) return null;
    const where = v.handle ? v.handle : `${v.pid}/${v.fd}`;
    const earlier = taken.get(where);
    if (earlier) return earlier;
    const field = `${at}vfio_device`;
    if (v.handle) {
      const h = this.#takeHandle(v, "vfio", field, who);
      spec.vfioDevice = { pid: h.sender.pid, fd: -1, handle: v.handle };
      const acquired = { fd: h.fd, startTime: h.sender.startTime };
      taken.set(where, acquired);
      return acquired;
    }
    this.checkBound(v.pid, field, who);
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

  /** Start time of `pid`, null when there is no such process. */
  processStart(pid: number): bigint | null {
    return this.#startTime(pid);
  }

  #startTime(pid: number): bigint | null {
    try {
      return this.plane.processStartTime(pid);
    } catch (err) {
      throw new Rejection("ENGINE_FAILURE", `cannot read the start time of process ${pid}: ${err}`);
    }
  }
}
