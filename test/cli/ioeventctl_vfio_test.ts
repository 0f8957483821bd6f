// ioeventctl and spec.vfio_device: --vfio-pid/--vfio-fd reach the agent (which refuses a
// descriptor that is not a vfio-pci device: exit 4 with the reason), a half-given pair is
// a usage error before any call (exit 2), and `list` says which backend serves each entry.
import assert from "node:assert/strict";
import { GPU } from "../support/agent.ts";
import { ctl, startCliAgent } from "../support/ioeventctl.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("ioeventctl: create --vfio-pid/--vfio-fd, and list's BACKEND column", opts, async () => {
  const t = await startCliAgent();
  const vmm = await SourceProcess.start(2);
  const address = t.agent.server.bound[0];
  try {
    const create = (offset: string, ...extra: string[]) =>
      ctl(
        address,
        "create",
        "--device",
        GPU,
        "--bar",
        "0",
        "--offset",
        offset,
        "--width",
        "4",
        "--data",
        "1",
        "--pid",
        String(vmm.pid),
        "--fd",
        String(vmm.fds[0]),
        "--owner",
        "vm-cli",
        ...extra,
      );
    const refused = await create("0x100", "--vfio-pid", String(vmm.pid), "--vfio-fd", "999");
    assert.equal(refused.code, 4, refused.err + refused.out);
    assert.match(refused.err, /VFIO_DEVICE_INVALID/);
    assert.match(refused.err, /spec\.vfio_device: .*no such open file descriptor/);

    const half = await create("0x100", "--vfio-pid", String(vmm.pid));
    assert.equal(half.code, 2);
    assert.match(half.err, /--vfio-fd: vfio_device\.fd must be a file descriptor/);

    const made = await create("0x100");
    assert.equal(made.code, 0, made.err + made.out);
    const list = (await ctl(address, "list", "--owner", "vm-cli")).out.split("\n");
    assert.match(list[0], /SOURCE\s+VFIO\s+BACKEND\s+STATE/);
    assert.match(list[1], new RegExp(`${vmm.pid}:${vmm.fds[0]}\\s+-\\s+user-mmap\\s+ARMED`));
  } finally {
    await vmm.kill();
    await t.stop();
  }
});
