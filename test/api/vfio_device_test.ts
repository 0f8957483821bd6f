// spec.vfio_device through the real server on a host without VFIO (the real device and
// kernel are proven in test/vm/): every descriptor that is not a vfio-pci device of a live
// process is refused with VFIO_DEVICE_INVALID on field spec.vfio_device, and the refusal
// changes nothing — no registration, no engine entry, no descriptor left open in the agent.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { decodeStatus } from "../../service/api/status_details.ts";
import type { CreateIoeventfdRequest } from "../../service/api/generated/ioeventd/v1/CreateIoeventfdRequest.ts";
import type { IoeventfdSpec } from "../../service/api/generated/ioeventd/v1/IoeventfdSpec.ts";
import { GPU, startAgent } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

Deno.test(
  "vfio_device: not a VFIO device, no such fd, a dead process → VFIO_DEVICE_INVALID, nothing changed",
  opts,
  async () => {
    const t = await startAgent();
    const vmm = await SourceProcess.start(4);
    await vmm.command("pipe 3"); // fd 3 of the VMM becomes the read end of a pipe
    const dead = await SourceProcess.start(1);
    const deadPid = dead.pid;
    await dead.kill();
    try {
      const spec = (over: Partial<IoeventfdSpec> = {}): IoeventfdSpec => ({
        device: GPU,
        bar: 0,
        offset: "512",
        width: 4,
        data: "1",
        source: { pid: vmm.pid, fd: vmm.fds[0] },
        ...over,
      });
      // One plain ioeventfd first: it must be there, unchanged, after every refusal.
      const plain = await t.client.create({ owner: "vm-v", spec: spec({ offset: "256" }) });
      assert.equal(plain.backend, "user-mmap");
      assert.equal(plain.spec?.vfioDevice, null);
      assert.equal(plain.vfioDeviceStartTime, "0");
      const fdsBefore = openFds();
      const registrationsBefore = t.agent.engine.info().registrations;

      const cases: [string, CreateIoeventfdRequest, grpc.status, string, string][] = [
        [
          "an eventfd of the VMM",
          { owner: "vm-v", spec: spec({ vfioDevice: { pid: vmm.pid, fd: vmm.fds[1] } }) },
          grpc.status.FAILED_PRECONDITION,
          "VFIO_DEVICE_INVALID",
          "spec.vfio_device",
        ],
        [
          "a pipe of the VMM",
          { owner: "vm-v", spec: spec({ vfioDevice: { pid: vmm.pid, fd: vmm.fds[3] } }) },
          grpc.status.FAILED_PRECONDITION,
          "VFIO_DEVICE_INVALID",
          "spec.vfio_device",
        ],
        [
          "no such fd in the VMM",
          { owner: "vm-v", spec: spec({ vfioDevice: { pid: vmm.pid, fd: 999 } }) },
          grpc.status.FAILED_PRECONDITION,
          "VFIO_DEVICE_INVALID",
          "spec.vfio_device",
        ],
        [
          "a process that has exited",
          { owner: "vm-v", spec: spec({ vfioDevice: { pid: deadPid, fd: 3 } }) },
          grpc.status.FAILED_PRECONDITION,
          "VFIO_DEVICE_INVALID",
          "spec.vfio_device",
        ],
        [
          "pid 0",
          { owner: "vm-v", spec: spec({ vfioDevice: { pid: 0, fd: 3 } }) },
          grpc.status.INVALID_ARGUMENT,
          "INVALID_ARGUMENT",
          "spec.vfio_device.pid",
        ],
        [
          "negative fd",
          { owner: "vm-v", spec: spec({ vfioDevice: { pid: vmm.pid, fd: -1 } }) },
          grpc.status.INVALID_ARGUMENT,
          "INVALID_ARGUMENT",
          "spec.vfio_device.fd",
        ],
      ];
      for (const [name, req, code, reason, field] of cases) {
        const err = await t.client.create(req).then(
          () => assert.fail(`${name}: accepted`),
          (e: grpc.ServiceError) => e,
        );
        assert.equal(err.code, code, `${name}: code ${err.code} ${err.details}`);
        const details = decodeStatus(err);
        assert.ok(details, `${name}: no grpc-status-details-bin`);
        assert.equal(details.reason, reason, `${name}: ${err.details}`);
        assert.equal(details.violations[0]?.field, field, name);
      }

      // ReconcileOwner: all or nothing, field paths by index; the plain entry stays.
      const bad = await t.client.reconcile({
        owner: "vm-v",
        desired: [
          spec({ offset: "256" }),
          spec({ source: { pid: vmm.pid, fd: vmm.fds[2] }, vfioDevice: { pid: vmm.pid, fd: 3 } }),
        ],
      }).then(() => assert.fail("reconcile accepted"), (e: grpc.ServiceError) => e);
      assert.equal(bad.code, grpc.status.FAILED_PRECONDITION);
      assert.equal(decodeStatus(bad)?.reason, "VFIO_DEVICE_INVALID");
      assert.equal(decodeStatus(bad)?.violations[0]?.field, "desired[1].vfio_device");
      const dry = await t.client.reconcile({
        owner: "vm-v",
        dryRun: true,
        desired: [spec({ offset: "256", vfioDevice: { pid: vmm.pid, fd: vmm.fds[1] } })],
      }).then(() => assert.fail("dry run accepted"), (e: grpc.ServiceError) => e);
      assert.equal(decodeStatus(dry)?.reason, "VFIO_DEVICE_INVALID", "a dry run takes it too");

      // Nothing changed: the one entry, the engine's count, and every descriptor the agent
      // took for those calls (the eventfd sources, any VFIO fd) was given back.
      const listed = await t.client.list({});
      assert.deepEqual(listed.ioeventfds.map((i) => i.id), [plain.id]);
      assert.equal(t.agent.engine.info().registrations, registrationsBefore);
      assert.equal(openFds(), fdsBefore, "no descriptor left open by a refusal");
      assert.ok((t.agent.registry.counters.rejected.get("VFIO_DEVICE_INVALID") ?? 0) >= 6);
    } finally {
      await vmm.kill();
      await t.stop();
    }
  },
);
