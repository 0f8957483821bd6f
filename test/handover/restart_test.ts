// Nothing handed over is lost across a restart. The agent keeps no copy of a handed-over
// eventfd it could recover after a crash, so, after a graceful stop or a kill -9, every
// handed-over registration comes back as NEEDS_SOURCE (on the API and the watch) — never
// silently dropped — and the VMM re-arms all of them in one step by handing the same
// eventfds over again when it reconnects (vhost-user style). A sender that exited is removed.
import assert from "node:assert/strict";
import { join } from "node:path";
import { GPU, removeDir, spawnAgent, tempDir } from "../support/agent.ts";
import { waitForBar } from "../support/bar_file.ts";
import { HandoverVmm, until } from "./vmm.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function bar(stateDir: string): string {
  return join(stateDir, "sim", "sys", "bus", "pci", "devices", GPU, "resource0");
}

function spec(handle: string, offset: number, data: number) {
  return {
    device: GPU,
    bar: 0,
    offset: String(offset),
    width: 4,
    data: String(data),
    source: { pid: 0, fd: 0, handle },
  };
}

for (const how of ["kill -9", "SIGTERM"] as const) {
  Deno.test(
    `restart (${how}): handed-over registrations wait as NEEDS_SOURCE, one re-send re-arms them`,
    opts,
    async () => {
      const dir = tempDir("ioeventd-ho-restart-");
      let proc = await spawnAgent(dir);
      const socket = join(dir, "run", "handover.sock");
      const vmm = await HandoverVmm.start(socket, "vm-r", 3);
      try {
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          const r = await proc.client.create({
            owner: "vm-r",
            spec: spec(vmm.handles[i], 0x88704 + 4 * i, 0x10 + i),
          });
          ids.push(r.id);
        }
        if (how === "kill -9") await proc.crash();
        else {
          proc.kill("SIGTERM");
          await proc.exited;
          proc.client.close();
        }
        // Signalled while no agent runs: counted in the eventfd, written after the re-arm.
        await vmm.signal(0);
        proc = await spawnAgent(dir);
        const waiting = (await proc.client.list({ owner: "vm-r" })).ioeventfds;
        assert.deepEqual(waiting.map((r) => r.id).sort(), [...ids].sort());
        assert.ok(
          waiting.every((r) => r.state === "NEEDS_SOURCE"),
          JSON.stringify(waiting.map((r) => r.state)),
        );
        // The VMM reconnects and hands its eventfds over again: everything is armed.
        await vmm.resend();
        await until(async () =>
          (await proc.client.list({ owner: "vm-r" })).ioeventfds.every((r) => r.state === "ARMED")
        );
        await waitForBar(bar(dir), 0x88704, 4, 0x10n); // the signal sent meanwhile
        await vmm.signal(2);
        await waitForBar(bar(dir), 0x88704 + 8, 4, 0x12n);
        // The VMM's exit removes them (SOURCE_EXIT), as for any armed source.
        await vmm.kill();
        await until(async () =>
          (await proc.client.list({ owner: "vm-r" })).ioeventfds.length === 0
        );
      } finally {
        await vmm.kill();
        proc.kill("SIGTERM");
        await proc.exited;
        proc.client.close();
        removeDir(dir);
      }
    },
  );
}

Deno.test(
  "restart: a sender that exited while the agent was down is dropped, not kept",
  opts,
  async () => {
    const dir = tempDir("ioeventd-ho-gone-");
    let proc = await spawnAgent(dir);
    const vmm = await HandoverVmm.start(join(dir, "run", "handover.sock"), "vm-g", 1);
    try {
      await proc.client.create({ owner: "vm-g", spec: spec(vmm.handles[0], 0x88704, 1) });
      await proc.crash();
      await vmm.kill();
      proc = await spawnAgent(dir);
      assert.equal((await proc.client.list({ owner: "vm-g" })).ioeventfds.length, 0);
    } finally {
      await vmm.kill();
      proc.kill("SIGTERM");
      await proc.exited;
      proc.client.close();
      removeDir(dir);
    }
  },
);
