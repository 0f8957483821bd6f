// The VFIO side of the binding on this host (the real device and kernel are in test/vm/):
// backend detection, backend reporting per registration, refusals for a descriptor that is
// not a VFIO device, and the registry routing a VFIO-backed device through registerVfio
// and recording which backend serves each ioeventfd.
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSimulatedHost } from "../../service/devices/simulate.ts";
import { Inventory } from "../../service/devices/inventory.ts";
import { DevicePolicy } from "../../service/devices/policy.ts";
import {
  closeFd,
  createEventfd,
  detectBackends,
  NativeEngine,
  openVfioDevice,
  signalEventfd,
  vfioRegionInfo,
  type VfioRegistrationRequest,
} from "../../service/native/engine.ts";
import { NativeError } from "../../service/native/errno.ts";
import { Journal } from "../../service/registry/journal.ts";
import { type DataPlane, Registry } from "../../service/registry/registry.ts";
import { WIDTHS } from "../../service/registry/validation.ts";
import { GPU, NIC, removeDir, tempDir } from "../support/agent.ts";
import { waitForBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const engineOptions = {
  workers: 1,
  canaryPeriodUs: 0,
  pollMode: "block",
  spinBudgetUs: 0,
} as const;

Deno.test("backends are detected on this host, not assumed", () => {
  const d = detectBackends();
  assert.equal(d.backends[0], "user-mmap");
  if (!existsSync("/dev/vfio/vfio")) assert.equal(d.vfioContainer, false);
  if (!existsSync("/sys/bus/pci/drivers/vfio-pci")) assert.equal(d.vfioPci, false);
  assert.equal(d.backends.includes("kernel"), d.vfioContainer && d.vfioPci);
  assert.equal(d.backends.includes("vfio-mmap"), d.vfioContainer && d.vfioPci);
});

Deno.test("each registration says which backend serves it; non-VFIO fds are refused", opts, () => {
  const dir = tempDir("ioeventd-vfio-");
  const engine = NativeEngine.open(engineOptions);
  const bar = join(dir, "resource0");
  writeFileSync(bar, new Uint8Array(4096));
  const efd = createEventfd();
  const other = createEventfd();
  try {
    const id = engine.register({
      barPath: bar,
      offset: 16n,
      width: 4,
      data: 1n,
      fd: efd,
      pid: 0,
      pidStart: 0n,
    });
    assert.equal(engine.backend(id), "user-mmap");
    assert.throws(() => engine.backend(999n), (e: unknown) => e instanceof NativeError);

    assert.throws(
      () => openVfioDevice("ffff:ff:1f.7"),
      (e: unknown) => e instanceof NativeError && e.is("ENOENT"),
    );
    // An eventfd is not a VFIO device: refused, and the eventfd to arm stays the caller's.
    const notVfio = createEventfd();
    try {
      for (const mode of ["auto", "user", "kernel"] as const) {
        assert.throws(
          () =>
            engine.registerVfio({
              vfioFd: notVfio,
              bar: 2,
              offset: 0n,
              width: 4,
              data: 1n,
              fd: other,
              pid: 0,
              pidStart: 0n,
              mode,
            }),
          (e: unknown) => e instanceof NativeError && e.is("ENODEV"),
        );
      }
      assert.throws(
        () => vfioRegionInfo(notVfio, 0),
        (e: unknown) => e instanceof NativeError && e.is("EMEDIUMTYPE"),
      );
      signalEventfd(other);
    } finally {
      closeFd(notVfio);
    }
    engine.unregister(id);
  } finally {
    closeFd(other);
    engine.close();
    removeDir(dir);
  }
});

Deno.test(
  "registry: a VFIO-backed device goes through registerVfio (auto) and keeps its backend",
  opts,
  async () => {
    const dir = tempDir("ioeventd-vfio-reg-");
    const root = join(dir, "sys", "bus", "pci", "devices");
    await createSimulatedHost(root);
    const engine = NativeEngine.open(engineOptions);
    const journal = Journal.open(join(dir, "journal.sqlite"));
    const src = await SourceProcess.start(2);
    try {
      const inventory = new Inventory({
        roots: [{ path: root, simulated: true }],
        policy: new DevicePolicy({ allow: [], deny: [] }),
      });
      await inventory.scan();
      // The simulated host has no VFIO: stand in for the kernel with the engine itself
      // (writing into the simulated BAR file), and record what the registry asked for.
      const asked: VfioRegistrationRequest[] = [];
      const plane: DataPlane = {
        acquireSource: (pid, fd, expect) => engine.acquireSource(pid, fd, expect),
        releaseSource: (fd) => engine.releaseSource(fd),
        register: (r) => engine.register(r),
        unregister: (id) => engine.unregister(id),
        registrationStats: () => engine.registrationStats(),
        registerVfio(r) {
          asked.push(r);
          const id = engine.register({
            barPath: join(root, GPU, `resource${r.bar}`),
            offset: r.offset,
            width: r.width,
            data: r.data,
            fd: r.fd,
            pid: r.pid,
            pidStart: r.pidStart,
          });
          return { id, backend: "kernel" };
        },
      };
      const registry = new Registry(
        plane,
        journal,
        inventory,
        { maxPerDevice: 100, maxPerOwner: 100 },
        WIDTHS,
      );
      registry.vfio = { fdFor: (address) => (address === GPU ? 1234 : undefined) };
      const spec = (device: string, fd: number) => ({
        device,
        bar: 0,
        offset: "64",
        width: 4,
        data: "7",
        source: { pid: src.pid, fd },
      });
      const viaVfio = await registry.create({ owner: "vm-a", spec: spec(GPU, src.fds[0]) });
      const viaSysfs = await registry.create({ owner: "vm-a", spec: spec(NIC, src.fds[1]) });
      assert.equal(viaVfio.registration.backend, "kernel");
      assert.equal(viaSysfs.registration.backend, "user-mmap");
      assert.equal(asked.length, 1);
      assert.deepEqual(
        {
          vfioFd: asked[0].vfioFd,
          bar: asked[0].bar,
          offset: asked[0].offset,
          mode: asked[0].mode,
        },
        { vfioFd: 1234, bar: 0, offset: 64n, mode: "auto" },
      );
      await src.signal(0);
      await waitForBar(join(root, GPU, "resource0"), 64, 4, 7n);
      await registry.settled();
    } finally {
      await src.kill();
      journal.close();
      engine.close();
      removeDir(dir);
    }
  },
);
