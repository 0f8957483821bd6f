// A device that vanishes (hot-unplug) or stops being managed: its ioeventfds stop writing,
// turn ORPHANED on the watch stream and in listings, survive a restart as orphans, and can
// be deleted.
import assert from "node:assert/strict";
import type { IoeventfdEvent__Output } from "../../service/api/generated/ioeventd/v1/IoeventfdEvent.ts";
import { simulatedSysfsRoot } from "../../service/config.ts";
import { bindSimulatedDriver, removeSimulatedDevice } from "../../service/devices/simulate.ts";
import { GPU, NIC, startAgent, tempDir } from "../support/agent.ts";
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
      for (const id of [onGpu.id, onNic.id]) {
        assert.equal((await t.client.get(id)).state, "ORPHANED");
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
