// The native binding (service/native/engine.ts) against the real plugin: a child process
// owns the eventfds, the engine takes them by (pid, fd), and the bytes land in a BAR file.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { NativeError } from "../../service/native/errno.ts";
import { histogramBoundsNs, NativeEngine } from "../../service/native/engine.ts";
import { tempDir } from "../support/agent.ts";
import { readBar, waitForBar, writeBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function bar(bytes = 1 << 20): string {
  const path = join(tempDir(), "resource0");
  writeFileSync(path, new Uint8Array(0));
  Deno.truncateSync(path, bytes);
  return path;
}

function open(): NativeEngine {
  return NativeEngine.open({
    workers: 2,
    canaryPeriodUs: 1000,
    pollMode: "block",
    spinBudgetUs: 0,
  });
}

function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof NativeError, String(err));
    return (err as NativeError).message.split(": ")[1];
  }
  assert.fail("no error");
}

Deno.test(
  "engine: acquire by (pid, fd), every width lands LE at its offset, bounds refused",
  opts,
  async () => {
    const engine = open();
    const src = await SourceProcess.start(6);
    const path = bar();
    try {
      const cases: [number, bigint, bigint][] = [
        [1, 0x11n, 0xa5n],
        [2, 0x22n, 0xbeefn],
        [4, 0x44n, 0xcafef00dn],
        [8, 0x88n, 0x0102030405060708n],
      ];
      for (const [i, [width, offset, data]] of cases.entries()) {
        const s = engine.acquireSource(src.pid, src.fds[i]);
        assert.ok(s.startTime > 0n && s.eventfdId > 0n);
        engine.register({
          barPath: path,
          offset,
          width,
          data,
          fd: s.fd,
          pid: src.pid,
          pidStart: s.startTime,
        }).id;
        await src.signal(i);
        await waitForBar(path, Number(offset), width, data);
      }
      // The native side re-checks what TypeScript validated (defence in depth).
      const s = engine.acquireSource(src.pid, src.fds[4]);
      const reg = (offset: bigint, width: number) => () =>
        engine.register({ barPath: path, offset, width, data: 0n, fd: s.fd, pid: 0, pidStart: 0n })
          .id;
      assert.equal(errno(reg(0x43n, 4)), "EINVAL", "misaligned");
      assert.equal(errno(reg(0x40n, 3)), "EINVAL", "width 3");
      assert.equal(errno(reg(BigInt(1 << 20), 4)), "ERANGE", "past the end");
      assert.equal(errno(reg((1n << 64n) - 4n, 4)), "ERANGE", "wrapping offset");
      engine.releaseSource(s.fd);
      assert.equal(readBar(path, 0x40, 4), 0n, "nothing was written by a refused registration");
      // Not an eventfd; a dead process; an fd that is not open.
      await src.command("pipe 5");
      assert.equal(errno(() => engine.acquireSource(src.pid, src.fds[5])), "EMEDIUMTYPE");
      assert.equal(errno(() => engine.acquireSource(src.pid, 999)), "EBADF");
    } finally {
      await src.kill();
      engine.close();
    }
  },
);

Deno.test(
  "engine: statistics and the canary come back as snapshots; source exit is an event",
  opts,
  async () => {
    const engine = open();
    const src = await SourceProcess.start(1);
    const path = bar();
    try {
      const s = engine.acquireSource(src.pid, src.fds[0]);
      await src.signal(0, 5); // pending before register: fires at once, coalesced
      const id = engine.register({
        barPath: path,
        offset: 0n,
        width: 4,
        data: 1n,
        fd: s.fd,
        pid: src.pid,
        pidStart: s.startTime,
      }).id;
      await waitForBar(path, 0, 4, 1n);
      const stats = engine.registrationStats().get(id)!;
      assert.equal(stats.triggers, 1n);
      assert.equal(stats.signals, 5n);
      assert.ok(stats.lastTriggerNs > BigInt(Date.now() - 60_000) * 1_000_000n);

      const bounds = histogramBoundsNs();
      assert.equal(bounds[0], 100n);
      assert.equal(bounds[bounds.length - 1], 100_000_000n);
      await new Promise((r) => setTimeout(r, 50)); // ~50 canary periods
      const workers = engine.workerStats();
      assert.equal(workers.length, 2);
      const dispatched = workers.reduce((n, w) => n + w.dispatch.count, 0n);
      assert.ok(dispatched > 10n, `canary served ${dispatched} times`);
      const serviced = workers.reduce((n, w) => n + w.service.count, 0n);
      assert.ok(serviced >= 1n);
      const info = engine.info();
      assert.deepEqual([info.registrations, info.barMappings, info.alive], [1, 1, true]);

      const events = engine.events();
      await src.kill();
      const first = await events.next();
      assert.deepEqual(first.value, {
        kind: "source-exited",
        pid: src.pid,
        startTime: s.startTime,
      });
      // The final counters, read after the barrier: the one write serving five signals.
      const last = engine.unregister(id);
      assert.deepEqual([last.triggers, last.signals], [1n, 5n]);
      assert.equal(last.lastTriggerNs, stats.lastTriggerNs);
      assert.equal(engine.info().barMappings, 0, "the BAR is unmapped with its last registration");
    } finally {
      await src.kill();
      engine.close();
    }
  },
);

Deno.test(
  "engine: unregister is a barrier under a signal storm (≥1M signals, 64 registrations)",
  opts,
  async () => {
    const engine = open();
    const N = 64;
    const src = await SourceProcess.start(N);
    const path = bar();
    const offset = (i: number) => 0x1000 + 8 * i;
    const ids: bigint[] = [];
    const arm = (i: number) => {
      const s = engine.acquireSource(src.pid, src.fds[i]);
      ids[i] = engine.register({
        barPath: path,
        offset: BigInt(offset(i)),
        width: 4,
        data: BigInt(i + 1),
        fd: s.fd,
        pid: 0,
        pidStart: 0n,
      }).id;
    };
    try {
      for (let i = 0; i < N; i++) arm(i);
      await src.command(`storm-start 0 ${N - 1} 2`);
      let cycles = 0;
      let violations = 0;
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        const i = cycles % N;
        engine.unregister(ids[i]);
        // From here on nothing may write at offset(i): clear it and look again later.
        writeBar(path, offset(i), 4, 0n);
        await new Promise((r) => setTimeout(r, 0));
        if (readBar(path, offset(i), 4) !== 0n) violations++;
        arm(i);
        cycles++;
      }
      // And a final set of disarmed registers must stay untouched while the storm goes on.
      for (let i = 0; i < N; i += 2) {
        engine.unregister(ids[i]);
        writeBar(path, offset(i), 4, 0n);
      }
      await new Promise((r) => setTimeout(r, 300));
      for (let i = 0; i < N; i += 2) {
        if (readBar(path, offset(i), 4) !== 0n) violations++;
      }
      const signals = Number(await src.command("storm-stop"));
      console.log(`${signals} signals, ${cycles} unregister/register cycles`);
      assert.ok(signals >= 1_000_000, `only ${signals} signals`);
      assert.ok(cycles > 100, `only ${cycles} cycles`);
      assert.equal(violations, 0, "a write landed after unregister returned");
      for (let i = 1; i < N; i += 2) assert.equal(readBar(path, offset(i), 4), BigInt(i + 1));
    } finally {
      await src.kill();
      engine.close();
    }
  },
);

const O_NONBLOCK = 0o4000;

Deno.test(
  "engine: one eventfd acquired twice (same pid, fd) for two keys — one signal performs both writes, and the VMM's eventfd stays blocking",
  opts,
  async () => {
    const engine = open();
    const src = await SourceProcess.start(1);
    const path = bar();
    try {
      const flags = await src.command("flags 0");
      assert.equal(Number(flags) & O_NONBLOCK, 0, "the source creates a blocking eventfd");
      const a = engine.acquireSource(src.pid, src.fds[0]);
      const b = engine.acquireSource(src.pid, src.fds[0]);
      assert.notEqual(a.fd, b.fd);
      assert.equal(a.eventfdId, b.eventfdId, "the same eventfd");
      const reg = (fd: number, offset: bigint, data: bigint) =>
        engine.register({
          barPath: path,
          offset,
          width: 4,
          data,
          fd,
          pid: src.pid,
          pidStart: a.startTime,
        }).id;
      const first = reg(a.fd, 0x10n, 0xa1n);
      const second = reg(b.fd, 0x20n, 0xb2n);
      assert.equal(await src.command("flags 0"), flags, "acquire + register left the flags alone");
      const info = engine.info();
      assert.deepEqual([info.registrations, info.watchedEventfds], [2, 1]);
      assert.equal(engine.registrationWorker(first), engine.registrationWorker(second));

      await src.signal(0);
      await waitForBar(path, 0x10, 4, 0xa1n);
      await waitForBar(path, 0x20, 4, 0xb2n);
      const stats = engine.registrationStats();
      assert.deepEqual(
        [stats.get(first)!.triggers, stats.get(second)!.triggers, stats.get(second)!.signals],
        [1n, 1n, 1n],
      );

      // Unregister one key: the other still fires, the removed one never again.
      engine.unregister(first);
      writeBar(path, 0x10, 4, 0n);
      writeBar(path, 0x20, 4, 0n);
      await src.signal(0, 3);
      await waitForBar(path, 0x20, 4, 0xb2n);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(readBar(path, 0x10, 4), 0n, "no write after unregister");
      assert.equal(engine.info().watchedEventfds, 1);
      // The source reads its own eventfd without blocking, and its flags are still its own.
      assert.equal(await src.command("value 0"), "0", "the engine consumed the signals");
      engine.unregister(second);
      assert.deepEqual([engine.info().registrations, engine.info().watchedEventfds], [0, 0]);
      await src.signal(0, 2);
      assert.equal(await src.command("value 0"), "2", "nothing reads it any more");
      assert.equal(await src.command("flags 0"), flags);
    } finally {
      await src.kill();
      engine.close();
    }
  },
);

Deno.test(
  "engine: registerMany / unregisterMany answer per request, in order",
  opts,
  async () => {
    const engine = open();
    const src = await SourceProcess.start(3);
    const path = bar();
    try {
      const s = [0, 1, 2, 0].map((i) => engine.acquireSource(src.pid, src.fds[i]));
      const outcomes = engine.registerMany([
        { barPath: path, offset: 0x100n, width: 4, data: 1n, fd: s[0].fd, pid: 0, pidStart: 0n },
        { barPath: path, offset: 0x104n, width: 3, data: 2n, fd: s[1].fd, pid: 0, pidStart: 0n },
        { barPath: path, offset: 0x108n, width: 8, data: 3n, fd: s[2].fd, pid: 0, pidStart: 0n },
        // eventfd 0 again, through its second acquisition: joins the first.
        { barPath: path, offset: 0x110n, width: 4, data: 4n, fd: s[3].fd, pid: 0, pidStart: 0n },
      ]);
      assert.deepEqual(outcomes.map((o) => o.ok), [true, false, true, true]);
      const bad = outcomes[1];
      assert.ok(!bad.ok && bad.error.is("EINVAL"), "width 3");
      engine.releaseSource(s[1].fd); // a refused request leaves the fd with the caller
      const ids = outcomes.flatMap((o) => (o.ok ? [o.id] : []));
      assert.ok(ids[0] < ids[1] && ids[1] < ids[2]);
      for (const o of outcomes) if (o.ok) assert.equal(o.backend, "user-mmap");
      const [w0, , , w3] = outcomes.map((o) => (o.ok ? o.worker : -1));
      assert.equal(w0, w3, "one eventfd, one worker");
      assert.equal(engine.info().watchedEventfds, 2);
      await src.command("signal-all");
      await waitForBar(path, 0x100, 4, 1n);
      await waitForBar(path, 0x108, 8, 3n);
      await waitForBar(path, 0x110, 4, 4n);
      const unregistered = engine.unregisterMany([ids[0], 4242n, ids[1], ids[2]]);
      assert.deepEqual(unregistered.map((o) => (o.ok ? null : o.error.message)), [
        null,
        "unregister: ENOENT",
        null,
        null,
      ]);
      // Each comes with its final counters: one signal each, one write each.
      assert.deepEqual(unregistered.map((o) => (o.ok ? o.final.triggers : null)), [
        1n,
        null,
        1n,
        1n,
      ]);
      assert.deepEqual([engine.info().registrations, engine.info().barMappings], [0, 0]);
    } finally {
      await src.kill();
      engine.close();
    }
  },
);

/** The threads of the most recently opened engine in this process: worker index → task dir. */
function latestEngineWorkers(): Map<number, string> {
  const byEngine = new Map<number, Map<number, string>>();
  for (const t of Deno.readDirSync("/proc/self/task")) {
    const dir = `/proc/self/task/${t.name}`;
    let comm = "";
    try {
      comm = Deno.readTextFileSync(`${dir}/comm`).trim();
    } catch {
      continue;
    }
    const m = /^iov(\d+)w(\d+)$/.exec(comm);
    if (!m) continue;
    const serial = Number(m[1]);
    if (!byEngine.has(serial)) byEngine.set(serial, new Map());
    byEngine.get(serial)!.set(Number(m[2]), dir);
  }
  return byEngine.get(Math.max(...byEngine.keys())) ?? new Map();
}

function cpusAllowed(taskDir: string): string {
  const status = Deno.readTextFileSync(`${taskDir}/status`);
  return /Cpus_allowed_list:\s*(\S+)/.exec(status)![1];
}

Deno.test(
  "engine: shard=device keeps each device on one worker; cpus pins the workers",
  opts,
  async () => {
    const allowed = cpusAllowed("/proc/self");
    const last = Number(allowed.split(/[,-]/).pop());
    const engine = NativeEngine.open({
      workers: 2,
      canaryPeriodUs: 0,
      pollMode: "block",
      spinBudgetUs: 0,
      shard: "device",
      cpus: [last],
    });
    const src = await SourceProcess.start(6);
    const root = tempDir();
    try {
      const info = engine.info();
      assert.deepEqual([info.shard, info.pinnedCpus], ["device", 1]);
      const workers = latestEngineWorkers();
      assert.equal(workers.size, 2);
      for (const dir of workers.values()) assert.equal(cpusAllowed(dir), String(last));
      // Two devices, two BAR files each: every registration of a device on one worker.
      const perDevice: number[][] = [];
      for (let d = 0; d < 2; d++) {
        const dev = join(root, `0000:00:0${d}.0`);
        Deno.mkdirSync(dev);
        const seen: number[] = [];
        for (let k = 0; k < 3; k++) {
          const file = join(dev, k === 1 ? "resource2" : "resource0");
          if (k < 2) {
            writeFileSync(file, new Uint8Array(0));
            Deno.truncateSync(file, 4096);
          }
          const s = engine.acquireSource(src.pid, src.fds[d * 3 + k]);
          const id = engine.register({
            barPath: file,
            offset: BigInt(8 * k),
            width: 4,
            data: BigInt(d * 10 + k + 1),
            fd: s.fd,
            pid: 0,
            pidStart: 0n,
          }).id;
          seen.push(engine.registrationWorker(id)!);
        }
        perDevice.push(seen);
      }
      for (const seen of perDevice) assert.ok(seen.every((w) => w === seen[0]), String(seen));
      await src.command("signal-all");
      await waitForBar(join(root, "0000:00:01.0", "resource0"), 16, 4, 13n);
      await waitForBar(join(root, "0000:00:00.0", "resource2"), 8, 4, 2n);
    } finally {
      await src.kill();
      engine.close();
    }
  },
);

Deno.test(
  "engine: a VMM's non-blocking eventfd (as QEMU makes them) is served the same way",
  opts,
  async () => {
    const engine = open();
    const src = await SourceProcess.start(1, { nonblocking: true });
    const path = bar();
    try {
      const s = engine.acquireSource(src.pid, src.fds[0]);
      const id = engine.register({
        barPath: path,
        offset: 0x10n,
        width: 4,
        data: 0xfeedn,
        fd: s.fd,
        pid: 0,
        pidStart: 0n,
      }).id;
      await src.signal(0, 2);
      await waitForBar(path, 0x10, 4, 0xfeedn);
      await new Promise((r) => setTimeout(r, 20));
      const stats = engine.registrationStats().get(id)!;
      assert.ok(
        stats.triggers >= 1n && stats.signals === 2n,
        JSON.stringify(stats, (_k, v) => typeof v === "bigint" ? String(v) : v),
      );
    } finally {
      await src.kill();
      engine.close();
    }
  },
);
