// The native plugin's own MSI-X rule: it reads the device's config space (the sysfs `config`
// beside `resourceN`) and refuses a write into the MSI-X vector table or the pending-bit array,
// whatever TypeScript validated. These tests call the engine directly, bypassing validation.ts.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { decodeStatus } from "../../service/api/status_details.ts";
import { simulatedSysfsRoot } from "../../service/config.ts";
import { join } from "node:path";
import { createSimulatedDevice } from "../../service/devices/simulate.ts";
import { NativeEngine } from "../../service/native/engine.ts";
import { NativeError } from "../../service/native/errno.ts";
import { refusalOf } from "../../service/registry/data_plane_refusals.ts";
import { GPU as AGENT_GPU, startAgent, tempDir } from "../support/agent.ts";
import { readBar, waitForBar, writeBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const GPU = "0000:65:00.0";
// The simulated GPU (service/devices/simulate.ts): MSI-X with 16 entries, table at BAR0
// 0xb90000 (256 bytes), PBA at BAR0 0xba0000 (8 bytes).
const TABLE = 0xb90000n;
const PBA = 0xba0000n;

async function simulatedGpu(msixTableOffset?: number): Promise<string> {
  const root = join(tempDir(), "bus", "pci", "devices");
  await createSimulatedDevice(root, GPU, "nvidia-gpu", { msixTableOffset });
  return root;
}

function open(): NativeEngine {
  return NativeEngine.open({ workers: 1, canaryPeriodUs: 0, pollMode: "block", spinBudgetUs: 0 });
}

function refused(fn: () => unknown): NativeError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof NativeError, String(err));
    return err;
  }
  assert.fail("not refused");
}

Deno.test(
  "msix guard: the plugin refuses the MSI-X table and PBA from the device's config space and accepts their neighbours",
  opts,
  async () => {
    const root = await simulatedGpu();
    const bar0 = join(root, GPU, "resource0");
    const engine = open();
    const src = await SourceProcess.start(1);
    try {
      const s = engine.acquireSource(src.pid, src.fds[0]);
      const reg = (offset: bigint, width = 4) => () =>
        engine.register({
          barPath: bar0,
          offset,
          width,
          data: 0x5an,
          fd: s.fd,
          pid: 0,
          pidStart: 0n,
        });
      for (const [offset, width] of [[TABLE, 4], [TABLE + 0xfcn, 4], [TABLE + 0xf8n, 8]] as const) {
        const e = refused(reg(offset, width));
        assert.ok(e.is("EADDRINUSE"), `table at ${offset.toString(16)}: ${e.message}`);
        const r = refusalOf("arm", e)!;
        assert.deepEqual([r.reason, r.field], ["OVERLAPS_MSIX_TABLE", "offset"]);
      }
      for (const [offset, width] of [[PBA, 8], [PBA + 4n, 4], [PBA + 7n, 1]] as const) {
        const e = refused(reg(offset, width));
        assert.ok(e.is("EADDRNOTAVAIL"), `PBA at ${offset.toString(16)}: ${e.message}`);
        const r = refusalOf("arm", e)!;
        assert.deepEqual([r.reason, r.field], ["OVERLAPS_MSIX_PBA", "offset"]);
      }
      // The batch path applies the same rule.
      const batch = engine.registerMany([
        {
          barPath: bar0,
          offset: TABLE + 0x10n,
          width: 4,
          data: 1n,
          fd: s.fd,
          pid: 0,
          pidStart: 0n,
        },
      ]);
      assert.ok(!batch[0].ok && batch[0].error.is("EADDRINUSE"));
      assert.equal(engine.info().registrations, 0, "nothing armed");
      // The neighbours on both sides of each are fine, and written (one eventfd, four writes).
      const neighbours = [TABLE - 4n, TABLE + 0x100n, PBA - 4n, PBA + 8n];
      for (const offset of neighbours) {
        const fd = engine.acquireSource(src.pid, src.fds[0]).fd;
        engine.register({ barPath: bar0, offset, width: 4, data: 0x5an, fd, pid: 0, pidStart: 0n });
      }
      engine.releaseSource(s.fd);
      await src.signal(0);
      for (const offset of neighbours) await waitForBar(bar0, Number(offset), 4, 0x5an);
      assert.equal(readBar(bar0, Number(TABLE), 8), 0n, "the table was never written");
      assert.equal(readBar(bar0, Number(TABLE + 0xf8n), 8), 0n, "nor its last entry's end");
      assert.equal(readBar(bar0, Number(PBA), 8), 0n, "the PBA was never written");
      // Another BAR of the same device has no MSI-X structure at that offset.
      const fd = engine.acquireSource(src.pid, src.fds[0]).fd;
      const bar3 = join(root, GPU, "resource3");
      engine.register({
        barPath: bar3,
        offset: PBA & 0xffffn,
        width: 4,
        data: 1n,
        fd,
        pid: 0,
        pidStart: 0n,
      });
      assert.equal(engine.info().registrations, 5);
    } finally {
      await src.kill();
      engine.close();
    }
  },
);

Deno.test(
  "msix guard: a config space changed on disk after arming: the armed write goes on until the agent disarms it, a new one there is refused",
  opts,
  async () => {
    const root = await simulatedGpu();
    const bar0 = join(root, GPU, "resource0");
    const engine = open();
    const src = await SourceProcess.start(1);
    const AT = 0x100000n;
    try {
      const armed = engine.register({
        barPath: bar0,
        offset: AT,
        width: 4,
        data: 0x11n,
        fd: engine.acquireSource(src.pid, src.fds[0]).fd,
        pid: 0,
        pidStart: 0n,
      });
      await src.signal(0);
      await waitForBar(bar0, Number(AT), 4, 0x11n);

      // The MSI-X table moves onto the armed register (the config file is rewritten).
      await createSimulatedDevice(root, GPU, "nvidia-gpu", { msixTableOffset: Number(AT) });
      // The engine does not re-read config space per write (msix_guard.rs says why): the armed
      // registration keeps writing until the agent's rescan disarms it (ORPHANED,
      // OVERLAPS_MSIX_TABLE: test/durability/orphan_test.ts).
      writeBar(bar0, Number(AT), 4, 0n);
      await src.signal(0);
      await waitForBar(bar0, Number(AT), 4, 0x11n);
      // Anything armed from now on is checked against the new layout, on the same mapping.
      const fd = engine.acquireSource(src.pid, src.fds[0]).fd;
      const e = refused(() =>
        engine.register({
          barPath: bar0,
          offset: AT + 0x20n,
          width: 4,
          data: 0x22n,
          fd,
          pid: 0,
          pidStart: 0n,
        })
      );
      assert.ok(e.is("EADDRINUSE"), e.message);
      // The old table's place is free now.
      engine.register({
        barPath: bar0,
        offset: TABLE,
        width: 4,
        data: 0x22n,
        fd,
        pid: 0,
        pidStart: 0n,
      });
      // What the agent does on its rescan: disarm (a barrier: no write after it returns).
      engine.unregister(armed.id);
      writeBar(bar0, Number(AT), 4, 0n);
      await src.signal(0);
      await waitForBar(bar0, Number(TABLE), 4, 0x22n);
      assert.equal(readBar(bar0, Number(AT), 4), 0n, "no write after the disarm");
    } finally {
      await src.kill();
      engine.close();
    }
  },
);

Deno.test(
  "msix guard: through the agent, a stale device view is caught by the plugin: OVERLAPS_MSIX_TABLE on spec.offset",
  opts,
  async () => {
    const t = await startAgent({ rescanIntervalMs: 3_600_000 }, tempDir());
    const src = await SourceProcess.start(1);
    try {
      const AT = 0x100000;
      // The table moves onto AT on disk; the agent has not rescanned, so its validation passes.
      await createSimulatedDevice(simulatedSysfsRoot(t.config), AGENT_GPU, "nvidia-gpu", {
        iommuGroup: 12,
        msixTableOffset: AT,
      });
      assert.equal((await t.client.getDevice(AGENT_GPU)).msix!.table!.offset, String(TABLE));
      const err = await t.client.create({
        owner: "vm-m",
        spec: {
          device: AGENT_GPU,
          bar: 0,
          offset: String(AT + 0x40),
          width: 4,
          data: "1",
          source: { pid: src.pid, fd: src.fds[0] },
        },
      }).then(() => assert.fail("accepted"), (e: grpc.ServiceError) => e);
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT, err.details);
      const details = decodeStatus(err)!;
      assert.equal(details.reason, "OVERLAPS_MSIX_TABLE");
      assert.equal(details.violations[0]?.field, "spec.offset");
      assert.match(details.message, /data plane/);
      assert.equal(t.agent.engine.info().registrations, 0);
      assert.equal((await t.client.list({})).totalSize, 0);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);
