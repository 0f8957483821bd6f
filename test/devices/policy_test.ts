import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigSpaceBuilder } from "../../service/devices/config_space_builder.ts";
import { Inventory } from "../../service/devices/inventory.ts";
import { DevicePolicy, type DevicePolicyRules } from "../../service/devices/policy.ts";
import { createSimulatedDevice } from "../../service/devices/simulate.ts";
import type { PciDevice } from "../../service/devices/types.ts";
import { withSimulatedRoot } from "./simulated_root.ts";

const GPU = "0000:65:00.0";
const NIC = "0000:66:00.0";

/** A GPU bound to `gpuDriver` and a NIC bound to its own driver "igb", read under `rules`. */
async function decide(
  rules: DevicePolicyRules,
  gpuDriver: string | null = "vfio-pci",
): Promise<{ gpu: PciDevice; nic: PciDevice }> {
  let result: { gpu: PciDevice; nic: PciDevice } | null = null;
  await withSimulatedRoot(async ({ devices }) => {
    await createSimulatedDevice(devices, GPU, "nvidia-gpu", { driver: gpuDriver });
    await createSimulatedDevice(devices, NIC, "nic", { driver: "igb" });
    const inventory = new Inventory({
      roots: [{ path: devices, simulated: true }],
      policy: new DevicePolicy(rules),
    });
    await inventory.scan();
    result = { gpu: inventory.get(GPU)!, nic: inventory.get(NIC)! };
  });
  return result!;
}

const reason = (d: PciDevice) => [d.managed, d.unmanagedReason];

Deno.test("vfio-pci devices are managed; others are NOT_VFIO_BOUND", async () => {
  const { gpu, nic } = await decide({});
  assert.deepEqual(reason(gpu), [true, null]);
  assert.deepEqual(reason(nic), [false, "NOT_VFIO_BOUND"]);
  assert.equal(nic.driver, "igb");
});

Deno.test("an unbound device is NOT_VFIO_BOUND", async () => {
  const { gpu } = await decide({}, null);
  assert.equal(gpu.driver, null);
  assert.deepEqual(reason(gpu), [false, "NOT_VFIO_BOUND"]);
});

Deno.test("allow-listing by address manages a device not bound to vfio-pci", async () => {
  assert.deepEqual(reason((await decide({ allow: [NIC] })).nic), [true, null]);
  // Any case, and lspci's domain-less form.
  assert.deepEqual(reason((await decide({ allow: ["66:00.0"] })).nic), [true, null]);
  assert.deepEqual(reason((await decide({ allow: ["0000:66:00.0".toUpperCase()] })).nic), [
    true,
    null,
  ]);
});

Deno.test("allow-listing by vendor:device manages every such device", async () => {
  const { gpu, nic } = await decide({ allow: ["8086:1521"] }, "nouveau");
  assert.deepEqual(reason(nic), [true, null]);
  assert.deepEqual(reason(gpu), [false, "NOT_VFIO_BOUND"]);
});

Deno.test("the deny-list overrides vfio-pci and the allow-list", async () => {
  assert.deepEqual(reason((await decide({ deny: [GPU] })).gpu), [false, "DENY_LISTED"]);
  assert.deepEqual(reason((await decide({ deny: ["10DE:2330"] })).gpu), [false, "DENY_LISTED"]);
  const both = await decide({ allow: [NIC, "10de:2330"], deny: ["8086:1521", "65:00.0"] });
  assert.deepEqual(reason(both.gpu), [false, "DENY_LISTED"]);
  assert.deepEqual(reason(both.nic), [false, "DENY_LISTED"]);
});

Deno.test("a malformed policy entry is refused, naming it", () => {
  assert.throws(() => new DevicePolicy({ allow: ["10de"] }), /"10de" is neither/);
  assert.throws(() => new DevicePolicy({ deny: ["0000:65:20.0"] }), /neither/);
});

Deno.test("a vfio-pci device whose config cannot be read completely is not managed", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    const truncated = await createSimulatedDevice(devices, GPU, "nvidia-gpu");
    const looping = await createSimulatedDevice(devices, NIC, "nic");
    // What a non-root reader of real sysfs gets.
    const full = await Deno.readFile(join(truncated, "config"));
    await Deno.writeFile(join(truncated, "config"), full.slice(0, 64));
    await Deno.writeFile(
      join(looping, "config"),
      new ConfigSpaceBuilder().u16(0, 0x8086).capability(0x40, 0x01).capability(0x50, 0x05)
        .u8(0x51, 0x40).build(),
    );
    const inventory = new Inventory({
      roots: [{ path: devices, simulated: true }],
      policy: new DevicePolicy(),
    });
    await inventory.scan();
    const gpu = inventory.get(GPU)!;
    assert.deepEqual(reason(gpu), [false, "CONFIG_UNREADABLE"]);
    assert.match(gpu.configError ?? "", /truncated.*needs root/);
    assert.equal(gpu.msix, null);
    const nic = inventory.get(NIC)!;
    assert.deepEqual(reason(nic), [false, "CONFIG_INVALID"]);
    assert.match(nic.configError ?? "", /loops/);
  });
});

Deno.test("a memory BAR without a resourceN file is NOT_MAPPABLE", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    const dir = await createSimulatedDevice(devices, NIC, "nic");
    await Deno.remove(join(dir, "resource0"));
    await Deno.remove(join(dir, "resource3"));
    await Deno.mkdir(join(dir, "resource3")); // exists, but is not a regular file
    const inventory = new Inventory({
      roots: [{ path: devices, simulated: true }],
      policy: new DevicePolicy(),
    });
    await inventory.scan();
    const bar0 = inventory.get(NIC)!.bars[0];
    assert.deepEqual(
      [bar0.kind, bar0.mappable, bar0.resourcePath, bar0.eligible, bar0.ineligibleReason],
      ["memory", false, null, false, "NOT_MAPPABLE"],
    );
    const bar3 = inventory.get(NIC)!.bars[3];
    assert.deepEqual(
      [bar3.mappable, bar3.resourcePath, bar3.ineligibleReason],
      [false, join(dir, "resource3"), "NOT_MAPPABLE"],
    );
  });
});
