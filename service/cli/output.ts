// What ioeventctl prints: tables and lines for people, JSON for pipelines, on stdout; and
// the agent's refusals with their exit codes, for people on stderr. With --json a refusal
// is the command's one JSON document, on stdout like a result (the exit code tells them
// apart), so a pipeline reads a single stream.
import type * as grpc from "@grpc/grpc-js";
import { decodeStatus } from "../api/status_details.ts";
import type { Device__Output } from "../api/generated/ioeventd/v1/Device.ts";
import type { Ioeventfd__Output } from "../api/generated/ioeventd/v1/Ioeventfd.ts";
import type { IoeventfdEvent__Output } from "../api/generated/ioeventd/v1/IoeventfdEvent.ts";
import { EXIT } from "./errors.ts";
import { renderTable } from "./table.ts";

export interface Out {
  json: boolean;
  /** One chunk of stdout (a newline is added). */
  write: (s: string) => void;
  /** One chunk of stderr (a newline is added). */
  error: (s: string) => void;
}

/** The human text, or the machine value as JSON with --json. */
export function print(out: Out, human: string, machine: unknown): void {
  out.write(out.json ? JSON.stringify(machine, null, 2) : human);
}

export function hex(value: string | number): string {
  return "0x" + BigInt(value).toString(16);
}

export function ioeventfdRows(items: Ioeventfd__Output[]): string[][] {
  return [
    [
      "ID",
      "OWNER",
      "DEVICE",
      "BAR",
      "OFFSET",
      "WIDTH",
      "DATA",
      "SOURCE",
      "VFIO",
      "BACKEND",
      "STATE",
      "TRIGGERS",
    ],
    ...items.map((i) => [
      i.id,
      i.owner,
      i.spec?.device ?? "",
      String(i.spec?.bar ?? ""),
      hex(i.spec?.offset ?? 0),
      String(i.spec?.width ?? ""),
      hex(i.spec?.data ?? 0),
      `${i.spec?.source?.pid}:${i.spec?.source?.fd}`,
      i.spec?.vfioDevice ? `${i.spec.vfioDevice.pid}:${i.spec.vfioDevice.fd}` : "-",
      i.backend,
      i.state,
      i.triggers,
    ]),
  ];
}

export function deviceRows(devices: Device__Output[]): string[][] {
  return [
    ["ADDRESS", "VENDOR:DEVICE", "CLASS", "DRIVER", "MANAGED", "IOEVENTFDS", "MSI-X", "SIM"],
    ...devices.map((d) => [
      d.address,
      `${d.vendorId.toString(16).padStart(4, "0")}:${d.deviceId.toString(16).padStart(4, "0")}`,
      d.classCode.toString(16).padStart(6, "0"),
      d.driver || "-",
      d.managed ? "yes" : `no (${d.unmanagedReason})`,
      `${d.ioeventfds}/${d.ioeventfdsLimit}`,
      d.msix?.present
        ? `${d.msix.tableSize} @ BAR${d.msix.table?.bar}+${hex(d.msix.table?.offset ?? 0)}`
        : "-",
      d.simulated ? "yes" : "no",
    ]),
  ];
}

export function describeDevice(d: Device__Output): string {
  const lines = renderTable(deviceRows([d])).split("\n");
  const bars = renderTable([
    ["BAR", "KIND", "START", "LENGTH", "64BIT", "PREFETCH", "ELIGIBLE"],
    ...d.bars.map((b) => [
      String(b.index),
      b.kind,
      hex(b.start),
      hex(b.length),
      b.is_64bit ? "yes" : "no",
      b.prefetchable ? "yes" : "no",
      b.eligible ? "yes" : `no (${b.ineligibleReason})`,
    ]),
  ]);
  const msix = d.msix?.present
    ? `MSI-X: ${d.msix.tableSize} entries, table BAR${d.msix.table?.bar}+${
      hex(d.msix.table?.offset ?? 0)
    } (${d.msix.table?.length} bytes), PBA BAR${d.msix.pba?.bar}+${
      hex(d.msix.pba?.offset ?? 0)
    } (${d.msix.pba?.length} bytes)`
    : "MSI-X: none";
  const numa = `NUMA node: ${d.numaNode < 0 ? "unknown" : d.numaNode}`;
  const iommu = `IOMMU group: ${d.iommuGroup < 0 ? "none" : d.iommuGroup}`;
  return [...lines, "", bars, msix, `memory decode: ${d.memoryDecode ? "on" : "off"}`, numa, iommu]
    .join("\n");
}

export function eventLine(e: IoeventfdEvent__Output): string {
  if (e.type === "SNAPSHOT") {
    return `SNAPSHOT ${e.snapshot.length} ioeventfds (revision ${e.revision})`;
  }
  if (e.type === "RESUMED") return `RESUMED after revision ${e.revision}`;
  const i = e.ioeventfd!;
  const cause = e.type === "REMOVED" ? ` cause=${e.cause}` : "";
  return `${e.type} ${i.id} owner=${i.owner} ${i.spec?.device} bar${i.spec?.bar}+${
    hex(i.spec?.offset ?? 0)
  } w${i.spec?.width}=${hex(i.spec?.data ?? 0)} state=${i.state}${cause}`;
}

/** A failed call: exit 3 when the agent is not there, else 4 with the agent's reason. */
export function reportError(err: grpc.ServiceError, out: Out): number {
  // 14 UNAVAILABLE and 4 DEADLINE_EXCEEDED without details: the agent is not there.
  const details = decodeStatus(err);
  if (!details && (err.code === 14 || err.code === 4)) {
    if (out.json) out.write(JSON.stringify({ error: "UNREACHABLE", message: err.details }));
    else out.error(`error: agent unreachable: ${err.details}`);
    return EXIT.UNREACHABLE;
  }
  const reason = details?.reason || "UNKNOWN";
  if (out.json) {
    out.write(JSON.stringify({
      error: reason,
      code: err.code,
      message: err.details,
      violations: details?.violations ?? [],
    }));
  } else {
    out.error(`error: ${reason}: ${err.details}`);
    for (const v of details?.violations ?? []) out.error(`  ${v.field}: ${v.description}`);
  }
  return EXIT.REJECTED;
}
