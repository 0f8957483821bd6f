import assert from "node:assert/strict";
import { join } from "node:path";
import { Inventory } from "../../service/devices/inventory.ts";
import { DevicePolicy } from "../../service/devices/policy.ts";
import {
  createSimulatedDevice,
  createSimulatedHost,
  SIMULATED_GPU_ADDRESS,
  SIMULATED_NIC_ADDRESS,
} from "../../service/devices/simulate.ts";
import type { PciDevice } from "../../service/devices/types.ts";
import { compareWithLspci, parseLspciVerbose, runLspci } from "./lspci_output.ts";
import { withSimulatedRoot } from "./simulated_root.ts";

const MIB = 2 ** 20;

async function scanOnly(devices: string): Promise<PciDevice[]> {
  const inventory = new Inventory({
    roots: [{ path: devices, simulated: true }],
    policy: new DevicePolicy(),
  });
  await inventory.scan();
  return inventory.list();
}

Deno.test("the simulated host reads back through the inventory", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    const addresses = await createSimulatedHost(devices);
    assert.deepEqual(addresses, [SIMULATED_GPU_ADDRESS, SIMULATED_NIC_ADDRESS]);
    const [gpu, nic] = await scanOnly(devices);

    assert.equal(gpu.address, "0000:65:00.0");
    assert.deepEqual(
      [gpu.vendorId, gpu.deviceId, gpu.classCode, gpu.revision],
      [0x10de, 0x2330, 0x030200, 0xa1],
    );
    assert.deepEqual([gpu.subsystemVendorId, gpu.subsystemDeviceId], [0x10de, 0x16c1]);
    assert.equal(gpu.driver, "vfio-pci");
    assert.equal(gpu.managed, true);
    assert.equal(gpu.unmanagedReason, null);
    assert.equal(gpu.simulated, true);
    assert.equal(gpu.iommuGroup, 12);
    assert.equal(gpu.numaNode, 0);
    assert.equal(gpu.memoryDecode, true);
    assert.equal(gpu.configError, null);

    const bar0 = gpu.bars[0];
    assert.deepEqual(
      [bar0.kind, bar0.length, bar0.is64bit, bar0.prefetchable, bar0.eligible],
      ["memory", 16 * MIB, false, false, true],
    );
    assert.equal(bar0.resourcePath, join(devices, gpu.address, "resource0"));
    assert.deepEqual(
      [gpu.bars[1].kind, gpu.bars[1].length, gpu.bars[1].is64bit, gpu.bars[1].prefetchable],
      ["memory", 256 * MIB, true, true],
    );
    assert.equal(gpu.bars[1].eligible, true);
    assert.deepEqual(gpu.bars.map((b) => b.ineligibleReason), [
      null,
      null,
      "UPPER_HALF_OF_64BIT",
      null,
      "UPPER_HALF_OF_64BIT",
      "IO_BAR",
    ]);
    assert.equal(gpu.bars[3].length, 32 * MIB);
    assert.deepEqual([gpu.bars[5].kind, gpu.bars[5].length], ["io", 128]);
    assert.deepEqual(gpu.msix, {
      capabilityOffset: 0xc8,
      tableSize: 16,
      table: { bar: 0, offset: 0xb90000, length: 256 },
      pba: { bar: 0, offset: 0xba0000, length: 8 },
      enabled: false,
      functionMask: false,
    });

    assert.equal(nic.address, "0000:66:00.0");
    assert.deepEqual([nic.vendorId, nic.classCode], [0x8086, 0x020000]);
    assert.equal(nic.iommuGroup, 13);
    assert.equal(nic.managed, true);
    assert.deepEqual(nic.bars.map((b) => [b.kind, b.length, b.ineligibleReason]), [
      ["memory", 128 * 1024, null],
      ["absent", 0, "ABSENT"],
      ["absent", 0, "ABSENT"],
      ["memory", 16 * 1024, null],
      ["absent", 0, "ABSENT"],
      ["absent", 0, "ABSENT"],
    ]);
    assert.deepEqual(nic.msix?.table, { bar: 3, offset: 0, length: 64 * 16 });
    assert.deepEqual(nic.msix?.pba, { bar: 3, offset: 0x2000, length: 8 });
  });
});

Deno.test("lspci reads the simulated tree like a real one and agrees with the inventory", async () => {
  await withSimulatedRoot(async ({ sys, devices }) => {
    await createSimulatedHost(devices);
    const text = await runLspci([
      "-A",
      "linux-sysfs",
      "-O",
      `sysfs.path=${join(sys, "bus", "pci")}`,
      "-D",
      "-vv",
      "-nn",
    ]);
    const lspci = parseLspciVerbose(text);
    const comparison = compareWithLspci(await scanOnly(devices), lspci);
    assert.deepEqual(comparison.mismatches, []);
    assert.equal(comparison.devicesCompared, 2);
    assert.equal(comparison.memoryBarsCompared, 5, "GPU BAR0/1/3 and NIC BAR0/3");
    assert.equal(comparison.msixCompared, 2);
    // The I/O BAR, which compareWithLspci leaves aside.
    assert.deepEqual(
      lspci[0].regions.find((r) => r.kind === "io")?.size,
      128,
    );
  });
});

Deno.test("sysfs text files use the kernel's formats", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    const dir = await createSimulatedDevice(devices, "0000:65:00.0", "nvidia-gpu", {
      numaNode: 1,
    });
    const read = (name: string) => Deno.readTextFile(join(dir, name));
    assert.equal(await read("vendor"), "0x10de\n");
    assert.equal(await read("device"), "0x2330\n");
    assert.equal(await read("class"), "0x030200\n");
    assert.equal(await read("revision"), "0xa1\n");
    assert.equal(await read("numa_node"), "1\n");
    assert.equal((await read("resource")).trim().split("\n").length, 13);
    assert.equal((await Deno.readFile(join(dir, "config"))).length, 4096);
    assert.equal(await Deno.readLink(join(dir, "driver")), "../../drivers/vfio-pci");
  });
});

Deno.test("resourceN files are sparse, exactly BAR-sized, and open read-write", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    const dir = await createSimulatedDevice(devices, "0000:65:00.0", "nvidia-gpu");
    const bar1 = await Deno.stat(join(dir, "resource1"));
    assert.equal(bar1.isFile, true);
    assert.equal(bar1.size, 256 * MIB);
    assert.ok((bar1.blocks ?? 0) * 512 < MIB, "a 256 MiB BAR takes (almost) no disk");

    using file = await Deno.open(join(dir, "resource0"), { read: true, write: true });
    await file.seek(0x1000, Deno.SeekMode.Start);
    await file.write(new Uint8Array([1, 2, 3, 4]));
    assert.equal((await file.stat()).size, 16 * MIB, "writing inside does not grow it");
  });
});

Deno.test("re-creating a device keeps it well-formed (agent restart on the same root)", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    await createSimulatedHost(devices);
    await createSimulatedHost(devices);
    const [gpu, nic] = await scanOnly(devices);
    assert.equal(gpu.managed && nic.managed, true);
    assert.equal(gpu.iommuGroup, 12);
  });
});

Deno.test("addresses are accepted in any case and stored lowercase", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    const dir = await createSimulatedDevice(devices, "0000:6A:00.0", "nic");
    assert.ok(dir.endsWith("0000:6a:00.0"));
  });
});

Deno.test("simulated devices are never written into the real /sys", async () => {
  await assert.rejects(
    createSimulatedDevice("/sys/bus/pci/devices", "0000:65:00.0", "nic"),
    /refusing to create simulated devices under the real sysfs/,
  );
  await assert.rejects(
    createSimulatedDevice("/tmp/not-a-sysfs-shape", "0000:65:00.0", "nic"),
    /must end in bus\/pci\/devices/,
  );
  await assert.rejects(Deno.stat("/tmp/not-a-sysfs-shape"), Deno.errors.NotFound);
});
