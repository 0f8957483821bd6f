// Registry and inventory models → API messages. Message types come from the generated
// proto types; nothing here decides anything.
import type { PciDevice } from "../devices/types.ts";
import type { RegistrationStats } from "../native/engine.ts";
import type { Registration, RegistryEvent } from "../registry/registry.ts";
import type { Device } from "./generated/ioeventd/v1/Device.ts";
import type { Ioeventfd } from "./generated/ioeventd/v1/Ioeventfd.ts";
import type { IoeventfdEvent } from "./generated/ioeventd/v1/IoeventfdEvent.ts";
import type { Timestamp } from "./generated/google/protobuf/Timestamp.ts";

export function timestampFromMs(ms: number): Timestamp {
  return { seconds: String(Math.floor(ms / 1000)), nanos: Math.floor(ms % 1000) * 1e6 };
}

function timestampFromNs(ns: bigint): Timestamp {
  return { seconds: String(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) };
}

/** A source as the API shows it: a handed-over one has fd -1 and its handle. */
function sourceMessage(s: { pid: number; fd: number; handle?: string }) {
  return { pid: s.pid, fd: s.fd, handle: s.handle ?? "" };
}

export function toIoeventfd(r: Registration, stats?: RegistrationStats): Ioeventfd {
  return {
    id: r.id,
    spec: {
      device: r.spec.device,
      bar: r.spec.bar,
      offset: r.spec.offset.toString(),
      width: r.spec.width,
      data: r.spec.data.toString(),
      source: sourceMessage(r.spec.source),
      labels: r.spec.labels,
      vfioDevice: r.spec.vfioDevice ? sourceMessage(r.spec.vfioDevice) : null,
    },
    owner: r.owner,
    state: r.state,
    backend: r.backend,
    createdAt: timestampFromMs(r.createdAtMs),
    sourceStartTime: r.startTime.toString(),
    sourceEventfdId: r.eventfdId.toString(),
    triggers: (stats?.triggers ?? 0n).toString(),
    signals: (stats?.signals ?? 0n).toString(),
    lastTriggerTime: stats && stats.lastTriggerNs > 0n
      ? timestampFromNs(stats.lastTriggerNs)
      : null,
    requestId: r.requestId,
    vfioDeviceStartTime: (r.vfioStartTime ?? 0n).toString(),
    orphanCause: r.state === "ORPHANED" ? r.orphanCause ?? "" : "",
  };
}

export function toEvent(e: RegistryEvent): IoeventfdEvent {
  return {
    type: e.type,
    ioeventfd: toIoeventfd(e.registration),
    cause: e.type === "REMOVED" ? e.cause : "REMOVAL_CAUSE_UNSPECIFIED",
    snapshot: [],
    revision: e.revision.toString(),
  };
}

export function toDevice(d: PciDevice, ioeventfds: number, limit: number): Device {
  return {
    address: d.address,
    vendorId: d.vendorId,
    deviceId: d.deviceId,
    subsystemVendorId: d.subsystemVendorId ?? 0,
    subsystemDeviceId: d.subsystemDeviceId ?? 0,
    classCode: d.classCode,
    revision: d.revision,
    driver: d.driver ?? "",
    iommuGroup: d.iommuGroup ?? -1,
    numaNode: d.numaNode ?? -1,
    bars: d.bars.map((b) => ({
      index: b.index,
      kind: b.kind,
      start: String(b.start),
      length: String(b.length),
      is_64bit: b.is64bit,
      prefetchable: b.prefetchable,
      mappable: b.mappable,
      eligible: b.eligible,
      ineligibleReason: b.ineligibleReason ?? "",
    })),
    msix: d.msix
      ? {
        present: true,
        tableSize: d.msix.tableSize,
        table: {
          bar: d.msix.table.bar,
          offset: String(d.msix.table.offset),
          length: String(d.msix.table.length),
        },
        pba: {
          bar: d.msix.pba.bar,
          offset: String(d.msix.pba.offset),
          length: String(d.msix.pba.length),
        },
        enabled: d.msix.enabled,
        functionMask: d.msix.functionMask,
      }
      : { present: false },
    memoryDecode: d.memoryDecode ?? false,
    managed: d.managed,
    unmanagedReason: d.unmanagedReason ?? "",
    simulated: d.simulated,
    configError: d.configError ?? d.resourceError ?? "",
    ioeventfds,
    ioeventfdsLimit: limit,
  };
}
