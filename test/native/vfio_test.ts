// The VFIO side of the binding on this host (the real device and kernel are in test/vm/):
// backend detection, backend reporting per registration, and refusals for a descriptor that
// is not a VFIO device. The registry's VFIO path (IoeventfdSpec.vfio_device) is tested in
// test/registry/vfio_registry_test.ts.
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  closeFd,
  createEventfd,
  detectBackends,
  NativeEngine,
  openVfioDevice,
  signalEventfd,
  vfioRegionInfo,
} from "../../service/native/engine.ts";
import { NativeError } from "../../service/native/errno.ts";
import { removeDir, tempDir } from "../support/agent.ts";

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
    }).id;
    assert.equal(engine.backend(id), "user-mmap");
    assert.throws(() => engine.backend(999n), (e: unknown) => e instanceof NativeError);

    assert.throws(
      () => openVfioDevice("ffff:ff:1f.7"),
      (e: unknown) => e instanceof NativeError && e.is("ENOENT"),
    );
    // An eventfd is not a VFIO device: refused, and the eventfd to arm stays the caller's.
    const notVfio = createEventfd();
    try {
      for (const mode of ["auto", "vfio-mmap", "kernel"] as const) {
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
