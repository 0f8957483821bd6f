// The data-plane metrics against a scripted registry and native snapshots: sums by (device,
// BAR), counters that never go backwards when ioeventfds are removed or orphaned, and the
// opt-in per-ioeventfd series.
import assert from "node:assert/strict";
import { Registry as PromRegistry } from "prom-client";
import type { Bar, PciDevice } from "../../service/devices/types.ts";
import { DataPlaneMetrics, type WatchableRegistry } from "../../service/metrics/data_plane.ts";
import type { RegistrationStats } from "../../service/native/engine.ts";
import type { Registration, RegistryEvent } from "../../service/registry/registry.ts";
import { parseExposition, select, value } from "./exposition.ts";

const GPU = "0000:65:00.0";
const NIC = "0000:66:00.0";
const BOUNDS = [100n, 200n, 500n, 1000n, 2000n];

function bar(index: number, eligible: boolean): Bar {
  return {
    index,
    start: 0,
    length: eligible ? 4096 : 0,
    kind: eligible ? "memory" : "absent",
    is64bit: false,
    prefetchable: false,
    resourcePath: null,
    mappable: eligible,
    eligible,
    ineligibleReason: eligible ? null : "ABSENT",
  };
}

function device(address: string, managed: boolean, eligible: number[]): PciDevice {
  return {
    address,
    sysfsPath: `/sys/bus/pci/devices/${address}`,
    vendorId: 0x10de,
    deviceId: 0x2330,
    subsystemVendorId: null,
    subsystemDeviceId: null,
    classCode: 0x030200,
    revision: 0,
    driver: managed ? "vfio-pci" : null,
    iommuGroup: null,
    numaNode: null,
    bars: [0, 1, 2, 3, 4, 5].map((i) => bar(i, eligible.includes(i))),
    msix: null,
    memoryDecode: true,
    configError: null,
    configProblem: null,
    resourceError: null,
    managed,
    unmanagedReason: managed ? null : "NOT_VFIO_BOUND",
    simulated: true,
  };
}

function registration(id: string, dev: string, barIndex: number, nativeId: bigint): Registration {
  return {
    id,
    owner: "vm-1",
    requestId: "",
    spec: {
      device: dev,
      bar: barIndex,
      offset: 0x100n,
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

/** A registry that emits what the test says, as the real one does after a commit. */
class ScriptedRegistry implements WatchableRegistry {
  listener: ((e: RegistryEvent) => void) | null = null;
  constructor(readonly initial: Registration[]) {}
  watch(_filter: object, listener: (e: RegistryEvent) => void) {
    this.listener = listener;
    return Promise.resolve({ snapshot: this.initial, unsubscribe: () => (this.listener = null) });
  }
  added(registration: Registration): void {
    this.listener!({ type: "ADDED", registration, revision: 0n });
  }
  /** Orphaned: `final` is what the data plane's unregister returned (null: not armed). */
  updated(registration: Registration, final: RegistrationStats | null = null): void {
    this.listener!({ type: "UPDATED", registration, final, revision: 0n });
  }
  removed(registration: Registration, final: RegistrationStats | null = null): void {
    this.listener!({ type: "REMOVED", registration, cause: "REQUEST", final, revision: 0n });
  }
}

/** A native engine as far as the metrics see it: counters per native id. */
class FakeEngine {
  stats = new Map<bigint, RegistrationStats>();
  set(id: bigint, triggers: number, signals: number, lastSeconds = 0): void {
    this.stats.set(id, {
      triggers: BigInt(triggers),
      signals: BigInt(signals),
      lastTriggerNs: BigInt(lastSeconds) * 1_000_000_000n,
    });
  }
  /** As the data plane's unregister: the final counters, then forgotten. */
  unregister(id: bigint): RegistrationStats | null {
    const final = this.stats.get(id) ?? null;
    this.stats.delete(id);
    return final;
  }
}

async function setup(perIoeventfd: boolean, initial: Registration[]) {
  const prom = new PromRegistry();
  const metrics = new DataPlaneMetrics(prom, { perIoeventfd, histogramBoundsNs: BOUNDS });
  const registry = new ScriptedRegistry(initial);
  await metrics.track(registry);
  const engine = new FakeEngine();
  const devices = [
    device(GPU, true, [0, 2]),
    device(NIC, true, [0]),
    device("0000:67:00.0", false, [0]),
  ];
  const scrape = async () => {
    metrics.update({
      registrations: engine.stats,
      workers: [],
      devices,
      maxPerDevice: 64,
    });
    return parseExposition(await prom.metrics());
  };
  return { metrics, registry, engine, scrape, devices };
}

Deno.test("series exist at zero for every eligible BAR of a managed device", async () => {
  const { scrape } = await setup(false, []);
  const e = await scrape();
  const triggers = select(e, "ioeventd_triggers_total");
  assert.deepEqual(
    triggers.map((s) => `${s.labels.device}/${s.labels.bar}=${s.value}`).sort(),
    [`${GPU}/0=0`, `${GPU}/2=0`, `${NIC}/0=0`],
  );
  assert.equal(select(e, "ioeventd_last_trigger_timestamp_seconds").length, 0);
  assert.equal(value(e, "ioeventd_ioeventfds", { device: GPU, state: "armed" }), 0);
  assert.equal(value(e, "ioeventd_ioeventfds_limit", { device: NIC }), 64);
  assert.equal(select(e, "ioeventd_ioeventfds_limit", { device: "0000:67:00.0" }).length, 0);
  assert.equal(e.families.get("ioeventd_triggers_total")?.type, "counter");
  assert.equal(e.families.has("ioeventd_ioeventfd_info"), false, "per-ioeventfd is opt-in");
});

Deno.test("counters sum by device and BAR and never go back on removal or orphaning", async () => {
  const a = registration("ioe-a", GPU, 0, 1n);
  const { registry, engine, scrape } = await setup(false, [a]);
  const b = registration("ioe-b", GPU, 0, 2n);
  const c = registration("ioe-c", GPU, 2, 3n);
  const d = registration("ioe-d", NIC, 0, 4n);
  for (const r of [b, c, d]) registry.added(r);
  engine.set(1n, 10, 15, 1_700_000_000);
  engine.set(2n, 5, 5, 1_700_000_100);
  engine.set(3n, 7, 9);
  engine.set(4n, 1, 1);
  let e = await scrape();
  assert.equal(value(e, "ioeventd_triggers_total", { device: GPU, bar: "0" }), 15);
  assert.equal(value(e, "ioeventd_signals_total", { device: GPU, bar: "0" }), 20);
  assert.equal(value(e, "ioeventd_triggers_total", { device: GPU, bar: "2" }), 7);
  assert.equal(value(e, "ioeventd_triggers_total", { device: NIC, bar: "0" }), 1);
  assert.equal(
    value(e, "ioeventd_last_trigger_timestamp_seconds", { device: GPU, bar: "0" }),
    1_700_000_100,
  );
  assert.equal(value(e, "ioeventd_ioeventfds", { device: GPU, state: "armed" }), 3);

  // More writes after the last scrape, then removed: its very last counts are kept.
  engine.set(1n, 12, 18, 1_700_000_200);
  const finalA = engine.unregister(1n);
  a.nativeId = null;
  registry.removed(a, finalA);
  e = await scrape();
  assert.equal(value(e, "ioeventd_triggers_total", { device: GPU, bar: "0" }), 17);
  assert.equal(value(e, "ioeventd_signals_total", { device: GPU, bar: "0" }), 23);
  assert.equal(
    value(e, "ioeventd_last_trigger_timestamp_seconds", { device: GPU, bar: "0" }),
    1_700_000_200,
  );
  assert.equal(value(e, "ioeventd_ioeventfds", { device: GPU, state: "armed" }), 2);

  // Orphaned (device gone): stops writing, keeps counting against the limit and its totals.
  engine.set(3n, 8, 10);
  const finalC = engine.unregister(3n);
  c.nativeId = null;
  c.state = "ORPHANED";
  registry.updated(c, finalC);
  e = await scrape();
  assert.equal(value(e, "ioeventd_triggers_total", { device: GPU, bar: "2" }), 8);
  assert.equal(value(e, "ioeventd_ioeventfds", { device: GPU, state: "orphaned" }), 1);
  assert.equal(value(e, "ioeventd_ioeventfds", { device: GPU, state: "armed" }), 1);
  registry.removed(c);
  e = await scrape();
  assert.equal(value(e, "ioeventd_triggers_total", { device: GPU, bar: "2" }), 8);
  assert.equal(value(e, "ioeventd_ioeventfds", { device: GPU, state: "orphaned" }), 0);

  // Without the final read (engine already gone), the last scraped counts are kept.
  engine.stats.delete(4n);
  d.nativeId = null;
  registry.removed(d);
  e = await scrape();
  assert.equal(value(e, "ioeventd_triggers_total", { device: NIC, bar: "0" }), 1);
});

Deno.test("writes between the last scrape and a removal are kept: final counts on the event", async () => {
  const { engine, registry, scrape } = await setup(false, []);
  const rs: Registration[] = [];
  for (let i = 1n; i <= 100n; i++) {
    engine.set(i, 1, 1);
    const r = registration(`ioe-${i}`, GPU, 0, i);
    registry.added(r);
    rs.push(r);
  }
  let e = await scrape();
  assert.equal(value(e, "ioeventd_triggers_total", { device: GPU, bar: "0" }), 100);
  // One more write each after that scrape, then every one removed before the next.
  for (const r of rs) engine.set(r.nativeId!, 2, 2);
  for (const r of rs) {
    const final = engine.unregister(r.nativeId!);
    r.nativeId = null;
    registry.removed(r, final);
  }
  e = await scrape();
  assert.equal(value(e, "ioeventd_triggers_total", { device: GPU, bar: "0" }), 200);
  assert.equal(value(e, "ioeventd_signals_total", { device: GPU, bar: "0" }), 200);
});

Deno.test("per-ioeventfd series and the info metric, when opted in", async () => {
  const a = registration("ioe-a", GPU, 0, 1n);
  const { engine, scrape } = await setup(true, [a]);
  engine.set(1n, 3, 4, 1_700_000_000);
  const e = await scrape();
  assert.equal(value(e, "ioeventd_ioeventfd_triggers_total", { id: "ioe-a" }), 3);
  assert.equal(value(e, "ioeventd_ioeventfd_signals_total", { id: "ioe-a" }), 4);
  assert.equal(
    value(e, "ioeventd_ioeventfd_last_trigger_timestamp_seconds", { id: "ioe-a" }),
    1_700_000_000,
  );
  assert.deepEqual(select(e, "ioeventd_ioeventfd_info")[0].labels, {
    id: "ioe-a",
    device: GPU,
    bar: "0",
    offset: "0x100",
    width: "4",
    owner: "vm-1",
    backend: "user-mmap",
  });
  // Per-ioeventfd series carry only the id: the info metric names the rest.
  assert.deepEqual(Object.keys(select(e, "ioeventd_ioeventfd_triggers_total")[0].labels), ["id"]);
});
