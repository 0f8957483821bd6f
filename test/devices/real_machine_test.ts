// Reads this machine's real /sys/bus/pci/devices (read-only) and checks it against lspci, which
// parses the same sysfs files with its own code. Needs root (non-root readers get 64 bytes of
// config, so MSI-X is invisible) and the Debian package pciutils.

import assert from "node:assert/strict";
import { Inventory } from "../../service/devices/inventory.ts";
import { DevicePolicy } from "../../service/devices/policy.ts";
import { compareWithLspci, parseLspciVerbose, runLspci } from "./lspci_output.ts";

const SYSFS_DEVICES = "/sys/bus/pci/devices";

async function countEntries(dir: string): Promise<number> {
  let count = 0;
  try {
    for await (const _ of Deno.readDir(dir)) count++;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return count;
}

Deno.test("this machine's PCI devices agree with lspci on memory BARs and MSI-X", async () => {
  if (Deno.uid() !== 0) {
    throw new Error("run this test as root: non-root readers see only 64 bytes of config space");
  }
  const lspci = parseLspciVerbose(await runLspci(["-D", "-vv", "-nn"]));
  const inventory = new Inventory({
    roots: [{ path: SYSFS_DEVICES, simulated: false }],
    policy: new DevicePolicy(),
  });
  await inventory.scan();
  const devices = inventory.list();

  const comparison = compareWithLspci(devices, lspci);
  assert.deepEqual(comparison.mismatches, []);

  // The comparison must really have compared: every device, every memory BAR, every MSI-X.
  assert.equal(comparison.devicesCompared, await countEntries(SYSFS_DEVICES));
  const memoryBars = devices.flatMap((d) => d.bars.filter((b) => b.kind === "memory"));
  const withMsix = devices.filter((d) => d.msix !== null);
  assert.equal(comparison.memoryBarsCompared, memoryBars.length);
  assert.equal(comparison.msixCompared, withMsix.length);
  const lspciMemory = lspci.flatMap((d) => d.regions.filter((r) => r.kind === "memory"));
  if (lspciMemory.length > 0 || memoryBars.length > 0) {
    assert.ok(comparison.memoryBarsCompared > 0);
  }
  if (lspci.some((d) => d.msix !== null) || withMsix.length > 0) {
    assert.ok(comparison.msixCompared > 0);
  }
  for (const device of devices) {
    assert.equal(device.configError, null, `${device.address}: ${device.configError}`);
    assert.equal(device.simulated, false);
  }
  console.log(
    `compared ${comparison.devicesCompared} devices, ${comparison.memoryBarsCompared} memory ` +
      `BARs, ${comparison.msixCompared} MSI-X capabilities with lspci`,
  );
});
