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
        });
        await src.signal(i);
        await waitForBar(path, Number(offset), width, data);
      }
      // The native side re-checks what TypeScript validated (defence in depth).
      const s = engine.acquireSource(src.pid, src.fds[4]);
      const reg = (offset: bigint, width: number) => () =>
        engine.register({ barPath: path, offset, width, data: 0n, fd: s.fd, pid: 0, pidStart: 0n });
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
      });
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
      engine.unregister(id);
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
      });
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
