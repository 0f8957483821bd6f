// A simulated device never shadows a real one: when a real device has its address, the real
// device is the one listed, and the simulated one is refused with an error in the JSON log.
// (A temporary tree plays the real root: what matters is the root's `simulated: false`.)
import assert from "node:assert/strict";
import { join } from "node:path";
import { Inventory } from "../../service/devices/inventory.ts";
import { DevicePolicy } from "../../service/devices/policy.ts";
import {
  createSimulatedDevice,
  removeSimulatedDevice,
  SIMULATED_GPU_ADDRESS as GPU,
  SIMULATED_NIC_ADDRESS as NIC,
} from "../../service/devices/simulate.ts";
import type { Fields, Level, Logger } from "../../service/log.ts";
import { withSimulatedRoot } from "./simulated_root.ts";

function capture(): Logger & { lines: { level: Level; msg: string; fields: Fields }[] } {
  const lines: { level: Level; msg: string; fields: Fields }[] = [];
  return { lines, log: (level, msg, fields = {}) => lines.push({ level, msg, fields }) };
}

Deno.test("a simulated device with a real device's address is refused, loudly", async () => {
  await withSimulatedRoot(async ({ devices: real }) => {
    await withSimulatedRoot(async ({ devices: sim }) => {
      await createSimulatedDevice(real, GPU, "nic"); // the "real" device: a NIC at 65:00.0
      await createSimulatedDevice(sim, GPU, "nvidia-gpu");
      await createSimulatedDevice(sim, NIC, "nic");
      const log = capture();
      const inventory = new Inventory({
        // The agent lists its simulated root first: the order must not let it win.
        roots: [{ path: sim, simulated: true }, { path: real, simulated: false }],
        policy: new DevicePolicy(),
        log,
      });
      const change = await inventory.scan();
      assert.deepEqual(change.added, [GPU, NIC]);
      const gpu = inventory.get(GPU)!;
      assert.equal(gpu.simulated, false);
      assert.equal(gpu.sysfsPath, join(real, GPU));
      assert.equal(gpu.vendorId, 0x8086, "the real device's identity, not the simulated one's");
      assert.equal(inventory.get(NIC)?.simulated, true, "other simulated devices stay");
      assert.equal(log.lines.length, 1, JSON.stringify(log.lines));
      const [line] = log.lines;
      assert.equal(line.level, "error");
      assert.match(line.msg, /simulated device refused/);
      assert.equal(line.fields.address, GPU);
      assert.equal(line.fields.simulated, join(sim, GPU));
      assert.equal(line.fields.real, join(real, GPU));
      await inventory.scan();
      assert.equal(log.lines.length, 1, "said once, not on every periodic scan");
    });
  });
});

Deno.test("a real device appearing at a simulated device's address is a change", async () => {
  await withSimulatedRoot(async ({ devices: real }) => {
    await withSimulatedRoot(async ({ devices: sim }) => {
      await createSimulatedDevice(sim, GPU, "nvidia-gpu");
      const inventory = new Inventory({
        roots: [{ path: sim, simulated: true }, { path: real, simulated: false }],
        policy: new DevicePolicy(),
        log: capture(),
      });
      await inventory.scan();
      assert.equal(inventory.get(GPU)?.simulated, true);
      // Same profile, same layout: only where it lives differs. Its ioeventfds must go.
      await createSimulatedDevice(real, GPU, "nvidia-gpu");
      assert.deepEqual((await inventory.scan()).changed, [GPU]);
      assert.equal(inventory.get(GPU)?.simulated, false);
      await removeSimulatedDevice(real, GPU);
      assert.deepEqual((await inventory.scan()).changed, [GPU]);
    });
  });
});

Deno.test("inventory warnings go to its logger, never to the console", async () => {
  const log = capture();
  const original = console.warn;
  const consoleLines: unknown[] = [];
  console.warn = (...args: unknown[]) => consoleLines.push(args);
  try {
    const missing = "/nonexistent/bus/pci/devices";
    const inventory = new Inventory({
      roots: [{ path: missing, simulated: true }],
      policy: new DevicePolicy(),
      log,
    });
    await inventory.scan();
    assert.deepEqual(consoleLines, []);
    assert.equal(log.lines[0]?.msg, "cannot read a sysfs root");
    assert.equal(log.lines[0]?.fields.root, missing);
  } finally {
    console.warn = original;
  }
});
