// A real guest rings the doorbell (#15): a KVM VM with one vCPU (ioeventd-kvm-vmm) whose
// real-mode guest stores to doorbell addresses outside its memory; KVM_IOEVENTFD turns each
// store into an eventfd signal inside the kernel, and the agent, armed through the gRPC API
// with the VMM's pid and fd as an orchestrator would, performs the write into the simulated
// BAR — which the guest sees through a memory slot backed by the same BAR file and polls.
// Skipped (never passed) where /dev/kvm is missing.
import assert from "node:assert/strict";
import type { IoeventfdEvent__Output } from "../../service/api/generated/ioeventd/v1/IoeventfdEvent.ts";
import type { AgentClient } from "../../service/cli/client.ts";
import {
  barPath,
  GPU,
  removeDir,
  spawnAgent,
  startAgent,
  tempDir,
  testConfig,
} from "../support/agent.ts";
import { readBar, waitForBar, writeBar } from "../support/bar_file.ts";
import { type Doorbell, kvmUnavailable, Vmm } from "./vmm.ts";

const why = kvmUnavailable();
if (why) console.warn(`test/kvm skipped: ${why}`);
const opts = { sanitizeOps: false, sanitizeResources: false, ignore: why !== "" };

function spec(vmm: Vmm, name: Doorbell["name"]) {
  const d = vmm.doorbell(name);
  return {
    device: GPU,
    bar: 0,
    offset: String(d.bar_offset),
    width: d.width,
    data: d.value,
    source: { pid: vmm.pid, fd: d.fd },
  };
}

/** Arms the named doorbells through CreateIoeventfd; returns their ids by name. */
async function arm(client: AgentClient, vmm: Vmm, names: Doorbell["name"][], owner = "vm-kvm") {
  const ids = new Map<Doorbell["name"], string>();
  for (const name of names) {
    const created = await client.create({ owner, spec: spec(vmm, name) });
    assert.equal(created.state, "ARMED");
    assert.equal(created.backend, "user-mmap");
    ids.set(name, created.id);
  }
  return ids;
}

/** GetIoeventfd's counters, once they have stopped moving (the worker counts after writing). */
async function counters(client: AgentClient, id: string, expectSignals?: number) {
  const deadline = Date.now() + 5000;
  let last = "";
  for (;;) {
    const got = await client.get(id);
    const now = `${got.triggers}/${got.signals}`;
    const settled = expectSignals === undefined
      ? now === last
      : Number(got.signals) >= expectSignals;
    if (settled || Date.now() > deadline) {
      return { triggers: Number(got.triggers), signals: Number(got.signals) };
    }
    last = now;
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name: "kvm: a guest's doorbells of every width, armed through the API, land in the BAR",
  ...opts,
  fn: async () => {
    const t = await startAgent();
    const bar0 = barPath(t.config, GPU, 0);
    const vmm = await Vmm.start(bar0, "ioeventd");
    try {
      const ids = await arm(t.client, vmm, ["w1", "w2", "w4", "w8", "final"]);
      for (const name of ["w1", "w2", "w4", "w8"] as const) {
        const d = vmm.doorbell(name);
        // Ring and wait: the guest clears the register, stores, and polls the BAR slot
        // until the agent's write is there, 200 times; any lost doorbell would hang it.
        const r = await vmm.run("latency", d.width, 200);
        assert.equal(r.progress, 200, `${name}: every doorbell seen landing by the guest`);
        assert.equal(r.mmio_exits, 0, `${name}: no store left the kernel (KVM_IOEVENTFD)`);
        assert.equal(readBar(bar0, d.bar_offset, d.width), BigInt(d.value));
        // Nothing around the register was touched.
        assert.equal(readBar(bar0, d.bar_offset - 1, 1), 0n);
        assert.equal(readBar(bar0, d.bar_offset + d.width, 1), 0n);
        const c = await counters(t.client, ids.get(name)!, 200);
        assert.deepEqual(c, { triggers: 200, signals: 200 }, name);
      }
      // Width 8 is one 8-byte access, not two 4-byte ones: the exit path sees its length.
      await vmm.mode("exit");
      const exit8 = await vmm.run("stores", 8, 10);
      assert.equal(exit8.mmio_exits, 11, "10 doorbells + the final one, each one exit");
      assert.equal(exit8.exit_writes, 11, "each matched a doorbell of its own width (8, then 4)");
    } finally {
      await vmm.close();
      await t.stop();
    }
  },
});

Deno.test({
  name: "kvm: triggers and signals equal the guest's stores; the last doorbell lands",
  ...opts,
  fn: async () => {
    const t = await startAgent();
    const bar0 = barPath(t.config, GPU, 0);
    const vmm = await Vmm.start(bar0, "ioeventd");
    try {
      const ids = await arm(t.client, vmm, ["w4", "final"]);
      const w4 = vmm.doorbell("w4");
      const fin = vmm.doorbell("final");

      // Ring and wait: one store per wake-up, so writes = wake-ups = signals = stores.
      const N = 500;
      const lat = await vmm.run("latency", 4, N);
      assert.equal(lat.progress, N);
      let c = await counters(t.client, ids.get("w4")!, N);
      assert.deepEqual(c, { triggers: N, signals: N });
      assert.deepEqual(await counters(t.client, ids.get("final")!, 1), { triggers: 1, signals: 1 });

      // Back to back: KVM signals the eventfd once per store (signals = stores exactly); the
      // agent writes once per wake-up, reading the count the stores left (triggers ≤ signals).
      writeBar(bar0, fin.bar_offset, 4, 0n);
      writeBar(bar0, w4.bar_offset, 4, 0n);
      const M = 5000;
      const stores = await vmm.run("stores", 4, M);
      assert.equal(stores.mmio_exits, 0);
      await waitForBar(bar0, fin.bar_offset, 4, BigInt(fin.value)); // the last doorbell lands
      assert.equal(readBar(bar0, w4.bar_offset, 4), BigInt(w4.value));
      c = await counters(t.client, ids.get("w4")!, N + M);
      assert.equal(c.signals, N + M, "every store signalled the eventfd once, none lost");
      assert.ok(c.triggers > N && c.triggers <= N + M, `wake-ups ${c.triggers - N} of ${M} stores`);
      assert.deepEqual(await counters(t.client, ids.get("final")!, 2), { triggers: 2, signals: 2 });
      console.log(`${M} back-to-back stores: ${c.triggers - N} wake-ups, ${c.signals - N} signals`);
    } finally {
      await vmm.close();
      await t.stop();
    }
  },
});

Deno.test({
  name: "kvm: DATAMATCH: two ioeventfds at one guest address write two different values",
  ...opts,
  fn: async () => {
    const t = await startAgent();
    const bar0 = barPath(t.config, GPU, 0);
    const vmm = await Vmm.start(bar0, "ioeventd");
    try {
      const a = vmm.doorbell("dm_a");
      const b = vmm.doorbell("dm_b");
      assert.equal(a.gpa, b.gpa, "one guest address");
      assert.equal(a.bar_offset, b.bar_offset, "one register");
      assert.notEqual(a.value, b.value);
      assert.notEqual(a.fd, b.fd, "one eventfd per value");
      const ids = await arm(t.client, vmm, ["dm_a", "dm_b", "final"]);
      // The guest stores A and waits until the register holds A, then B and waits for B: each
      // value reaches only its own eventfd, and the agent writes that eventfd's value.
      const N = 300;
      const r = await vmm.run("datamatch", 4, N);
      assert.equal(r.progress, 2 * N);
      assert.equal(r.mmio_exits, 0, "both values matched an ioeventfd: no exit");
      assert.equal(readBar(bar0, b.bar_offset, 4), BigInt(b.value));
      assert.deepEqual(await counters(t.client, ids.get("dm_a")!, N), { triggers: N, signals: N });
      assert.deepEqual(await counters(t.client, ids.get("dm_b")!, N), { triggers: N, signals: N });
    } finally {
      await vmm.close();
      await t.stop();
    }
  },
});

Deno.test({
  name: "kvm: the VMM's exit removes its ioeventfds (SOURCE_EXIT on the watch, list empty)",
  ...opts,
  fn: async () => {
    const t = await startAgent();
    const vmm = await Vmm.start(barPath(t.config, GPU, 0), "ioeventd");
    const events: IoeventfdEvent__Output[] = [];
    const call = t.client.watch({}, (e) => events.push(e));
    try {
      const names = ["w1", "w2", "w4", "w8", "dm_a", "dm_b", "final"] as const;
      const ids = await arm(t.client, vmm, [...names]);
      await vmm.run("latency", 4, 10);
      await vmm.exit(); // the VM shuts down: its process, and with it its eventfds, go
      const deadline = Date.now() + 5000;
      const removed = () => events.filter((e) => e.type === "REMOVED");
      while (removed().length < names.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(removed().length, names.length);
      assert.ok(removed().every((e) => e.cause === "SOURCE_EXIT"));
      assert.deepEqual(
        removed().map((e) => e.ioeventfd!.id).sort(),
        [...ids.values()].sort(),
      );
      assert.equal((await t.client.list({})).totalSize, 0);
    } finally {
      call.cancel();
      await vmm.close();
      await t.stop();
    }
  },
});

Deno.test({
  name: "kvm: an agent restart (SIGTERM, spawn again) while the guest rings loses no doorbell",
  ...opts,
  fn: async () => {
    const stateDir = tempDir();
    let agent = await spawnAgent(stateDir);
    const bar0 = barPath(testConfig(stateDir), GPU, 0);
    const vmm = await Vmm.start(bar0, "ioeventd");
    try {
      const ids = await arm(agent.client, vmm, ["dm_a", "dm_b", "final"]);
      // The guest rings A, waits for A, rings B, waits for B, … until told to stop: a
      // doorbell that never lands stops it for good, and progress counts those that did.
      await vmm.start("datamatch", 4, 0xffffffff);
      const until = async (n: number) => {
        const end = Date.now() + 10_000;
        while ((await vmm.progress()) < n && Date.now() < end) {
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      await until(2000);
      agent.kill("SIGTERM");
      const status = await agent.exited;
      agent.client.close();
      assert.equal(status.code, 0, "a clean stop");
      // With no agent, the guest's next doorbell is pending in its eventfd: it waits there.
      const landedBefore = await vmm.progress();
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await vmm.progress(), landedBefore, "nothing writes while no agent runs");

      agent = await spawnAgent(stateDir); // re-arms from the journal, same VMM, same fds
      await until(landedBefore + 2000);
      await vmm.stop();
      const r = await vmm.wait();
      await waitForBar(
        bar0,
        vmm.doorbell("final").bar_offset,
        4,
        BigInt(vmm.doorbell("final").value),
      );
      // Every store the guest made landed (it waited for each): stores = progress. The new
      // agent wrote exactly those after the old one stopped, the pending one included.
      const a = await counters(agent.client, ids.get("dm_a")!);
      const b = await counters(agent.client, ids.get("dm_b")!);
      const after = r.progress - landedBefore;
      assert.equal(a.triggers + b.triggers, after, "writes after the restart = stores after it");
      assert.equal(a.signals + b.signals, after, "and every one was its own wake-up");
      console.log(
        `restart: ${landedBefore} doorbells landed before SIGTERM, ${after} after re-arm, ` +
          `${r.progress} stores, ${r.progress} landed`,
      );
    } finally {
      await vmm.close();
      await agent.crash();
      removeDir(stateDir);
    }
  },
});
