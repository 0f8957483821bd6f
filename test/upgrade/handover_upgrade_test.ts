// A successor agent takes over from a running one (README "Upgrades") while a doorbell
// stream runs: every doorbell is written exactly once (0 lost, 0 doubled: the two agents'
// write counts add up to the doorbells rung), no connection to the agent's socket is
// refused, the successor serves every registration (a handed-over eventfd included: it
// came over SCM_RIGHTS) and takes mutations, and the predecessor exits 0. Real agent
// processes, a real source process, a simulated device.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { GPU, removeDir, spawnAgent, tempDir } from "../support/agent.ts";
import { waitForBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";
import { AgentClient } from "../../service/cli/client.ts";
import { HandoverVmm } from "../handover/vmm.ts";
import { armAll, logLine, probeConnections, simulatedBar, startStream, target } from "./support.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const COUNT = 200;
const HANDED = { offset: 0x88704, data: 0x77 };
/** A TCP listener too: the successor binds it once the predecessor has let it go. */
const TCP = "127.0.0.1:47391";
const listeners = (dir: string) => [
  "--listen",
  `unix://${join(dir, "run", "ioeventd.sock")}`,
  "--listen",
  TCP,
  "--allow-insecure-tcp",
];

Deno.test(
  "upgrade: a successor takes over under a 1 kHz doorbell stream: 0 lost, 0 doubled, none refused",
  opts,
  async () => {
    const dir = tempDir("ioeventd-upgrade-");
    const src = await SourceProcess.start(COUNT);
    const old = await spawnAgent(dir, listeners(dir));
    const vmm = await HandoverVmm.start(join(dir, "run", "handover.sock"), "vm-h", 1);
    let next: Awaited<ReturnType<typeof spawnAgent>> | null = null;
    try {
      await armAll(old, src, COUNT);
      const handed = await old.client.create({
        owner: "vm-h",
        spec: {
          device: GPU,
          bar: 0,
          offset: String(HANDED.offset),
          width: 4,
          data: String(HANDED.data),
          source: { pid: 0, fd: 0, handle: vmm.handles[0] },
        },
      });
      const before = (await old.client.listAll()).map((r) => r.id).sort();
      assert.equal(before.length, COUNT + 1);

      const stopStream = await startStream(src, dir);
      const stopProbe = probeConnections(join(dir, "run", "ioeventd.sock"));
      let readFailures = 0;
      let reading = true;
      const reads = (async () => {
        while (reading) {
          await old.client.list({ owner: "vm-h" }).catch(() => readFailures++);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await new Promise((r) => setTimeout(r, 300));

      next = await spawnAgent(dir, listeners(dir)); // takes over ("auto"): serving once released
      const exit = await old.exited;
      await new Promise((r) => setTimeout(r, 300));
      const stream = await stopStream();
      const probe = await stopProbe();
      reading = false;
      await reads;
      old.client.close();

      assert.deepEqual(exit, { code: 0, signal: null }, "the predecessor exits cleanly");
      // Its sockets were renamed over, not removed by its exit: the successor's are there.
      for (const sock of ["ioeventd.sock", "handover.sock", "upgrade.sock"]) {
        assert.ok(existsSync(join(dir, "run", sock)), `${sock} is still there`);
      }
      const replayed = logLine(next, "journal replayed")!;
      assert.equal(replayed.taking_over, true);
      assert.equal(replayed.rearmed, COUNT + 1, "the handed-over one too (its fd was passed)");
      const released = logLine(next, "took over: the predecessor writes no more")!;

      assert.equal(probe.refused, 0, `refused connections: ${probe.errors.join("; ")}`);
      assert.ok(probe.attempts > 100, `${probe.attempts} connection attempts`);
      assert.equal(stream.timeouts, 0, "no doorbell lost");
      assert.ok(stream.count > 300, `${stream.count} doorbells`);

      const after = await next.client.listAll();
      assert.deepEqual(after.map((r) => r.id).sort(), before, "the same registrations");
      assert.ok(after.every((r) => r.state === "ARMED"), "all armed by the successor");
      // The handed-over eventfd came over SCM_RIGHTS: its doorbell writes.
      await vmm.signal(0);
      await waitForBar(simulatedBar(dir, GPU), HANDED.offset, 4, BigInt(HANDED.data));
      const writes = (await next.client.listAll()).reduce((n, r) => n + BigInt(r.triggers), 0n);
      const predecessor = BigInt(released.predecessor_triggers as string);
      // Every doorbell of the stream, plus the handed-over one, written exactly once.
      assert.equal(predecessor + writes, BigInt(stream.count + 1), "0 doubled, 0 lost");
      assert.ok(predecessor > 0n && writes > 0n, "both agents wrote, one after the other");
      console.log(
        `hand-over: ${stream.count} doorbells, longest ${(stream.max_ns / 1e6).toFixed(2)} ms ` +
          `(p99 ${(stream.p99_ns / 1e6).toFixed(3)} ms), ${probe.attempts} connections, ` +
          `${readFailures} failed reads; predecessor wrote ${predecessor}, successor ${writes}`,
      );

      // Its TCP listener too, bound once the predecessor closed its own.
      const tcp = new AgentClient(TCP);
      assert.equal((await tcp.info()).ready, true);
      tcp.close();

      // The successor is the journal's writer now: it takes mutations.
      const t = target(COUNT);
      const created = await next.client.create({
        owner: "vm-new",
        spec: {
          device: t.device,
          bar: 0,
          offset: String(t.offset + 0x100000),
          width: 4,
          data: "1",
          source: { pid: src.pid, fd: src.fds[1] },
        },
      });
      assert.equal(created.state, "ARMED");
      assert.notEqual(handed.id, created.id);
    } finally {
      await vmm.kill();
      if (next) {
        next.kill("SIGTERM");
        await next.exited;
        next.client.close();
      }
      old.kill("SIGKILL");
      await src.kill();
      removeDir(dir);
    }
  },
);

Deno.test(
  "upgrade: a successor that fails before it is armed leaves the predecessor serving and writing",
  opts,
  async () => {
    const dir = tempDir("ioeventd-upgrade-abort-");
    const src = await SourceProcess.start(4);
    const old = await spawnAgent(dir);
    try {
      await armAll(old, src, 3);
      // It freezes the predecessor, opens the journal, then fails: its metrics address is
      // not one of this host's.
      const failed = await spawnAgent(dir, ["--metrics-listen", "203.0.113.1:9464"]).then(
        () => null,
        (err: Error) => err.message,
      );
      assert.notEqual(failed, null, "the successor never served");
      // The predecessor took the journal back and serves mutations again.
      const t = target(3);
      const created = await old.client.create({
        owner: "vm-after",
        spec: {
          device: t.device,
          bar: 0,
          offset: String(t.offset),
          width: 4,
          data: String(t.data),
          source: { pid: src.pid, fd: src.fds[3] },
        },
      });
      assert.equal(created.state, "ARMED");
      // And it never stopped writing.
      await src.signal(3);
      await waitForBar(simulatedBar(dir, t.device), t.offset, 4, BigInt(t.data));
      assert.ok(old.logs.some((l) => l.includes("hand-over to a successor failed; serving on")));
      assert.equal((await old.client.listAll()).length, 4);
    } finally {
      await old.crash();
      await src.kill();
      removeDir(dir);
    }
  },
);

Deno.test(
  "upgrade: SIGUSR2 (the systemd upgrade) starts a successor that takes over; the old exits 0",
  opts,
  async () => {
    const dir = tempDir("ioeventd-upgrade-usr2-");
    const src = await SourceProcess.start(2);
    const old = await spawnAgent(dir);
    let successor = 0;
    try {
      await armAll(old, src, 2);
      const stopStream = await startStream(src, dir);
      old.kill("SIGUSR2");
      // Its successor's log goes to the same stderr (inherited), read on by the test.
      assert.deepEqual(await old.exited, { code: 0, signal: null });
      const started = logLine(old, "started a successor to take over")!;
      successor = started.successor_pid as number;
      const deadline = Date.now() + 30_000;
      while (!logLine(old, "took over: the predecessor writes no more")) {
        assert.ok(Date.now() < deadline, old.logs.join("\n"));
        await new Promise((r) => setTimeout(r, 20));
      }
      const stream = await stopStream();
      assert.equal(stream.timeouts, 0, "no doorbell lost");
      const client = new AgentClient(`unix://${join(dir, "run", "ioeventd.sock")}`);
      try {
        const info = await client.info();
        assert.ok(info.capabilities!.features!.includes("start:hand-over"));
        assert.equal((await client.listAll()).length, 2);
      } finally {
        client.close();
      }
      old.client.close();
    } finally {
      if (successor > 0) {
        try {
          Deno.kill(successor, "SIGKILL");
        } catch { /* gone */ }
      }
      old.kill("SIGKILL");
      await src.kill();
      removeDir(dir);
    }
  },
);

Deno.test(
  "upgrade: --after-hand-over=linger (Kubernetes) keeps the old agent alive, not ready, until SIGTERM",
  opts,
  async () => {
    const dir = tempDir("ioeventd-upgrade-linger-");
    const src = await SourceProcess.start(1);
    const args = ["--after-hand-over=linger", "--metrics-listen", "127.0.0.1:0"];
    const old = await spawnAgent(dir, args);
    let next: Awaited<ReturnType<typeof spawnAgent>> | null = null;
    try {
      await armAll(old, src, 1);
      const metrics = logLine(old, "ioeventd serving")!.metrics as string;
      next = await spawnAgent(dir, args);
      const deadline = Date.now() + 10_000;
      while (!logLine(old, "retiring: handed over to a successor; staying until stopped")) {
        assert.ok(Date.now() < deadline, old.logs.join("\n"));
        await new Promise((r) => setTimeout(r, 20));
      }
      // Alive (the kubelet does not restart it), not ready (the Service sends it nothing).
      const healthz = await fetch(`http://${metrics}/healthz`);
      await healthz.body?.cancel();
      assert.equal(healthz.status, 200);
      const readyz = await fetch(`http://${metrics}/readyz`);
      assert.equal(readyz.status, 503);
      assert.match(await readyz.text(), /handed over to a successor/);
      // The pod's deletion: SIGTERM ends it cleanly.
      old.kill("SIGTERM");
      assert.deepEqual(await old.exited, { code: 0, signal: null });
      assert.equal((await next.client.listAll()).length, 1, "the successor serves");
    } finally {
      old.kill("SIGKILL");
      old.client.close();
      if (next) await next.crash();
      await src.kill();
      removeDir(dir);
    }
  },
);
