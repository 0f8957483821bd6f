// Agent metrics: identity (build info), readiness and start-up recovery, the devices it sees,
// the native engine's health, and what the last scrape cost.
import { hostname } from "node:os";
import type { Registry as PromRegistry } from "prom-client";
import type { PciDevice, UnmanagedReason } from "../devices/types.ts";
import type { EngineInfo } from "../native/engine.ts";
import type { ReplayReport } from "../registry/registry.ts";
import { buildRevision, VERSION } from "../version.ts";
import { type Sample, scalar, SnapshotMetric } from "./snapshot_metric.ts";

/** The agent's state as one scrape sees it. */
export interface AgentSnapshot {
  ready: boolean;
  /** Start → every journaled ioeventfd armed again; null until the replay ran. */
  rearmMs: number | null;
  replay: ReplayReport | null;
  devices: readonly PciDevice[];
  /** null once the engine is closed. */
  engine: EngineInfo | null;
  /** Duration of the previous scrape; null before the first one ended. */
  lastScrapeSeconds: number | null;
}

const UNMANAGED_REASONS: readonly UnmanagedReason[] = [
  "DENY_LISTED",
  "NOT_VFIO_BOUND",
  "CONFIG_UNREADABLE",
  "CONFIG_INVALID",
  "RESOURCE_UNREADABLE",
];

/**
 * A PCI address as DCGM (and NVML's busId, nvidia-smi's pci.bus_id) writes it: an 8-digit
 * domain, upper-case hex: "0000:65:00.0" → "00000000:65:00.0", "0000:00:1b.0" →
 * "00000000:00:1B.0". ioeventd_device_info carries it, so PromQL joins with DCGM's series.
 */
export function dcgmPciBusId(address: string): string {
  const m = /^([0-9a-f]{1,8}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(address);
  if (!m) return address.toUpperCase();
  return `${m[1].padStart(8, "0")}:${m[2]}:${m[3]}.${m[4]}`.toUpperCase();
}

/**
 * The host name DCGM's series carry as `Hostname`: dcgm-exporter takes $NODE_NAME when set
 * (the Kubernetes node, as the DaemonSet sets it for both), else the OS host name.
 */
export function nodeName(): string {
  try {
    const fromEnv = Deno.env.get("NODE_NAME");
    if (fromEnv) return fromEnv;
  } catch { /* no env permission: the OS host name */ }
  try {
    return hostname();
  } catch {
    return "";
  }
}

const hex4 = (n: number) => `0x${n.toString(16).padStart(4, "0")}`;

/** The ioeventd_device_info labels of a device. */
export function deviceInfoLabels(d: PciDevice, host: string): Record<string, string> {
  return {
    device: d.address,
    pci_bus_id: dcgmPciBusId(d.address),
    vendor: hex4(d.vendorId),
    device_id: hex4(d.deviceId),
    driver: d.driver ?? "",
    numa_node: d.numaNode === null ? "" : String(d.numaNode),
    iommu_group: d.iommuGroup === null ? "" : String(d.iommuGroup),
    managed: String(d.managed),
    hostname: host,
  };
}

/** A one-sample gauge that is absent while `value` returns null. */
function optional(name: string, help: string, value: () => number | null): SnapshotMetric {
  const sample: Sample = { value: 0, labels: {} };
  return new SnapshotMetric(name, help, "gauge", () => {
    const v = value();
    if (v === null) return [];
    sample.value = v;
    return [sample];
  });
}

export function registerAgentMetrics(registry: PromRegistry, snap: () => AgentSnapshot): void {
  const buildInfo: Sample = {
    value: 1,
    labels: { version: VERSION, revision: buildRevision(), deno_version: Deno.version.deno },
  };
  new SnapshotMetric(
    "ioeventd_build_info",
    "Always 1; labels name the agent's version, source revision and Deno runtime.",
    "gauge",
    () => [buildInfo],
  ).registerIn(registry);
  scalar(
    "ioeventd_ready",
    "1 once the journal replay has re-armed every ioeventfd and the API serves; 0 otherwise.",
    "gauge",
    () => (snap().ready ? 1 : 0),
  ).registerIn(registry);
  optional(
    "ioeventd_rearm_duration_seconds",
    "Time from the agent's start to every journaled ioeventfd armed again.",
    () => {
      const ms = snap().rearmMs;
      return ms === null ? null : ms / 1000;
    },
  ).registerIn(registry);
  optional(
    "ioeventd_replay_rearmed",
    "ioeventfds the start-up journal replay re-armed.",
    () => snap().replay?.rearmed ?? null,
  ).registerIn(registry);
  optional(
    "ioeventd_replay_orphaned",
    "ioeventfds the start-up journal replay kept as orphaned (their device is gone).",
    () => snap().replay?.orphaned.length ?? null,
  ).registerIn(registry);

  const managed: Sample = { value: 0, labels: { state: "managed" } };
  const unmanaged: Sample = { value: 0, labels: { state: "unmanaged" } };
  new SnapshotMetric(
    "ioeventd_devices",
    "PCI devices the agent sees, by state: managed (ioeventfds accepted) or unmanaged.",
    "gauge",
    () => {
      const devices = snap().devices;
      managed.value = devices.filter((d) => d.managed).length;
      unmanaged.value = devices.length - managed.value;
      return [managed, unmanaged];
    },
  ).registerIn(registry);
  const host = nodeName();
  const infos = new Map<string, Sample>();
  new SnapshotMetric(
    "ioeventd_device_info",
    "Always 1, one series per PCI device the agent sees: device (its address as the other " +
      "series name it), pci_bus_id (as DCGM writes it, 00000000:65:00.0, to join DCGM_FI_* " +
      "series on), vendor, device_id, driver, numa_node, iommu_group, managed, and hostname " +
      "($NODE_NAME or the OS host name, DCGM's Hostname).",
    "gauge",
    () => {
      const out: Sample[] = [];
      for (const d of snap().devices) {
        const labels = deviceInfoLabels(d, host);
        const key = JSON.stringify(labels);
        let s = infos.get(key);
        if (!s) infos.set(key, s = { value: 1, labels });
        out.push(s);
      }
      if (infos.size > 4 * out.length + 64) infos.clear(); // devices changed a lot: start over
      return out;
    },
  ).registerIn(registry);

  const byReason = UNMANAGED_REASONS.map((reason): Sample => ({ value: 0, labels: { reason } }));
  new SnapshotMetric(
    "ioeventd_devices_unmanaged",
    "PCI devices the agent does not manage, by reason (e.g. NOT_VFIO_BOUND, DENY_LISTED).",
    "gauge",
    () => {
      for (const s of byReason) {
        s.value = snap().devices.filter((d) => d.unmanagedReason === s.labels.reason).length;
      }
      return byReason;
    },
  ).registerIn(registry);

  const engine = (pick: (e: EngineInfo) => number) => () => {
    const e = snap().engine;
    return e === null ? null : pick(e);
  };
  scalar(
    "ioeventd_engine_alive",
    "1 while every native worker thread runs; 0 if one died or the engine is closed.",
    "gauge",
    () => (snap().engine?.alive ? 1 : 0),
  ).registerIn(registry);
  optional(
    "ioeventd_engine_workers",
    "Native epoll worker threads.",
    engine((e) => e.workers),
  ).registerIn(registry);
  optional(
    "ioeventd_engine_registrations",
    "Writes armed in the native engine (equals the armed ioeventfds; a gap means a leak).",
    engine((e) => e.registrations),
  ).registerIn(registry);
  optional(
    "ioeventd_engine_bar_mappings",
    "BARs the native engine has mapped.",
    engine((e) => e.barMappings),
  ).registerIn(registry);
  optional(
    "ioeventd_engine_watched_processes",
    "Source processes the native engine watches for exit.",
    engine((e) => e.watchedPids),
  ).registerIn(registry);
  optional(
    "ioeventd_canary_period_seconds",
    "Period of the canary that feeds ioeventd_dispatch_latency_seconds (0: disabled).",
    engine((e) => e.canaryPeriodUs / 1e6),
  ).registerIn(registry);
  const pollMode: Sample = { value: 1, labels: { poll_mode: "" } };
  new SnapshotMetric(
    "ioeventd_engine_info",
    "Always 1; the poll_mode label names how the native workers wait (block, busy, adaptive).",
    "gauge",
    () => {
      const e = snap().engine;
      if (e === null) return [];
      pollMode.labels.poll_mode = e.pollMode;
      return [pollMode];
    },
  ).registerIn(registry);

  optional(
    "ioeventd_scrape_duration_seconds",
    "Time the previous /metrics scrape took to read the snapshots and render them.",
    () => snap().lastScrapeSeconds,
  ).registerIn(registry);
}
