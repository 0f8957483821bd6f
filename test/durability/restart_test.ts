// Nothing lost: an agent killed with SIGKILL while its VMM keeps signalling comes back with
// every registration, and every eventfd signalled during the outage produces its write
// after re-arm (the kernel kept the counts). Real agent processes, a real source process.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { barPath, GPU, NIC, removeDir, spawnAgent, tempDir, testConfig } from "../support/agent.ts";
import { readBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const COUNT = 1000;

/** Registration i: device, BAR0 offset and data, each unique so every write is visible. */
function target(i: number): { device: string; offset: number; data: number } {
  return i < 600
    ? { device: GPU, offset: 0x10000 + 4 * i, data: 0x1000 + i }
    : { device: NIC, offset: 0x1000 + 4 * (i - 600), data: 0x2000 + i };
}

function zeroBars(stateDir: string): void {
  const config = testConfig(stateDir);
  for (const [device, size] of [[GPU, 16 << 20], [NIC, 128 << 10]] as const) {
    writeFileSync(barPath(config, device, 0), new Uint8Array(0)); // truncate…
    Deno.truncateSync(barPath(config, device, 0), size); // …and restore a sparse, zero BAR
  }
}

Deno.test(
  "durability: SIGKILL during a signal storm; restart re-arms all 1000 and loses no write",
  opts,
  async () => {
    const stateDir = tempDir();
    const src = await SourceProcess.start(COUNT);
    let agent = await spawnAgent(stateDir);
    try {
      const desired = Array.from({ length: COUNT }, (_, i) => ({
        ...target(i),
        bar: 0,
        width: 4,
        offset: String(target(i).offset),
        data: String(target(i).data),
        source: { pid: src.pid, fd: src.fds[i] },
      }));
      // Two owners, as two VMs would hold them.
      await agent.client.reconcile({ owner: "vm-a", desired: desired.slice(0, 500) });
      await agent.client.reconcile({ owner: "vm-b", desired: desired.slice(500) });
      const before = (await agent.client.listAll()).map((i) => i.id).sort();
      assert.equal(before.length, COUNT);

      await src.command(`storm-start 0 ${COUNT - 1} 2`);
      await new Promise((r) => setTimeout(r, 200));
      await agent.crash();
      // From here on, any byte in the BARs was written by the next agent.
      zeroBars(stateDir);
      await new Promise((r) => setTimeout(r, 200));
      const signalled = Number(await src.command("storm-stop"));
      assert.ok(signalled > COUNT, `the storm signalled ${signalled} times`);

      agent = await spawnAgent(stateDir);
      const replayed = agent.logs.map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.msg === "journal replayed")!;
      assert.equal(replayed.rearmed, COUNT);
      console.log(`re-armed ${COUNT} ioeventfds in ${replayed.rearm_ms} ms after start`);

      const after = (await agent.client.listAll()).map((i) => i.id).sort();
      assert.deepEqual(after, before, "the same ids, all of them");
      const config = testConfig(stateDir);
      const deadline = Date.now() + 5000;
      let missing: number[] = [];
      do {
        missing = [];
        for (let i = 0; i < COUNT; i++) {
          const t = target(i);
          if (readBar(barPath(config, t.device, 0), t.offset, 4) !== BigInt(t.data)) {
            missing.push(i);
          }
        }
        if (missing.length > 0) await new Promise((r) => setTimeout(r, 20));
      } while (missing.length > 0 && Date.now() < deadline);
      assert.deepEqual(missing, [], "every eventfd signalled during the outage wrote after re-arm");
    } finally {
      await agent.crash();
      await src.kill();
      removeDir(stateDir);
    }
  },
);

Deno.test(
  "durability: kill -9 in the middle of creates loses no answered change",
  opts,
  async () => {
    const stateDir = tempDir();
    const src = await SourceProcess.start(400);
    let agent = await spawnAgent(stateDir);
    const answered: string[] = [];
    try {
      const creating = (async () => {
        for (let i = 0; i < 400; i++) {
          try {
            const r = await agent.client.create({
              owner: "vm-k",
              spec: {
                device: GPU,
                bar: 0,
                offset: String(0x100 + 4 * i),
                width: 4,
                data: String(i),
                source: { pid: src.pid, fd: src.fds[i] },
              },
            });
            answered.push(r.id);
          } catch {
            return; // the agent died under this call: it was never answered
          }
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      agent.kill("SIGKILL");
      await creating;
      await agent.exited;
      agent.client.close();
      assert.ok(answered.length > 0 && answered.length < 400, `answered ${answered.length}`);

      agent = await spawnAgent(stateDir);
      const ids = new Set((await agent.client.listAll()).map((i) => i.id));
      for (const id of answered) assert.ok(ids.has(id), `answered ${id} was lost`);
      assert.ok(ids.size <= answered.length + 1, "at most the one unanswered call is extra");
    } finally {
      await agent.crash();
      await src.kill();
      removeDir(stateDir);
    }
  },
);

Deno.test(
  "durability: a reused PID or a replaced fd is never bound after restart",
  opts,
  async () => {
    const stateDir = tempDir();
    const first = await SourceProcess.start(2);
    const stable = await SourceProcess.start(2);
    let agent = await spawnAgent(stateDir);
    let second: SourceProcess | null = null;
    try {
      const spec = (p: SourceProcess, i: number, offset: number) => ({
        device: GPU,
        bar: 0,
        offset: String(offset),
        width: 4,
        data: "1",
        source: { pid: p.pid, fd: p.fds[i] },
      });
      const gone = await agent.client.create({ owner: "vm-1", spec: spec(first, 0, 0x100) });
      const replaced = await agent.client.create({ owner: "vm-2", spec: spec(stable, 0, 0x200) });
      const kept = await agent.client.create({ owner: "vm-2", spec: spec(stable, 1, 0x300) });
      agent.kill("SIGTERM");
      const stopped = await agent.exited;
      assert.equal(stopped.code, 0, JSON.stringify(stopped) + agent.logs.join("\n"));
      agent.client.close();

      // While the agent is down: the first VMM exits and a new process gets its very PID
      // (ns_last_pid makes the kernel hand it out next) with the same fd numbers; the other
      // VMM closes an eventfd and opens a new one at the same number.
      const pid = first.pid;
      await first.kill();
      Deno.writeTextFileSync("/proc/sys/kernel/ns_last_pid", String(pid - 1));
      second = await SourceProcess.start(2);
      assert.equal(second.pid, pid, "the PID was reused");
      assert.deepEqual(second.fds, first.fds, "with the same fd numbers");
      await stable.command("replace 0");

      agent = await spawnAgent(stateDir);
      const ids = (await agent.client.listAll()).map((i) => i.id);
      assert.deepEqual(ids, [kept.id], "only the untouched registration is back");
      const replayed = agent.logs.map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.msg === "journal replayed") as { dropped: { id: string; reason: string }[] };
      const reasons = Object.fromEntries(replayed.dropped.map((d) => [d.id, d.reason]));
      assert.equal(reasons[gone.id], "PID_REUSED");
      assert.equal(reasons[replaced.id], "FD_REPLACED");

      // And nothing writes on behalf of the impostor.
      const bar0 = barPath(testConfig(stateDir), GPU, 0);
      await second.signal(0, 3);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(readBar(bar0, 0x100, 4), 0n);
    } finally {
      await agent.crash();
      await second?.kill();
      await first.kill();
      await stable.kill();
      removeDir(stateDir);
    }
  },
);

Deno.test(
  "durability: SIGTERM answers in-flight calls, exits 0, and the journal matches",
  opts,
  async () => {
    const stateDir = tempDir();
    const src = await SourceProcess.start(300);
    let agent = await spawnAgent(stateDir);
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 300 }, (_, i) => {
          if (i === 150) agent.kill("SIGTERM");
          return agent.client.create({
            owner: "vm-t",
            spec: {
              device: GPU,
              bar: 0,
              offset: String(0x100 + 4 * i),
              width: 4,
              data: "1",
              source: { pid: src.pid, fd: src.fds[i] },
            },
          });
        }),
      );
      const exit = await agent.exited;
      assert.equal(exit.code, 0, "a graceful stop exits 0");
      agent.client.close();
      const ok = results.filter((r) => r.status === "fulfilled").map((r) =>
        (r as PromiseFulfilledResult<{ id: string }>).value.id
      );
      for (const r of results) {
        if (r.status === "rejected") {
          const code = (r.reason as { code: number }).code;
          assert.ok([14, 1].includes(code), `refused with UNAVAILABLE, got ${r.reason}`);
        }
      }
      agent = await spawnAgent(stateDir);
      const ids = (await agent.client.listAll()).map((i) => i.id).sort();
      assert.deepEqual(ids, ok.sort(), "the journal holds exactly the answered creates");
    } finally {
      await agent.crash();
      await src.kill();
      removeDir(stateDir);
    }
  },
);
