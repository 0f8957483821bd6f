// Defence in depth: the native plugin re-checks every registration against the BAR it maps
// (width, alignment, bounds) before arming it. These tests go around the TypeScript
// validation — calling the engine directly, and giving the registry a device that lies
// about its BAR — and show that nothing is armed and no byte of any BAR changes.
import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { PciDevice } from "../../service/devices/types.ts";
import { createSimulatedHost } from "../../service/devices/simulate.ts";
import { Inventory } from "../../service/devices/inventory.ts";
import { DevicePolicy } from "../../service/devices/policy.ts";
import {
  closeFd,
  createEventfd,
  NativeEngine,
  signalEventfd,
} from "../../service/native/engine.ts";
import { type ErrnoName, NativeError } from "../../service/native/errno.ts";
import { Rejection } from "../../service/rejection/rejection.ts";
import { Journal } from "../../service/registry/journal.ts";
import { Registry } from "../../service/registry/registry.ts";
import { WIDTHS } from "../../service/registry/validation.ts";
import { GPU, NIC, removeDir, tempDir } from "../support/agent.ts";
import { readBar, waitForBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";
import { nonZeroRanges } from "./bar_scan.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function simulatedHost(): Promise<{ dir: string; root: string; bars: string[] }> {
  const dir = tempDir("ioeventd-ws-");
  const root = join(dir, "sys", "bus", "pci", "devices");
  await createSimulatedHost(root);
  const bars = [GPU, NIC].flatMap((d) =>
    readdirSync(join(root, d)).filter((f) => /^resource\d$/.test(f)).map((f) => join(root, d, f))
  );
  return { dir, root, bars };
}

const engineOptions = {
  workers: 1,
  canaryPeriodUs: 0,
  pollMode: "block",
  spinBudgetUs: 0,
} as const;

Deno.test(
  "native: register refuses bad widths, misaligned and out-of-BAR offsets; no byte changes",
  opts,
  async () => {
    const host = await simulatedHost();
    const engine = NativeEngine.open(engineOptions);
    const efd = createEventfd();
    try {
      for (const bar of host.bars) assert.deepEqual(nonZeroRanges(bar), [], `${bar} starts zeroed`);
      const bar0 = join(host.root, GPU, "resource0");
      const small = join(host.root, NIC, "resource0");
      const cases: [string, string, bigint, number, ErrnoName][] = [
        ["width 0", bar0, 0n, 0, "EINVAL"],
        ["width 3", bar0, 0n, 3, "EINVAL"],
        ["width 16", bar0, 0n, 16, "EINVAL"],
        ["width 2^32-1", bar0, 0n, 0xffff_ffff, "EINVAL"],
        ["4 bytes at 2", bar0, 2n, 4, "EINVAL"],
        ["8 bytes at 4", bar0, 4n, 8, "EINVAL"],
        ["at the end", bar0, BigInt(statSync(bar0).size), 4, "ERANGE"],
        ["far past the end", bar0, 1n << 40n, 8, "ERANGE"],
        ["offset + width wraps u64", bar0, (1n << 64n) - 8n, 8, "ERANGE"],
        ["2^63", bar0, 1n << 63n, 1, "ERANGE"],
        ["the small BAR's end", small, BigInt(statSync(small).size), 1, "ERANGE"],
      ];
      for (const [name, barPath, offset, width, errno] of cases) {
        assert.throws(
          () =>
            engine.register({
              barPath,
              offset,
              width,
              data: 0xffff_ffff_ffff_ffffn,
              fd: efd,
              pid: 0,
              pidStart: 0n,
            }),
          (e: unknown) => e instanceof NativeError && e.is(errno),
          name,
        );
      }
      assert.equal(engine.info().registrations, 0);
      signalEventfd(efd, 3n); // were anything armed, it would write now
      await new Promise((r) => setTimeout(r, 50));
      for (const bar of host.bars) assert.deepEqual(nonZeroRanges(bar), [], bar);

      // The control: the last aligned slot of the BAR is accepted and writes exactly there.
      const last = statSync(bar0).size - 8;
      const own = createEventfd();
      const { id } = engine.register({
        barPath: bar0,
        offset: BigInt(last),
        width: 8,
        data: 0x0807060504030201n,
        fd: own,
        pid: 0,
        pidStart: 0n,
      });
      signalEventfd(own, 1n);
      await waitForBar(bar0, last, 8, 0x0807060504030201n);
      assert.deepEqual(nonZeroRanges(bar0), [{ start: last, end: last + 8 }]);
      engine.unregister(id);
    } finally {
      closeFd(efd);
      engine.close();
      removeDir(host.dir);
    }
  },
);

Deno.test(
  "registry: when validation is fooled (a device claims a bigger BAR), the engine still refuses and nothing changes",
  opts,
  async () => {
    const host = await simulatedHost();
    const engine = NativeEngine.open(engineOptions);
    const journal = Journal.open(join(host.dir, "journal.sqlite"));
    const src = await SourceProcess.start(2);
    try {
      const inventory = new Inventory({
        roots: [{ path: host.root, simulated: true }],
        policy: new DevicePolicy({ allow: [], deny: [] }),
      });
      await inventory.scan();
      // The TypeScript side believes every BAR is 16 times its size and has no MSI-X.
      const liar = {
        get(address: string): PciDevice | undefined {
          const d = inventory.get(address);
          return d &&
            { ...d, msix: null, bars: d.bars.map((b) => ({ ...b, length: b.length * 16 })) };
        },
      };
      const registry = new Registry(
        engine,
        journal,
        liar,
        { maxPerDevice: 100, maxPerOwner: 100 },
        WIDTHS,
      );
      const bar0 = join(host.root, GPU, "resource0");
      const size = statSync(bar0).size;
      for (const offset of [size, size + 4096, size * 8]) {
        const v = registry.ctx.device(GPU)!.bars[0];
        assert.ok(offset + 4 <= v.length, "the (lying) validation lets it through");
        await assert.rejects(
          registry.create({
            owner: "vm-a",
            spec: {
              device: GPU,
              bar: 0,
              offset: String(offset),
              width: 4,
              data: "4294967295",
              source: { pid: src.pid, fd: src.fds[0] },
            },
          }),
          (e: unknown) =>
            e instanceof Rejection && e.reason === "ENGINE_FAILURE" && /ERANGE/.test(e.message),
        );
      }
      assert.equal(registry.size, 0);
      assert.equal(registry.revision, 0n);
      assert.equal(engine.info().registrations, 0);
      await registry.settled();
      assert.deepEqual(journal.all(), []);
      await src.signal(0, 5);
      await new Promise((r) => setTimeout(r, 50));
      for (const bar of host.bars) assert.deepEqual(nonZeroRanges(bar), [], bar);
      assert.equal(readBar(bar0, size - 4, 4), 0n);

      // The same registry still arms what is really inside the BAR.
      const ok = await registry.create({
        owner: "vm-a",
        spec: {
          device: GPU,
          bar: 0,
          offset: "64",
          width: 4,
          data: "9",
          source: { pid: src.pid, fd: src.fds[1] },
        },
      });
      assert.equal(ok.registration.state, "ARMED");
      await src.signal(1);
      await waitForBar(bar0, 64, 4, 9n);
    } finally {
      await src.kill();
      journal.close();
      engine.close();
      removeDir(host.dir);
    }
  },
);
