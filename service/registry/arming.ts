// Arming and disarming through the data-plane port. A spec with a VFIO device (taken from the
// VMM) goes to the kernel first ("auto": the data plane falls back to its mmap of the VFIO BAR
// where the kernel refuses); any other to the device's sysfs resourceN file. Disarming is a
// barrier and yields the final counters, which travel on the registry's events.
import { NativeError } from "../native/errno.ts";
import { Rejection } from "../rejection/rejection.ts";
import type { DeviceSource } from "./device_source.ts";
import type {
  AcquiredSource,
  ArmedRegistration,
  DataPlane,
  RegisterOutcome,
  RegistrationRequest,
  RegistrationStats,
  VfioRegistrationRequest,
} from "./data_plane.ts";
import { rejectionOf } from "./data_plane_refusals.ts";
import type { Registration } from "./registration.ts";
import type { AcquiredVfio, Sources } from "./sources.ts";
import type { Spec } from "./validation.ts";

/** Records per registerMany call at most (the plugin's bound). */
const MAX_BATCH = 65_536;

export class Arming {
  constructor(
    private readonly plane: DataPlane,
    private readonly devices: DeviceSource,
    private readonly sources: Sources,
  ) {}

  /**
   * Hands the acquired source to the data plane; on failure the caller still owns it (and
   * always the VFIO descriptor). `at` prefixes the fields of a refusal.
   */
  arm(
    spec: Spec,
    source: AcquiredSource,
    vfio: AcquiredVfio | null,
    at: string,
  ): ArmedRegistration {
    const request = this.request(spec, source, vfio);
    try {
      return "vfioFd" in request ? this.plane.registerVfio(request) : this.plane.register(request);
    } catch (err) {
      throw this.refusal(err, vfio !== null, at);
    }
  }

  /**
   * What the data plane is asked to arm for `spec` (a VFIO device: the kernel first, "auto";
   * else the device's sysfs resourceN file). ENGINE_FAILURE when the BAR has no file.
   */
  request(
    spec: Spec,
    source: AcquiredSource,
    vfio: AcquiredVfio | null,
  ): RegistrationRequest | VfioRegistrationRequest {
    const write = {
      offset: spec.offset,
      width: spec.width,
      data: spec.data,
      fd: source.fd,
      // A handed-over source: the sender (acquire set spec.source.pid to it).
      pid: spec.source.pid,
      pidStart: source.startTime,
    };
    if (vfio !== null) return { vfioFd: vfio.fd, bar: spec.bar, mode: "auto", ...write };
    const bar = this.devices.get(spec.device)?.bars[spec.bar];
    if (!bar?.resourcePath) throw new Rejection("ENGINE_FAILURE", "BAR has no resource file");
    return { barPath: bar.resourcePath, ...write };
  }

  /** Arms many requests with one control operation per worker (replay): in order. */
  armMany(
    requests: readonly (RegistrationRequest | VfioRegistrationRequest)[],
  ): RegisterOutcome[] {
    const out: RegisterOutcome[] = [];
    for (let i = 0; i < requests.length; i += MAX_BATCH) {
      out.push(...this.plane.registerMany(requests.slice(i, i + MAX_BATCH)));
    }
    return out;
  }

  /**
   * arm for taken sources, all with armMany (creates of one turn): each item's
   * ArmedRegistration, or the Rejection that refused it (its caller still owns its sources).
   */
  armTaken(
    items: readonly { spec: Spec; source: AcquiredSource; vfio: AcquiredVfio | null; at: string }[],
  ): (ArmedRegistration | Rejection)[] {
    const out: (ArmedRegistration | Rejection)[] = new Array(items.length);
    const requests: (RegistrationRequest | VfioRegistrationRequest)[] = [];
    const sent: number[] = [];
    items.forEach((item, i) => {
      try {
        requests.push(this.request(item.spec, item.source, item.vfio));
        sent.push(i);
      } catch (err) {
        out[i] = this.refusal(err, item.vfio !== null, item.at);
      }
    });
    this.armMany(requests).forEach((outcome, k) => {
      const { vfio, at } = items[sent[k]];
      out[sent[k]] = outcome.ok
        ? { id: outcome.id, backend: outcome.backend }
        : this.refusal(outcome.error, vfio !== null, at);
    });
    return out;
  }

  /** The rejection of a data-plane refusal to arm (`vfio`: on a VFIO device). */
  refusal(err: unknown, vfio: boolean, at: string): Rejection {
    if (err instanceof Rejection) return err;
    return rejectionOf(vfio ? "arm-vfio" : "arm", err, at, `${at}source`);
  }

  /**
   * Takes the source (and VFIO device) of `spec` and arms it: all or nothing, every
   * descriptor released on failure. The VFIO descriptor is released either way (the data
   * plane keeps its own).
   */
  acquireAndArm(
    spec: Spec,
    at: string,
  ): { armed: ArmedRegistration; source: AcquiredSource; vfio: AcquiredVfio | null } {
    const { source, vfio } = this.sources.take(spec, at);
    try {
      const armed = this.arm(spec, source, vfio, at);
      return { armed, source, vfio };
    } catch (err) {
      this.sources.release(source);
      throw err;
    } finally {
      this.sources.releaseVfio(vfio);
    }
  }

  /** Arms `r` again from its recorded identity (a reconcile's rollback); false if gone. */
  rearm(r: Registration): boolean {
    let source: AcquiredSource;
    try {
      source = this.sources.acquire(r.spec, "", { startTime: r.startTime, eventfdId: r.eventfdId });
    } catch {
      return false;
    }
    let vfio: AcquiredVfio | null = null;
    try {
      vfio = this.sources.acquireVfio(r.spec, "", new Map(), r.vfioStartTime);
      const armed = this.arm(r.spec, source, vfio, "");
      r.nativeId = armed.id;
      r.backend = armed.backend;
      return true;
    } catch {
      this.sources.release(source);
      return false;
    } finally {
      this.sources.releaseVfio(vfio);
    }
  }

  /**
   * Disarms every armed registration of `rs` (a barrier each: no write after) and returns
   * their final counters, by registration id. Already gone natively (ENOENT) counts as done.
   */
  disarm(rs: readonly Registration[]): Map<string, RegistrationStats> {
    const finals = new Map<string, RegistrationStats>();
    const armed = rs.filter((r) => r.nativeId !== null);
    if (armed.length === 0) return finals;
    const outcomes = this.plane.unregisterMany(armed.map((r) => r.nativeId!));
    armed.forEach((r, i) => {
      const outcome = outcomes[i];
      if (outcome.ok) finals.set(r.id, outcome.final);
      else if (!(outcome.error instanceof NativeError && outcome.error.is("ENOENT"))) {
        throw outcome.error;
      }
      r.nativeId = null;
    });
    return finals;
  }

  /** Disarms data-plane registrations that no Registration holds yet (a failed call's). */
  disarmIds(ids: readonly bigint[]): void {
    if (ids.length > 0) this.plane.unregisterMany(ids);
  }

  /** De-assigns the kernel's ioeventfd with the key of `spec`, if it has one (replay). */
  forgetKernelEntry(spec: Spec, vfioFd: number): void {
    try {
      this.plane.kernelIoeventfd(vfioFd, spec.bar, spec.offset, spec.width, spec.data, -1);
    } catch { /* ENODEV: the kernel has no such entry, the usual case */ }
  }
}
