import assert from "node:assert/strict";
import type { Logger } from "../../service/log.ts";
import { join } from "node:path";
import { Inventory, type InventoryChange } from "../../service/devices/inventory.ts";
import { encodeMsixCapabilityBody } from "../../service/devices/msix.ts";
import { DevicePolicy } from "../../service/devices/policy.ts";
import {
  bindSimulatedDriver,
  createSimulatedDevice,
  createSimulatedHost,
  removeSimulatedDevice,
} from "../../service/devices/simulate.ts";
import { withSimulatedRoot } from "./simulated_root.ts";

const GPU = "0000:65:00.0";
const NIC = "0000:66:00.0";
const NO_CHANGE: InventoryChange = { added: [], removed: [], changed: [] };

function inventoryOf(...paths: string[]): Inventory {
  return new Inventory({
    roots: paths.map((path) => ({ path, simulated: true })),
    policy: new DevicePolicy(),
  });
}

/** A logger that keeps what the inventory reports. */
function capturingLog(): { lines: Record<string, unknown>[]; log: Logger } {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: { log: (level, msg, fields) => lines.push({ level, msg, ...fields }) } };
}

Deno.test("first scan adds everything; an unchanged rescan reports nothing", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    await createSimulatedHost(devices);
    const inventory = inventoryOf(devices);
    assert.deepEqual(await inventory.scan(), { added: [GPU, NIC], removed: [], changed: [] });
    assert.deepEqual(await inventory.scan(), NO_CHANGE);
    assert.deepEqual(inventory.list().map((d) => d.address), [GPU, NIC]);
  });
});

Deno.test("hot-unplug: a removed device directory is reported removed, and re-added", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    await createSimulatedHost(devices);
    const inventory = inventoryOf(devices);
    await inventory.scan();
    await removeSimulatedDevice(devices, GPU);
    assert.deepEqual(await inventory.scan(), { added: [], removed: [GPU], changed: [] });
    assert.equal(inventory.get(GPU), undefined);
    assert.deepEqual(inventory.list().map((d) => d.address), [NIC]);
    await createSimulatedDevice(devices, GPU, "nvidia-gpu");
    assert.deepEqual(await inventory.scan(), { added: [GPU], removed: [], changed: [] });
  });
});

Deno.test("rebinding the driver is a change, and flips management", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    await createSimulatedHost(devices);
    const inventory = inventoryOf(devices);
    await inventory.scan();
    await bindSimulatedDriver(devices, NIC, "igb");
    assert.deepEqual(await inventory.scan(), { added: [], removed: [], changed: [NIC] });
    assert.deepEqual(
      [
        inventory.get(NIC)?.driver,
        inventory.get(NIC)?.managed,
        inventory.get(NIC)?.unmanagedReason,
      ],
      ["igb", false, "NOT_VFIO_BOUND"],
    );
    await bindSimulatedDriver(devices, NIC, null);
    assert.deepEqual((await inventory.scan()).changed, [NIC]);
    assert.equal(inventory.get(NIC)?.driver, null);
    await bindSimulatedDriver(devices, NIC, "vfio-pci");
    assert.deepEqual((await inventory.scan()).changed, [NIC]);
    assert.equal(inventory.get(NIC)?.managed, true);
  });
});

Deno.test("a resized BAR is a change; MSI-X being enabled by a guest is not", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    const dir = await createSimulatedDevice(devices, GPU, "nvidia-gpu");
    const inventory = inventoryOf(devices);
    await inventory.scan();

    const config = await Deno.readFile(join(dir, "config"));
    config[0xc8 + 3] |= 0x80; // Message Control bit 15: enable
    await Deno.writeFile(join(dir, "config"), config);
    assert.deepEqual(await inventory.scan(), NO_CHANGE);
    assert.equal(inventory.get(GPU)?.msix?.enabled, true);

    const resource = await Deno.readTextFile(join(dir, "resource"));
    await Deno.writeTextFile(
      join(dir, "resource"),
      resource.replace(/^(\S+) (\S+)/, (_, s) => {
        const start = BigInt(s);
        return `${s} 0x${(start + 0x2000000n - 1n).toString(16).padStart(16, "0")}`;
      }),
    );
    assert.deepEqual(await inventory.scan(), { added: [], removed: [], changed: [GPU] });
    assert.equal(inventory.get(GPU)?.bars[0].length, 32 * 2 ** 20);
  });
});

Deno.test("addresses are looked up in any case and without the domain", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    await createSimulatedDevice(devices, "0000:6a:00.0", "nic");
    const inventory = inventoryOf(devices);
    await inventory.scan();
    assert.equal(inventory.get("0000:6A:00.0")?.address, "0000:6a:00.0");
    assert.equal(inventory.get("6a:00.0")?.address, "0000:6a:00.0");
    assert.equal(inventory.get("not an address"), undefined);
  });
});

Deno.test("the same address in two roots: the first root wins, with a warning", async () => {
  await withSimulatedRoot(async ({ devices: first }) => {
    await withSimulatedRoot(async ({ devices: second }) => {
      await createSimulatedDevice(first, GPU, "nvidia-gpu");
      await createSimulatedDevice(second, GPU, "nic");
      await createSimulatedDevice(second, NIC, "nic");
      const { lines, log } = capturingLog();
      const inventory = new Inventory({
        roots: [first, second].map((path) => ({ path, simulated: true })),
        policy: new DevicePolicy(),
        log,
      });
      const result = await inventory.scan();
      assert.deepEqual(result.added, [GPU, NIC]);
      assert.equal(inventory.get(GPU)?.vendorId, 0x10de);
      assert.equal(inventory.get(GPU)?.sysfsPath, join(first, GPU));
      assert.equal(lines.length, 1);
      assert.deepEqual(lines[0], {
        level: "warn",
        msg: "device ignored; already found",
        address: GPU,
        ignored: join(second, GPU),
        found: join(first, GPU),
      });
      // Not repeated on every periodic scan.
      await inventory.scan();
      assert.equal(lines.length, 1);
    });
  });
});

Deno.test("real and simulated roots together keep the simulated flag per root", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    await createSimulatedHost(devices);
    const inventory = new Inventory({
      roots: [{ path: "/sys/bus/pci/devices", simulated: false }, {
        path: devices,
        simulated: true,
      }],
      policy: new DevicePolicy(),
    });
    await inventory.scan();
    assert.equal(inventory.get(GPU)?.simulated, true);
    for (const device of inventory.list()) {
      if (device.address !== GPU && device.address !== NIC) assert.equal(device.simulated, false);
    }
  });
});

Deno.test("a missing root is a warning and no devices, not a failure", async () => {
  const { lines, log } = capturingLog();
  const inventory = new Inventory({
    roots: [{ path: "/nonexistent/bus/pci/devices", simulated: true }],
    policy: new DevicePolicy(),
    log,
  });
  const result = await inventory.scan();
  assert.deepEqual(result, NO_CHANGE);
  assert.equal(inventory.list().length, 0);
  assert.equal(lines.length, 1);
  assert.equal(lines[0].msg, "cannot read a sysfs root");
  assert.equal(lines[0].root, "/nonexistent/bus/pci/devices");
});

Deno.test("broken devices are listed with their problem and do not stop the scan", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    await createSimulatedHost(devices);
    const cut = await createSimulatedDevice(devices, "0000:67:00.0", "nvidia-gpu");
    const badBir = await createSimulatedDevice(devices, "0000:68:00.0", "nic");
    const outside = await createSimulatedDevice(devices, "0000:69:00.0", "nic");
    const garbage = await createSimulatedDevice(devices, "0000:6b:00.0", "nic");
    await Deno.mkdir(join(devices, "0000:6c:00.0")); // a directory with nothing in it
    await Deno.mkdir(join(devices, "not-a-device"));

    const gpuConfig = await Deno.readFile(join(cut, "config"));
    await Deno.writeFile(join(cut, "config"), gpuConfig.slice(0, 0xc8 + 6));
    const nicConfig = await Deno.readFile(join(badBir, "config"));
    const msixAt = 0x70;
    nicConfig.set(
      encodeMsixCapabilityBody({
        tableSize: 64,
        tableBar: 7,
        tableOffset: 0,
        pbaBar: 3,
        pbaOffset: 0x2000,
      }),
      msixAt + 2,
    );
    await Deno.writeFile(join(badBir, "config"), nicConfig);
    nicConfig.set(
      encodeMsixCapabilityBody({
        tableSize: 64,
        tableBar: 3,
        tableOffset: 0x3f00,
        pbaBar: 3,
        pbaOffset: 0x2000,
      }),
      msixAt + 2,
    );
    await Deno.writeFile(join(outside, "config"), nicConfig);
    await Deno.writeTextFile(join(garbage, "resource"), "this is not a resource table\n");

    const inventory = inventoryOf(devices);
    const change = await inventory.scan();
    assert.deepEqual(change.added, [
      GPU,
      NIC,
      "0000:67:00.0",
      "0000:68:00.0",
      "0000:69:00.0",
      "0000:6b:00.0",
      "0000:6c:00.0",
    ]);
    const problem = (address: string) => {
      const d = inventory.get(address)!;
      return [d.managed, d.unmanagedReason, d.configError ?? d.resourceError];
    };
    assert.deepEqual(problem(GPU), [true, null, null]);
    assert.deepEqual(problem("0000:67:00.0"), [
      false,
      "CONFIG_UNREADABLE",
      "config space truncated: MSI-X capability at 0xc8 needs 12 bytes but only 6 were read",
    ]);
    assert.deepEqual(problem("0000:68:00.0").slice(0, 2), [false, "CONFIG_INVALID"]);
    assert.match(String(problem("0000:68:00.0")[2]), /BAR indicator 7/);
    assert.deepEqual(problem("0000:69:00.0"), [
      false,
      "CONFIG_INVALID",
      "MSI-X table (offset 0x3f00, 1024 bytes) runs past the end of BAR 3 (16384 bytes)",
    ]);
    assert.deepEqual(problem("0000:6b:00.0").slice(0, 2), [false, "RESOURCE_UNREADABLE"]);
    assert.match(String(problem("0000:6b:00.0")[2]), /resource is cut short/);
    const empty = inventory.get("0000:6c:00.0")!;
    assert.deepEqual(
      [empty.vendorId, empty.driver, empty.unmanagedReason, empty.memoryDecode],
      [0xffff, null, "NOT_VFIO_BOUND", null],
    );
    assert.match(empty.configError ?? "", /cannot read config/);
    assert.deepEqual(empty.bars.map((b) => b.kind), new Array(6).fill("absent"));
  });
});

Deno.test("memory decoding switched off is reported", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    const dir = await createSimulatedDevice(devices, NIC, "nic");
    const config = await Deno.readFile(join(dir, "config"));
    config[0x04] &= ~0x02;
    await Deno.writeFile(join(dir, "config"), config);
    const inventory = inventoryOf(devices);
    await inventory.scan();
    assert.equal(inventory.get(NIC)?.memoryDecode, false);
  });
});

Deno.test("periodic scanning reports a hot-unplug and stops when asked", async () => {
  await withSimulatedRoot(async ({ devices }) => {
    await createSimulatedHost(devices);
    const inventory = inventoryOf(devices);
    const changes: InventoryChange[] = [];
    let notify: () => void = () => {};
    const next = () => new Promise<void>((resolve) => notify = resolve);

    let seen = next();
    inventory.startPeriodic(10, (change) => {
      changes.push(change);
      notify();
    });
    await seen;
    assert.deepEqual(changes[0].added, [GPU, NIC]);

    seen = next();
    await removeSimulatedDevice(devices, NIC);
    await seen;
    assert.deepEqual(changes[1], { added: [], removed: [NIC], changed: [] });
    assert.equal(changes.length, 2, "unchanged scans in between are not reported");

    await inventory.stop();
    await createSimulatedDevice(devices, NIC, "nic");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(changes.length, 2, "no scan after stop()");
    assert.equal(inventory.get(NIC), undefined);
  });
});
