// ioeventctl as a person or a pipeline uses it: a separate process, its output and its
// exit codes, against a real agent.
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GPU, tempDir } from "../support/agent.ts";
import { ctl, startCliAgent } from "../support/ioeventctl.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "ioeventctl: info, devices, create, list, get, delete, reconcile, with exit codes",
  opts,
  async () => {
    const t = await startCliAgent();
    const src = await SourceProcess.start(3);
    const address = t.agent.server.bound[0];
    try {
      const info = await ctl(address, "info");
      assert.equal(info.code, 0, info.err);
      assert.match(info.out, /ioeventd \d+\.\d+\.\d+/);
      assert.match(info.out, /widths: 1, 2, 4, 8/);

      const devices = await ctl(address, "devices");
      assert.equal(devices.code, 0, devices.err);
      assert.match(devices.out, /0000:65:00\.0\s+10de:/);
      const json = JSON.parse((await ctl(address, "--json", "devices")).out) as {
        address: string;
      }[];
      assert.ok(json.some((d) => d.address === GPU));
      const device = await ctl(address, "device", GPU);
      assert.match(device.out, /MSI-X: \d+ entries, table BAR0\+0x/);

      const created = await ctl(
        address,
        "--json",
        "create",
        "--device",
        GPU,
        "--bar",
        "0",
        "--offset",
        "0x88704",
        "--width",
        "4",
        "--data",
        "0",
        "--pid",
        String(src.pid),
        "--fd",
        String(src.fds[0]),
        "--owner",
        "vm-cli",
        "--label",
        "purpose=msi-rearm",
      );
      assert.equal(created.code, 0, created.err + created.out);
      const id = (JSON.parse(created.out) as { id: string }).id;
      assert.match((await ctl(address, "list", "--owner", "vm-cli")).out, new RegExp(id));
      assert.match((await ctl(address, "get", id)).out, /ARMED/);

      // Rejected by the agent: exit 4 and the reason, on stderr.
      const rejected = await ctl(
        address,
        "create",
        "--device",
        GPU,
        "--bar",
        "0",
        "--offset",
        "0x88704",
        "--width",
        "4",
        "--data",
        "0",
        "--pid",
        String(src.pid),
        "--fd",
        String(src.fds[1]),
        "--owner",
        "vm-cli",
      );
      assert.equal(rejected.code, 4);
      assert.match(rejected.err, /DUPLICATE/);
      assert.equal(rejected.out, "");
      // Rejected locally by the same rules before any call: exit 2.
      const usage = await ctl(address, "create", "--device", GPU, "--width", "3", "--owner", "x");
      assert.equal(usage.code, 2);
      assert.match(usage.err, /width/);

      const dir = tempDir();
      const desired = join(dir, "desired.json");
      writeFileSync(
        desired,
        JSON.stringify({
          owner: "vm-cli",
          desired: [
            {
              device: GPU,
              bar: 0,
              offset: "0x88704",
              width: 4,
              data: 0,
              source: { pid: src.pid, fd: src.fds[0] },
            },
            {
              device: GPU,
              bar: 0,
              offset: "0x100",
              width: 2,
              data: 1,
              source: { pid: src.pid, fd: src.fds[2] },
            },
          ],
        }),
      );
      const rec = await ctl(address, "reconcile", "-f", desired);
      assert.equal(rec.code, 0, rec.err);
      assert.match(rec.out, /added 1, kept 1, removed 0/);

      const del = await ctl(address, "delete", id);
      assert.equal(del.code, 0);
      assert.equal((await ctl(address, "delete", id)).code, 4);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test("ioeventctl: unreachable agent exits 3; sim create writes a sysfs-shaped device", async () => {
  const dir = tempDir();
  const gone = await ctl(`unix://${join(dir, "nothing.sock")}`, "info");
  assert.equal(gone.code, 3);
  const sim = await ctl("unused", "sim", "create", join(dir, "sys"), "--profile", "nic");
  assert.equal(sim.code, 0, sim.err);
  for (
    const f of ["config", "resource", "resource0", "vendor", "driver", "iommu_group", "numa_node"]
  ) {
    assert.ok(existsSync(join(dir, "sys", "bus", "pci", "devices", "0000:68:00.0", f)), f);
  }
  // Never at the address of a real device of this host (when it has any).
  const real = readdirSync("/sys/bus/pci/devices")[0];
  if (real) {
    const clash = await ctl("unused", "sim", "create", join(dir, "sys"), "--device", real);
    assert.equal(clash.code, 2);
    assert.match(clash.err, /real PCI device/);
  }
});
