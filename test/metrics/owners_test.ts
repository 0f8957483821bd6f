// Per-owner series (which VM rings) against a scripted registry and native snapshots: sums by
// owner that never go back on removal, the cap with everything past it under "__other__" and
// counted, slots freed one scrape after an owner's last ioeventfd; the orphan-cause gauge; and
// ioeventd_device_info's PCI bus id written exactly as DCGM writes it.
import assert from "node:assert/strict";
import { Registry as PromRegistry } from "prom-client";
import type { PciDevice } from "../../service/devices/types.ts";
import { dcgmPciBusId, deviceInfoLabels } from "../../service/metrics/agent.ts";
import { DataPlaneMetrics, type WatchableRegistry } from "../../service/metrics/data_plane.ts";
import { MAX_OWNER_SERIES, OTHER_OWNER } from "../../service/metrics/owners.ts";
import type { RegistrationStats } from "../../service/native/engine.ts";
import type { Registration, RegistryEvent } from "../../service/registry/registry.ts";
import { parseExposition, select, value } from "./exposition.ts";

const GPU = "0000:65:00.0";

function registration(id: string, owner: string, nativeId: bigint): Registration {
  return {
    id,
    owner,
    requestId: "",
    spec: {
      device: GPU,
      bar: 0,
      offset: BigInt(0x100 + 4 * Number(nativeId)),
      width: 4,
      data: 1n,
      source: { pid: 1, fd: 3 },
      labels: {},
    },
    state: "ARMED",
    backend: "user-mmap",
    createdAtMs: 0,
    startTime: 0n,
    eventfdId: 0n,
    vfioStartTime: 0n,
    nativeId,
  };
}

class ScriptedRegistry implements WatchableRegistry {
  listener: ((e: RegistryEvent) => void) | null = null;
  watch(_filter: object, listener: (e: RegistryEvent) => void) {
    this.listener = listener;
    return Promise.resolve({ snapshot: [], unsubscribe: () => (this.listener = null) });
  }
  emit(event: RegistryEvent): void {
    this.listener!(event);
  }
}

function stats(triggers: number, signals: number): RegistrationStats {
  return { triggers: BigInt(triggers), signals: BigInt(signals), lastTriggerNs: 1n };
}

async function setup(cap: number) {
  const prom = new PromRegistry();
  const metrics = new DataPlaneMetrics(prom, {
    perIoeventfd: false,
    histogramBoundsNs: [1000n],
    ownerSeriesCap: cap,
  });
  const registry = new ScriptedRegistry();
  await metrics.track(registry);
  const native = new Map<bigint, RegistrationStats>();
  const scrape = async () => {
    metrics.update({ registrations: native, workers: [], devices: [], maxPerDevice: 1000 });
    return parseExposition(await prom.metrics());
  };
  const add = (r: Registration) => registry.emit({ type: "ADDED", registration: r, revision: 0n });
  const remove = (r: Registration) => {
    const final = native.get(r.nativeId!) ?? null;
    native.delete(r.nativeId!);
    registry.emit({ type: "REMOVED", registration: r, cause: "REQUEST", final, revision: 0n });
  };
  return { registry, native, scrape, add, remove };
}

Deno.test("owner series: sums by owner, kept across removals, cap and __other__ counted", async () => {
  const t = await setup(2);
  const a1 = registration("ioe-a1", "vm-a", 1n);
  const a2 = registration("ioe-a2", "vm-a", 2n);
  const b1 = registration("ioe-b1", "vm-b", 3n);
  const c1 = registration("ioe-c1", "vm-c", 4n);
  const d1 = registration("ioe-d1", "vm-d", 5n);
  for (const r of [a1, a2, b1, c1, d1]) t.add(r);
  t.native.set(1n, stats(10, 20));
  t.native.set(2n, stats(5, 5));
  t.native.set(3n, stats(7, 7));
  t.native.set(4n, stats(100, 100));
  t.native.set(5n, stats(1, 3));
  let e = await t.scrape();
  const owner = (name: string, o: string) => value(e, name, { owner: o });
  assert.equal(owner("ioeventd_owner_triggers_total", "vm-a"), 15);
  assert.equal(owner("ioeventd_owner_signals_total", "vm-a"), 25);
  assert.equal(owner("ioeventd_owner_ioeventfds", "vm-a"), 2);
  assert.equal(owner("ioeventd_owner_triggers_total", "vm-b"), 7);
  // Cap 2: vm-c and vm-d have no series of their own, they count under __other__.
  assert.equal(select(e, "ioeventd_owner_triggers_total", { owner: "vm-c" }).length, 0);
  assert.equal(owner("ioeventd_owner_triggers_total", OTHER_OWNER), 101);
  assert.equal(owner("ioeventd_owner_signals_total", OTHER_OWNER), 103);
  assert.equal(owner("ioeventd_owner_ioeventfds", OTHER_OWNER), 2);
  assert.equal(value(e, "ioeventd_owner_series_overflow_total"), 2);
  assert.equal(value(e, "ioeventd_owner_series_limit"), 2);
  assert.equal(select(e, "ioeventd_owner_triggers_total").length, 3);

  // A removal keeps what it counted: vm-a's counter does not go back.
  t.native.set(1n, stats(12, 22));
  t.remove(a1);
  e = await t.scrape();
  assert.equal(owner("ioeventd_owner_triggers_total", "vm-a"), 17);
  assert.equal(owner("ioeventd_owner_ioeventfds", "vm-a"), 1);

  // vm-b's last ioeventfd goes: shown once more with its final count, then its slot is free.
  t.remove(b1);
  e = await t.scrape();
  assert.equal(owner("ioeventd_owner_triggers_total", "vm-b"), 7);
  assert.equal(owner("ioeventd_owner_ioeventfds", "vm-b"), 0);
  e = await t.scrape();
  assert.equal(select(e, "ioeventd_owner_triggers_total", { owner: "vm-b" }).length, 0);
  // The free slot goes to the next owner that appears; vm-c stays under __other__ while it
  // holds ioeventfds (its series never split between two label values).
  const f1 = registration("ioe-f1", "vm-f", 6n);
  const c2 = registration("ioe-c2", "vm-c", 7n);
  t.add(f1);
  t.add(c2);
  t.native.set(6n, stats(4, 4));
  t.native.set(7n, stats(2, 2));
  e = await t.scrape();
  assert.equal(owner("ioeventd_owner_triggers_total", "vm-f"), 4);
  assert.equal(owner("ioeventd_owner_triggers_total", OTHER_OWNER), 103);
  assert.equal(owner("ioeventd_owner_ioeventfds", OTHER_OWNER), 3);
  assert.equal(value(e, "ioeventd_owner_series_overflow_total"), 2);
  // __other__ never goes back either, when its owners leave.
  t.remove(c1);
  t.remove(c2);
  t.remove(d1);
  e = await t.scrape();
  assert.equal(owner("ioeventd_owner_triggers_total", OTHER_OWNER), 103);
  assert.equal(owner("ioeventd_owner_ioeventfds", OTHER_OWNER), 0);
  assert.equal(MAX_OWNER_SERIES, 256);
});

Deno.test("orphaned ioeventfds are counted by their cause", async () => {
  const t = await setup(MAX_OWNER_SERIES);
  const r1 = registration("ioe-1", "vm-a", 1n);
  const r2 = registration("ioe-2", "vm-a", 2n);
  t.add(r1);
  t.add(r2);
  let e = await t.scrape();
  assert.equal(value(e, "ioeventd_orphaned_ioeventfds", { cause: "DEVICE_NOT_FOUND" }), 0);
  assert.equal(value(e, "ioeventd_orphaned_ioeventfds", { cause: "OVERLAPS_MSIX_TABLE" }), 0);
  const orphan = (r: Registration, cause: string) => {
    t.native.delete(r.nativeId!);
    t.registry.emit({
      type: "UPDATED",
      registration: { ...r, state: "ORPHANED", nativeId: null, orphanCause: cause },
      final: null,
      revision: 0n,
    });
  };
  orphan(r1, "OVERLAPS_MSIX_TABLE");
  orphan(r2, "something odd");
  e = await t.scrape();
  assert.equal(value(e, "ioeventd_orphaned_ioeventfds", { cause: "OVERLAPS_MSIX_TABLE" }), 1);
  assert.equal(value(e, "ioeventd_orphaned_ioeventfds", { cause: "UNKNOWN" }), 1);
  assert.equal(value(e, "ioeventd_ioeventfds", { device: GPU, state: "orphaned" }), 2);
});

Deno.test("pci_bus_id is written as DCGM writes it: 8-digit domain, upper-case hex", () => {
  assert.equal(dcgmPciBusId("0000:65:00.0"), "00000000:65:00.0");
  assert.equal(dcgmPciBusId("0000:00:1b.0"), "00000000:00:1B.0");
  assert.equal(dcgmPciBusId("0001:af:1f.7"), "00000001:AF:1F.7");
  const gpu = {
    address: "0000:ca:00.0",
    vendorId: 0x10de,
    deviceId: 0x2330,
    driver: "vfio-pci",
    numaNode: 1,
    iommuGroup: 42,
    managed: true,
  } as PciDevice;
  assert.deepEqual(deviceInfoLabels(gpu, "node-7"), {
    device: "0000:ca:00.0",
    pci_bus_id: "00000000:CA:00.0",
    vendor: "0x10de",
    device_id: "0x2330",
    driver: "vfio-pci",
    numa_node: "1",
    iommu_group: "42",
    managed: "true",
    hostname: "node-7",
  });
  const bare = { ...gpu, driver: null, numaNode: null, iommuGroup: null, managed: false };
  assert.deepEqual(
    [deviceInfoLabels(bare, "h").driver, deviceInfoLabels(bare, "h").numa_node],
    ["", ""],
  );
});
