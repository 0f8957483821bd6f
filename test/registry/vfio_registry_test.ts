// The registry's side of spec.vfio_device, on a host without VFIO: the VMM's device
// descriptor is stood in for by a local eventfd (the data plane's acquireVfioDevice hook),
// and registerVfio by the engine writing into the simulated BAR, reported as "kernel". What
// is real: the registry, the journal, the source processes, /proc identities, the engine.
// What this shows: the descriptor is taken per call and closed once registerVfio returns;
// the journal keeps (pid, fd, start time) and replay takes it again from that process only
// (and first takes over a kernel entry a killed agent left behind); request_id and
// ReconcileOwner treat another vfio_device as another entry, handing a kernel-served key
// over before re-arming it, and giving it back on rollback. The real pidfd_getfd of a real
// VFIO fd and the kernel's VFIO_DEVICE_IOEVENTFD are in test/vm/.
import assert from "node:assert/strict";
import { join } from "node:path";
import { createSimulatedHost } from "../../service/devices/simulate.ts";
import { Inventory } from "../../service/devices/inventory.ts";
import { DevicePolicy } from "../../service/devices/policy.ts";
import { closeFd, createEventfd, NativeEngine } from "../../service/native/engine.ts";
import { Errno, NativeError } from "../../service/native/errno.ts";
import { Rejection } from "../../service/rejection/rejection.ts";
import { Journal } from "../../service/registry/journal.ts";
import { processStartTime } from "../../service/native/engine.ts";
import { type DataPlane, Registry } from "../../service/registry/registry.ts";
import { type RawSpec, WIDTHS } from "../../service/registry/validation.ts";
import { GPU, removeDir, tempDir } from "../support/agent.ts";
import { readBar, waitForBar, writeBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const engineOptions = {
  workers: 1,
  canaryPeriodUs: 0,
  pollMode: "block",
  spinBudgetUs: 0,
} as const;

/** A data plane whose VFIO calls stand in for a device; `log` is what the registry did. */
function standIn(engine: NativeEngine, root: string, failAt?: bigint) {
  const log: string[] = [];
  const open = new Set<number>();
  const unregister = (id: bigint) => {
    log.push(`unregister ${id}`);
    return engine.unregister(id);
  };
  const plane: DataPlane = {
    acquireSource: (pid, fd, expect) => engine.acquireSource(pid, fd, expect),
    acquireSources: (pid, wanted, start) => engine.acquireSources(pid, wanted, start),
    releaseSource: (fd) => engine.releaseSource(fd),
    processStartTime: (pid) => engine.processStartTime(pid),
    register: (r) => engine.register(r),
    // One by one, so that VFIO requests go through this stand-in's registerVfio (replay and a
    // turn's creates arm with one registerMany).
    registerMany: (rs) =>
      rs.map((r) => {
        try {
          const a = "vfioFd" in r ? plane.registerVfio(r) : engine.register(r);
          return { ok: true as const, id: a.id, backend: a.backend, worker: null };
        } catch (error) {
          return { ok: false as const, error: error as Error };
        }
      }),
    unregister,
    unregisterMany: (ids) => ids.map((id) => ({ ok: true, final: unregister(id) })),
    registrationStats: () => engine.registrationStats(),
    acquireVfioDevice(pid, fd) {
      if (processStartTime(pid) === null) throw new NativeError("vfio_acquire", Errno.ESRCH);
      const local = createEventfd(); // a descriptor the registry must close
      open.add(local);
      log.push(`acquire ${pid}:${fd}`);
      return local;
    },
    releaseVfioDevice(fd) {
      assert.ok(open.delete(fd), `release of ${fd}, which was not taken`);
      closeFd(fd);
      log.push("release");
    },
    kernelIoeventfd(_vfioFd, region, offset, width, data, fd) {
      log.push(`kernel ${region} ${offset} ${width} ${data} ${fd}`);
      if (fd === -1) throw new NativeError("kernel_ioeventfd", Errno.ENODEV);
    },
    registerVfio(r) {
      assert.ok(open.has(r.vfioFd), "registerVfio gets the descriptor just taken");
      assert.equal(r.mode, "auto");
      if (r.offset === failAt) throw new NativeError("register_vfio", Errno.EINVAL);
      const { id } = engine.register({
        barPath: join(root, GPU, `resource${r.bar}`),
        offset: r.offset,
        width: r.width,
        data: r.data,
        fd: r.fd,
        pid: r.pid,
        pidStart: r.pidStart,
      });
      log.push(`registerVfio ${r.offset} -> ${id}`);
      return { id, backend: "kernel" };
    },
  };
  return { plane, log, open };
}

async function host(dir: string) {
  const root = join(dir, "sys", "bus", "pci", "devices");
  await createSimulatedHost(root);
  const inventory = new Inventory({
    roots: [{ path: root, simulated: true }],
    policy: new DevicePolicy({ allow: [], deny: [] }),
  });
  await inventory.scan();
  return { root, inventory, bar0: join(root, GPU, "resource0") };
}

function spec(
  src: SourceProcess,
  i: number,
  offset: number,
  vfio?: { pid: number; fd: number },
): RawSpec {
  return {
    device: GPU,
    bar: 0,
    offset,
    width: 4,
    data: 0x70 + i,
    source: { pid: src.pid, fd: src.fds[i] },
    vfioDevice: vfio,
  };
}

Deno.test(
  "registry vfio_device: taken per call and closed, journaled with its start time, re-taken on replay",
  opts,
  async () => {
    const dir = tempDir("ioeventd-vfio-registry-");
    const h = await host(dir);
    const vmm = await SourceProcess.start(4);
    const gone = await SourceProcess.start(1);
    let engine = NativeEngine.open(engineOptions);
    const journal = Journal.open(join(dir, "journal.sqlite"));
    try {
      const start = processStartTime(vmm.pid)!;
      let s = standIn(engine, h.root);
      const registry = new Registry(s.plane, journal, h.inventory, {
        maxPerDevice: 100,
        maxPerOwner: 100,
      }, WIDTHS);
      const vfio = { pid: vmm.pid, fd: 42 };
      const a = await registry.create({
        owner: "vm-a",
        spec: spec(vmm, 0, 0x100, vfio),
        requestId: "r1",
      });
      assert.equal(a.registration.backend, "kernel");
      assert.deepEqual(a.registration.spec.vfioDevice, vfio);
      assert.equal(a.registration.vfioStartTime, start);
      assert.deepEqual(s.log.slice(0, 3), [
        `acquire ${vmm.pid}:42`,
        `registerVfio 256 -> ${a.registration.nativeId}`,
        "release",
      ]);
      assert.equal(s.open.size, 0, "no VFIO descriptor kept by the registry");
      assert.deepEqual(journal.all()[0].vfio, { pid: vmm.pid, fd: 42, startTime: start });
      await vmm.signal(0);
      await waitForBar(h.bar0, 0x100, 4, 0x70n);

      // request_id: the same call again is the same entry; another VFIO fd is not.
      const again = await registry.create({
        owner: "vm-a",
        spec: spec(vmm, 0, 0x100, vfio),
        requestId: "r1",
      });
      assert.equal(again.created, false);
      assert.equal(again.registration.id, a.registration.id);
      await assert.rejects(
        registry.create({
          owner: "vm-a",
          spec: spec(vmm, 0, 0x100, { pid: vmm.pid, fd: 43 }),
          requestId: "r1",
        }),
        (e: Rejection) => e.reason === "REQUEST_ID_REUSED",
      );

      // Journal rows the next agent must refuse: the VMM's PID now names another process
      // (a start time that is not its own), and a VMM that is gone.
      const rec = journal.all()[0];
      journal.apply([
        {
          put: {
            ...rec,
            id: "ioe-00000000000000a1",
            offset: 0x200n,
            fd: vmm.fds[1],
            requestId: "",
            vfio: { ...rec.vfio!, startTime: start + 1n },
          },
        },
        {
          put: {
            ...rec,
            id: "ioe-00000000000000a2",
            offset: 0x300n,
            fd: vmm.fds[2],
            requestId: "",
            vfio: { pid: gone.pid, fd: 42, startTime: processStartTime(gone.pid)! },
          },
        },
      ]);
      await gone.kill();
      await registry.settled();

      // Restart: a new engine, a new registry on the same journal.
      engine.close();
      writeBar(h.bar0, 0x100, 4, 0n);
      engine = NativeEngine.open(engineOptions);
      s = standIn(engine, h.root);
      const next = new Registry(s.plane, journal, h.inventory, {
        maxPerDevice: 100,
        maxPerOwner: 100,
      }, WIDTHS);
      const report = next.replay();
      assert.equal(report.rearmed, 1);
      assert.deepEqual(
        Object.fromEntries(report.dropped.map((d) => [d.id, d.reason])),
        { "ioe-00000000000000a1": "PID_REUSED", "ioe-00000000000000a2": "VFIO_DEVICE_INVALID" },
      );
      const back = next.get(a.registration.id);
      assert.equal(back.backend, "kernel");
      assert.equal(back.vfioStartTime, start);
      assert.deepEqual(back.spec.vfioDevice, vfio);
      // Taken again, the key a killed agent may have left in the kernel removed first, then
      // armed, then the descriptor closed.
      assert.deepEqual(s.log, [
        `acquire ${vmm.pid}:42`,
        "kernel 0 256 4 112 -1",
        `registerVfio 256 -> ${back.nativeId}`,
        "release",
      ]);
      assert.equal(s.open.size, 0);
      assert.deepEqual(journal.all().map((r) => r.id), [a.registration.id], "dropped rows gone");
      await vmm.signal(0);
      await waitForBar(h.bar0, 0x100, 4, 0x70n);

      // The VMM exiting takes its VFIO-served entries with it.
      const removed = await next.sourceExited(vmm.pid, start);
      assert.deepEqual(removed.map((r) => r.id), [a.registration.id]);
      assert.equal(next.size, 0);
    } finally {
      await vmm.kill();
      await gone.kill();
      journal.close();
      engine.close();
      removeDir(dir);
    }
  },
);

Deno.test(
  "registry vfio_device: ReconcileOwner keeps, replaces (kernel key handed over first) and rolls back",
  opts,
  async () => {
    const dir = tempDir("ioeventd-vfio-reconcile-");
    const h = await host(dir);
    const vmm = await SourceProcess.start(4);
    const engine = NativeEngine.open(engineOptions);
    const journal = Journal.open(join(dir, "journal.sqlite"));
    try {
      const s = standIn(engine, h.root, 0x400n);
      const registry = new Registry(s.plane, journal, h.inventory, {
        maxPerDevice: 100,
        maxPerOwner: 100,
      }, WIDTHS);
      const dev42 = { pid: vmm.pid, fd: 42 };
      const dev43 = { pid: vmm.pid, fd: 43 };

      // Two specs on one VFIO device: taken once for the call, closed after.
      const first = await registry.reconcile({
        owner: "vm-r",
        desired: [spec(vmm, 0, 0x100, dev42), spec(vmm, 1, 0x104, dev42)],
      });
      assert.equal(first.added.length, 2);
      assert.equal(s.log.filter((l) => l.startsWith("acquire")).length, 1);
      assert.equal(s.open.size, 0);

      // The same again: kept, nothing taken.
      s.log.length = 0;
      const same = await registry.reconcile({
        owner: "vm-r",
        desired: [spec(vmm, 0, 0x100, dev42), spec(vmm, 1, 0x104, dev42)],
      });
      assert.equal(same.kept.length, 2);
      assert.equal(s.log.length, 0, s.log.join("\n"));

      // Another VFIO fd for one of them: a different entry. The kernel holds one entry per
      // key, so the old one leaves it before the new one is armed.
      const old = first.added.find((r) => r.spec.offset === 0x100n)!;
      const oldNative = old.nativeId;
      s.log.length = 0;
      const moved = await registry.reconcile({
        owner: "vm-r",
        desired: [spec(vmm, 0, 0x100, dev43), spec(vmm, 1, 0x104, dev42)],
      });
      assert.deepEqual(
        [moved.added.length, moved.kept.length, moved.removed.map((r) => r.id)],
        [1, 1, [old.id]],
      );
      assert.deepEqual(moved.added[0].spec.vfioDevice, dev43);
      const unreg = s.log.indexOf(`unregister ${oldNative}`);
      const rereg = s.log.findIndex((l) => l.startsWith("registerVfio 256"));
      assert.ok(unreg >= 0 && unreg < rereg, s.log.join("\n"));

      // Without a VFIO device: another entry again, served from the sysfs resource.
      const plain = await registry.reconcile({
        owner: "vm-r",
        desired: [spec(vmm, 0, 0x100), spec(vmm, 1, 0x104, dev42)],
      });
      assert.equal(plain.added[0].backend, "user-mmap");

      // Back to the VFIO device, but the call fails later (0x400 is refused): all or
      // nothing — the handed-over entry is armed again and still writes.
      const toVfio = await registry.reconcile({
        owner: "vm-r",
        desired: [spec(vmm, 0, 0x100, dev42), spec(vmm, 1, 0x104, dev42)],
      });
      const kernelServed = toVfio.added[0];
      assert.equal(kernelServed.backend, "kernel");
      const servedBy = kernelServed.nativeId;
      await assert.rejects(
        registry.reconcile({
          owner: "vm-r",
          desired: [
            spec(vmm, 0, 0x100, dev43),
            spec(vmm, 1, 0x104, dev42),
            spec(vmm, 2, 0x400, dev42),
          ],
        }),
        (e: Rejection) => e.reason === "ENGINE_FAILURE",
      );
      await registry.settled();
      const still = registry.get(kernelServed.id);
      assert.equal(still.state, "ARMED");
      assert.ok(still.nativeId !== null && still.nativeId !== servedBy);
      assert.deepEqual(still.spec.vfioDevice, dev42);
      assert.equal(registry.size, 2);
      assert.equal(s.open.size, 0);
      writeBar(h.bar0, 0x100, 4, 0n);
      await vmm.signal(0);
      await waitForBar(h.bar0, 0x100, 4, 0x70n);
      assert.equal(readBar(h.bar0, 0x400, 4), 0n);
    } finally {
      await vmm.kill();
      journal.close();
      engine.close();
      removeDir(dir);
    }
  },
);
