// A device that vanishes (hot-unplug) or stops being managed: its ioeventfds stop writing,
// turn ORPHANED on the watch stream and in listings, survive a restart as orphans, and can
// be deleted.
import assert from "node:assert/strict";
import type { IoeventfdEvent__Output } from "../../service/api/generated/ioeventd/v1/IoeventfdEvent.ts";
import { simulatedSysfsRoot } from "../../service/config.ts";
import {
  bindSimulatedDriver,
  createSimulatedDevice,
  removeSimulatedDevice,
} from "../../service/devices/simulate.ts";
import { barPath, GPU, NIC, startAgent, tempDir } from "../support/agent.ts";
import { readBar, waitForBar, writeBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

Deno.test(
  "orphans: unplugged or unbound devices orphan their ioeventfds, reported and removable",
  opts,
  async () => {
    const stateDir = tempDir();
    let t = await startAgent({}, stateDir);
    const src = await SourceProcess.start(2);
    const events: IoeventfdEvent__Output[] = [];
    try {
      const spec = (device: string, i: number) => ({
        device,
        bar: 0,
        offset: "256",
        width: 4,
        data: "1",
        source: { pid: src.pid, fd: src.fds[i] },
      });
      const onGpu = await t.client.create({ owner: "vm-o", spec: spec(GPU, 0) });
      const onNic = await t.client.create({ owner: "vm-o", spec: spec(NIC, 1) });
      const call = t.client.watch({}, (e) => events.push(e));
      const root = simulatedSysfsRoot(t.config);

      await removeSimulatedDevice(root, GPU); // hot-unplug
      await bindSimulatedDriver(root, NIC, "nvme"); // rebound to a host driver: not ours any more
      await until(
        () => events.filter((e) => e.type === "UPDATED").length === 2,
        "two UPDATED events",
      );
      for (
        const [id, cause] of [[onGpu.id, "DEVICE_NOT_FOUND"], [onNic.id, "DEVICE_NOT_MANAGED"]]
      ) {
        const got = await t.client.get(id);
        assert.equal(got.state, "ORPHANED");
        assert.equal(got.orphanCause, cause);
      }
      assert.equal(t.agent.engine.info().registrations, 0, "orphans no longer write");
      call.cancel();

      // Orphans are remembered across a restart, still reported.
      await t.stop();
      t = await startAgent({}, stateDir);
      assert.equal((await t.client.get(onGpu.id)).state, "ORPHANED");
      await t.client.delete({ id: onGpu.id });
      await t.client.delete({ id: onNic.id });
      assert.equal((await t.client.list({})).totalSize, 0);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test("orphans: ListDevices{rescan} notices a hot-unplug at once", opts, async () => {
  const t = await startAgent({ rescanIntervalMs: 3_600_000 }, tempDir());
  const src = await SourceProcess.start(1);
  try {
    const created = await t.client.create({
      owner: "vm-r",
      spec: {
        device: NIC,
        bar: 0,
        offset: "0",
        width: 4,
        data: "1",
        source: { pid: src.pid, fd: src.fds[0] },
      },
    });
    await removeSimulatedDevice(simulatedSysfsRoot(t.config), NIC);
    assert.equal((await t.client.listDevices()).length, 2, "no periodic scan has run yet");
    const devices = await t.client.listDevices(false, true);
    assert.deepEqual(devices.map((d) => d.address), [GPU]);
    assert.equal((await t.client.get(created.id)).state, "ORPHANED");
  } finally {
    await src.kill();
    await t.stop();
  }
});

Deno.test(
  "orphans: a device that changes under an armed register stops writing there, ORPHANED with the rule it fails",
  opts,
  async () => {
    const stateDir = tempDir();
    let t = await startAgent({ rescanIntervalMs: 3_600_000 }, stateDir);
    const src = await SourceProcess.start(3);
    const events: IoeventfdEvent__Output[] = [];
    try {
      const spec = (bar: number, offset: number, i: number) => ({
        device: GPU,
        bar,
        offset: String(offset),
        width: 4,
        data: String(0x11 * (i + 1)),
        source: { pid: src.pid, fd: src.fds[i] },
      });
      const bar0 = barPath(t.config, GPU, 0);
      const bar1 = barPath(t.config, GPU, 1);
      const underTable = await t.client.create({ owner: "vm-c", spec: spec(0, 0x100000, 0) });
      const pastEnd = await t.client.create({ owner: "vm-c", spec: spec(1, 2 << 20, 1) });
      const fine = await t.client.create({ owner: "vm-c", spec: spec(0, 0x200, 2) });
      await src.signal(2);
      await waitForBar(bar0, 0x200, 4, 0x33n);
      const call = t.client.watch({}, (e) => events.push(e));

      // The MSI-X table moves onto the first register, BAR1 shrinks to 1 MiB: a rescan.
      await createSimulatedDevice(simulatedSysfsRoot(t.config), GPU, "nvidia-gpu", {
        iommuGroup: 12,
        msixTableOffset: 0x100000,
        reportedBarLengths: { 1: 1 << 20 },
      });
      await t.client.listDevices(false, true);
      await until(() => events.filter((e) => e.type === "UPDATED").length === 2, "UPDATED x2");
      assert.equal((await t.client.get(underTable.id)).orphanCause, "OVERLAPS_MSIX_TABLE");
      assert.equal((await t.client.get(pastEnd.id)).orphanCause, "OUT_OF_BAR");
      assert.equal((await t.client.get(fine.id)).state, "ARMED", "the unaffected one stays");
      const updated = events.filter((e) => e.type === "UPDATED").map((e) => e.ioeventfd!);
      assert.deepEqual(
        updated.map((i) => [i.id, i.state, i.orphanCause]).sort(),
        [
          [pastEnd.id, "ORPHANED", "OUT_OF_BAR"],
          [underTable.id, "ORPHANED", "OVERLAPS_MSIX_TABLE"],
        ].sort(),
        "reported on the watch stream with the cause",
      );
      // Their next signals write nothing where they must not; the other one still writes.
      writeBar(bar0, 0x200, 4, 0n);
      await src.signal(0);
      await src.signal(1);
      await src.signal(2);
      await waitForBar(bar0, 0x200, 4, 0x33n);
      assert.equal(readBar(bar0, 0x100000, 4), 0n, "nothing in the new MSI-X table");
      assert.equal(readBar(bar1, 2 << 20, 4), 0n, "nothing past the new end of BAR1");
      call.cancel();

      // A restart judges the device again: still orphaned, with the same causes.
      await t.stop();
      t = await startAgent({ rescanIntervalMs: 3_600_000 }, stateDir);
      assert.equal((await t.client.get(underTable.id)).orphanCause, "OVERLAPS_MSIX_TABLE");
      assert.equal((await t.client.get(pastEnd.id)).state, "ORPHANED");
      assert.equal((await t.client.get(fine.id)).state, "ARMED");
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);
