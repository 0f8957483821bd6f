// Data-plane metrics, computed at scrape time from the native engine's snapshots: nothing is
// done per trigger in TypeScript. Per-registration counters are summed by (device, BAR); the
// per-ioeventfd series (and the info metric that names them) are an opt-in, since their
// cardinality grows with the registrations.
import type { Registry as PromRegistry } from "prom-client";
import type { PciDevice } from "../devices/types.ts";
import type { RegistrationStats, WorkerStats } from "../native/engine.ts";
import type { Registration, RegistryEvent, WatchFilter } from "../registry/registry.ts";
import { SnapshotHistogram } from "./histogram.ts";
import { MAX_OWNER_SERIES, OwnerSeriesTable } from "./owners.ts";
import { type Sample, SnapshotMetric } from "./snapshot_metric.ts";
import { ORPHAN_CAUSES } from "../registry/validation.ts";
import {
  addInto,
  type DeviceGauges,
  type Entry,
  orphanCauseLabel,
  type PerIoeventfd,
  type Series,
  setCounts,
  zero,
} from "./data_plane_entries.ts";

/** What the data-plane metrics read at each scrape. */
export interface DataPlaneSnapshot {
  registrations: ReadonlyMap<bigint, RegistrationStats>;
  workers: readonly WorkerStats[];
  devices: readonly PciDevice[];
  maxPerDevice: number;
}

/** The part of the registry the metrics follow: a snapshot, then every change. */
export interface WatchableRegistry {
  watch(filter: WatchFilter, listener: (event: RegistryEvent) => void): Promise<{
    /** Without a resume revision, always the full snapshot. */
    snapshot: Registration[] | null;
    unsubscribe: () => void;
  }>;
}

export interface DataPlaneOptions {
  /** Per-ioeventfd series and ioeventd_ioeventfd_info (cardinality = registrations). */
  perIoeventfd: boolean;
  /** The native histogram bounds in ns (histogramBoundsNs()). */
  histogramBoundsNs: readonly bigint[];
  /** Owners with series of their own (MAX_OWNER_SERIES unless a test asks for fewer). */
  ownerSeriesCap?: number;
}

export class DataPlaneMetrics {
  readonly #perIoeventfd: boolean;
  readonly #series = new Map<string, Series>();
  readonly #entries = new Map<string, Entry>();
  readonly #byNative = new Map<bigint, Entry>();
  readonly #devices = new Map<string, DeviceGauges>();
  readonly #write: SnapshotHistogram;
  readonly #dispatch: SnapshotHistogram;
  readonly #wakeups: Sample = { value: 0, labels: {} };
  readonly #owners: OwnerSeriesTable;
  readonly #orphanCauses = new Map<string, Sample>();
  #unsubscribe: (() => void) | null = null;

  constructor(registry: PromRegistry, options: DataPlaneOptions) {
    this.#perIoeventfd = options.perIoeventfd;
    this.#owners = new OwnerSeriesTable(options.ownerSeriesCap ?? MAX_OWNER_SERIES);
    this.#owners.registerIn(registry);
    for (const cause of ORPHAN_CAUSES) {
      this.#orphanCauses.set(cause, { value: 0, labels: { cause } });
    }
    new SnapshotMetric(
      "ioeventd_orphaned_ioeventfds",
      "ioeventfds that stopped writing, by the device rule they now fail (Ioeventfd." +
        "orphan_cause: DEVICE_NOT_FOUND when unplugged, DEVICE_NOT_MANAGED when unbound, " +
        "OVERLAPS_MSIX_TABLE when the table moved onto them, OUT_OF_BAR when the BAR shrank, " +
        "...). They write nothing and wait to be deleted.",
      "gauge",
      () => [...this.#orphanCauses.values()],
    ).registerIn(registry);
    const series = (pick: (s: Series) => Sample, all = true) => () => {
      const out: Sample[] = [];
      for (const s of this.#series.values()) if (all || s.total.lastNs > 0) out.push(pick(s));
      return out;
    };
    new SnapshotMetric(
      "ioeventd_triggers_total",
      "Device writes performed by ioeventfds, by device and BAR: one per wake-up of an " +
        "ioeventfd, however many signals arrived before it.",
      "counter",
      series((s) => s.triggers),
    ).registerIn(registry);
    new SnapshotMetric(
      "ioeventd_signals_total",
      "Eventfd signals received by ioeventfds, by device and BAR (the eventfd counter values " +
        "read); signals that arrive before a write are coalesced into it, so signals/triggers " +
        "is the coalescing ratio.",
      "counter",
      series((s) => s.signals),
    ).registerIn(registry);
    new SnapshotMetric(
      "ioeventd_last_trigger_timestamp_seconds",
      "Unix time of the last device write by an ioeventfd of this device and BAR (absent " +
        "before the first one).",
      "gauge",
      series((s) => s.last, false),
    ).registerIn(registry);

    const devices = (pick: (d: DeviceGauges) => Sample[]) => () => {
      const out: Sample[] = [];
      for (const d of this.#devices.values()) out.push(...pick(d));
      return out;
    };
    new SnapshotMetric(
      "ioeventd_ioeventfds",
      "ioeventfds registered on a device, by state: armed (writing) or orphaned (the device " +
        "went away; they only wait to be deleted). Both count against the per-device limit.",
      "gauge",
      devices((d) => [d.armed, d.orphaned]),
    ).registerIn(registry);
    new SnapshotMetric(
      "ioeventd_ioeventfds_limit",
      "The most ioeventfds the agent accepts on one device (maxPerDevice).",
      "gauge",
      devices((d) => [d.limit]),
    ).registerIn(registry);

    this.#write = new SnapshotHistogram(
      "ioeventd_write_duration_seconds",
      "Time from a worker's wake-up to the device write done (the native service time: " +
        "wake-up to the last write of that wake-up's batch, one sample per write), all " +
        "workers together.",
      options.histogramBoundsNs,
    );
    this.#write.metric.registerIn(registry);
    this.#dispatch = new SnapshotHistogram(
      "ioeventd_dispatch_latency_seconds",
      "Time from an eventfd signal to its device write, measured by the engine's canary " +
        "ioeventfd (signalled periodically, served like any other), all workers together.",
      options.histogramBoundsNs,
    );
    this.#dispatch.metric.registerIn(registry);
    new SnapshotMetric(
      "ioeventd_worker_wakeups_total",
      "Wake-ups of the native epoll workers (each serves every ready ioeventfd).",
      "counter",
      () => [this.#wakeups],
    ).registerIn(registry);

    if (this.#perIoeventfd) {
      const detail = (pick: (d: PerIoeventfd) => Sample, all = true) => () => {
        const out: Sample[] = [];
        for (const e of this.#entries.values()) {
          if (e.detail && (all || e.detail.last.value > 0)) out.push(pick(e.detail));
        }
        return out;
      };
      new SnapshotMetric(
        "ioeventd_ioeventfd_triggers_total",
        "Device writes performed by one ioeventfd (join ioeventd_ioeventfd_info on id).",
        "counter",
        detail((d) => d.triggers),
      ).registerIn(registry);
      new SnapshotMetric(
        "ioeventd_ioeventfd_signals_total",
        "Eventfd signals received by one ioeventfd (join ioeventd_ioeventfd_info on id).",
        "counter",
        detail((d) => d.signals),
      ).registerIn(registry);
      new SnapshotMetric(
        "ioeventd_ioeventfd_last_trigger_timestamp_seconds",
        "Unix time of the last device write by one ioeventfd (absent before the first one).",
        "gauge",
        detail((d) => d.last, false),
      ).registerIn(registry);
      new SnapshotMetric(
        "ioeventd_ioeventfd_info",
        "One series (value 1) per registered ioeventfd, naming it: device, BAR, offset, " +
          "width, owner and backend (user-mmap, vfio-mmap or kernel). Per-ioeventfd series " +
          "carry only its id; join on id.",
        "gauge",
        detail((d) => d.info),
      ).registerIn(registry);
    }
  }

  /** Follows the registry from now on. Call after the journal replay (it emits no events). */
  async track(registry: WatchableRegistry): Promise<void> {
    this.#unsubscribe?.();
    // The registry answers at a commit boundary (group commit), so nothing is seen twice.
    const watch = await registry.watch({}, (event) => this.#onEvent(event));
    for (const r of watch.snapshot ?? []) this.#add(r);
    this.#unsubscribe = watch.unsubscribe;
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  /**
   * A native registration is gone: keep what it counted. `last` is its final count, read by
   * the data plane after the unregister barrier (it travels on the registry's event).
   */
  #retire(nativeId: bigint, last: RegistrationStats | null): void {
    const entry = this.#byNative.get(nativeId);
    if (!entry) return; // never published (a create that failed half-way)
    this.#byNative.delete(nativeId);
    entry.nativeId = null;
    if (last) setCounts(entry.live, last);
    addInto(entry.base, entry.live);
    entry.live = zero();
  }

  /** Recomputes every sample from one snapshot: O(registrations + devices). */
  update(snap: DataPlaneSnapshot): void {
    for (const d of snap.devices) {
      if (!d.managed) continue;
      for (const bar of d.bars) if (bar.eligible) this.#seriesOf(d.address, bar.index);
    }
    for (const s of this.#series.values()) {
      s.total.triggers = s.gone.triggers;
      s.total.signals = s.gone.signals;
      s.total.lastNs = s.gone.lastNs;
    }
    const seen = new Set<string>();
    for (const d of snap.devices) {
      if (d.managed) this.#deviceOf(d.address, seen);
    }
    this.#owners.beginScrape();
    for (const s of this.#orphanCauses.values()) s.value = 0;
    for (const e of this.#entries.values()) {
      if (e.nativeId !== null) {
        const stats = snap.registrations.get(e.nativeId);
        if (stats) setCounts(e.live, stats);
      }
      const total = e.series.total;
      total.triggers += e.base.triggers + e.live.triggers;
      total.signals += e.base.signals + e.live.signals;
      const last = Math.max(e.base.lastNs, e.live.lastNs);
      if (last > total.lastNs) total.lastNs = last;
      const owner = e.ownerSeries.total;
      owner.triggers += e.base.triggers + e.live.triggers;
      owner.signals += e.base.signals + e.live.signals;
      const dev = this.#deviceOf(e.device, seen);
      if (e.state === "ARMED") dev.armedCount++;
      else {
        dev.orphanedCount++;
        const cause = orphanCauseLabel(e.orphanCause);
        let s = this.#orphanCauses.get(cause);
        if (!s) this.#orphanCauses.set(cause, s = { value: 0, labels: { cause } });
        s.value++;
      }
      if (e.detail) {
        e.detail.triggers.value = e.base.triggers + e.live.triggers;
        e.detail.signals.value = e.base.signals + e.live.signals;
        e.detail.last.value = last / 1e9;
      }
    }
    this.#owners.endScrape();
    for (const s of this.#series.values()) {
      s.triggers.value = s.total.triggers;
      s.signals.value = s.total.signals;
      s.last.value = s.total.lastNs / 1e9;
    }
    for (const [address, d] of this.#devices) {
      if (!seen.has(address)) {
        this.#devices.delete(address); // gone from the host and holds no ioeventfd
        continue;
      }
      d.armed.value = d.armedCount;
      d.orphaned.value = d.orphanedCount;
      d.limit.value = snap.maxPerDevice;
    }

    let wakeups = 0;
    for (const w of snap.workers) wakeups += Number(w.wakeups);
    this.#wakeups.value = wakeups;
    this.#write.update(snap.workers.map((w) => w.service));
    this.#dispatch.update(snap.workers.map((w) => w.dispatch));
  }

  #onEvent(event: RegistryEvent): void {
    const r = event.registration;
    switch (event.type) {
      case "ADDED":
        this.#add(r);
        break;
      case "UPDATED": {
        const e = this.#entries.get(r.id);
        if (!e) break;
        e.state = r.state;
        e.orphanCause = r.orphanCause;
        if (r.nativeId === null && e.nativeId !== null) this.#retire(e.nativeId, event.final);
        break;
      }
      case "REMOVED": {
        const e = this.#entries.get(r.id);
        if (!e) break;
        if (e.nativeId !== null) this.#retire(e.nativeId, event.final);
        addInto(e.series.gone, e.base);
        this.#owners.release(e.owner, e.base);
        this.#entries.delete(r.id);
        break;
      }
    }
  }

  #add(r: Registration): void {
    const series = this.#seriesOf(r.spec.device, r.spec.bar);
    const entry: Entry = {
      state: r.state,
      orphanCause: r.orphanCause,
      device: r.spec.device,
      owner: r.owner,
      ownerSeries: this.#owners.acquire(r.owner),
      nativeId: r.nativeId,
      series,
      base: zero(),
      live: zero(),
      detail: null,
    };
    if (this.#perIoeventfd) {
      const id = { id: r.id };
      entry.detail = {
        triggers: { value: 0, labels: id },
        signals: { value: 0, labels: id },
        last: { value: 0, labels: id },
        info: {
          value: 1,
          labels: {
            id: r.id,
            device: r.spec.device,
            bar: String(r.spec.bar),
            offset: `0x${r.spec.offset.toString(16)}`,
            width: String(r.spec.width),
            owner: r.owner,
            backend: r.backend,
          },
        },
      };
    }
    this.#entries.set(r.id, entry);
    if (r.nativeId !== null) this.#byNative.set(r.nativeId, entry);
  }

  #seriesOf(device: string, bar: number): Series {
    const key = `${device}/${bar}`;
    let s = this.#series.get(key);
    if (!s) {
      const labels = { device, bar: String(bar) };
      s = {
        gone: zero(),
        total: zero(),
        triggers: { value: 0, labels },
        signals: { value: 0, labels },
        last: { value: 0, labels },
      };
      this.#series.set(key, s);
    }
    return s;
  }

  /** The device's gauges, zeroed the first time it is seen in this scrape. */
  #deviceOf(address: string, seen: Set<string>): DeviceGauges {
    let d = this.#devices.get(address);
    if (!d) {
      d = {
        armed: { value: 0, labels: { device: address, state: "armed" } },
        orphaned: { value: 0, labels: { device: address, state: "orphaned" } },
        limit: { value: 0, labels: { device: address } },
        armedCount: 0,
        orphanedCount: 0,
      };
      this.#devices.set(address, d);
    }
    if (!seen.has(address)) {
      seen.add(address);
      d.armedCount = 0;
      d.orphanedCount = 0;
    }
    return d;
  }
}
