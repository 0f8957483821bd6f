// Every rejection reason through the real server: the gRPC code, the ErrorInfo reason and
// the BadRequest field in grpc-status-details-bin — and that a rejection changes nothing.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { decodeStatus } from "../../service/api/status_details.ts";
import type { CreateIoeventfdRequest } from "../../service/api/generated/ioeventd/v1/CreateIoeventfdRequest.ts";
import { GPU, NIC, startAgent } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "rejections: each reason has its code, reason and field, and changes nothing",
  opts,
  async () => {
    const t = await startAgent({ deny: [NIC], maxPerDevice: 3 });
    const src = await SourceProcess.start(8);
    await src.command("pipe 7"); // fd 7 becomes a pipe: not an eventfd
    const dead = await SourceProcess.start(1);
    const deadPid = dead.pid;
    await dead.kill();
    try {
      const gpu = await t.client.getDevice(GPU);
      const table = gpu.msix!.table!;
      const pba = gpu.msix!.pba!;
      const base = (over: Record<string, unknown> = {}): CreateIoeventfdRequest => ({
        owner: "vm-x",
        spec: {
          device: GPU,
          bar: 0,
          offset: String(0x88704),
          width: 4,
          data: "0",
          source: { pid: src.pid, fd: src.fds[0] },
          ...over,
        },
      });
      // Fill the device to its limit of 3 (one of them is the duplicate target).
      await t.client.create(base());
      await t.client.create(
        base({ offset: String(0x100), source: { pid: src.pid, fd: src.fds[1] } }),
      );
      const countBefore = 2;

      const cases: [string, CreateIoeventfdRequest, grpc.status, string, string][] = [
        [
          "width 3",
          base({ width: 3 }),
          grpc.status.INVALID_ARGUMENT,
          "WIDTH_UNSUPPORTED",
          "spec.width",
        ],
        [
          "beyond BAR0",
          base({ offset: String(16 << 20) }),
          grpc.status.OUT_OF_RANGE,
          "OUT_OF_BAR",
          "spec.offset",
        ],
        [
          "misaligned",
          base({ offset: String(0x88702) }),
          grpc.status.INVALID_ARGUMENT,
          "UNALIGNED",
          "spec.offset",
        ],
        [
          "MSI-X table",
          base({ bar: table.bar, offset: table.offset }),
          grpc.status.INVALID_ARGUMENT,
          "OVERLAPS_MSIX_TABLE",
          "spec.offset",
        ],
        [
          "MSI-X PBA",
          base({ bar: pba.bar, offset: pba.offset }),
          grpc.status.INVALID_ARGUMENT,
          "OVERLAPS_MSIX_PBA",
          "spec.offset",
        ],
        [
          "upper half of BAR1",
          base({ bar: 2 }),
          grpc.status.FAILED_PRECONDITION,
          "BAR_NOT_MAPPABLE",
          "spec.bar",
        ],
        ["BAR 6", base({ bar: 6 }), grpc.status.INVALID_ARGUMENT, "BAR_OUT_OF_RANGE", "spec.bar"],
        [
          "data too wide",
          base({ width: 1, offset: "0", data: "256" }),
          grpc.status.INVALID_ARGUMENT,
          "DATA_OUT_OF_RANGE",
          "spec.data",
        ],
        [
          "unknown device",
          base({ device: "0000:01:02.3" }),
          grpc.status.NOT_FOUND,
          "DEVICE_NOT_FOUND",
          "spec.device",
        ],
        [
          "deny-listed device",
          base({ device: NIC }),
          grpc.status.FAILED_PRECONDITION,
          "DEVICE_NOT_MANAGED",
          "spec.device",
        ],
        [
          "duplicate key",
          base({ source: { pid: src.pid, fd: src.fds[2] } }),
          grpc.status.ALREADY_EXISTS,
          "DUPLICATE",
          "spec.offset",
        ],
        [
          "not an eventfd",
          base({ offset: String(0x200), source: { pid: src.pid, fd: src.fds[7] } }),
          grpc.status.FAILED_PRECONDITION,
          "SOURCE_NOT_EVENTFD",
          "spec.source",
        ],
        [
          "fd not open",
          base({ offset: String(0x200), source: { pid: src.pid, fd: 999 } }),
          grpc.status.FAILED_PRECONDITION,
          "SOURCE_FD_INVALID",
          "spec.source",
        ],
        [
          "process gone",
          base({ offset: String(0x200), source: { pid: deadPid, fd: 3 } }),
          grpc.status.FAILED_PRECONDITION,
          "SOURCE_PROCESS_GONE",
          "spec.source",
        ],
        [
          "empty owner",
          { ...base(), owner: "" },
          grpc.status.INVALID_ARGUMENT,
          "INVALID_OWNER",
          "owner",
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
        assert.equal(details.reason, reason, name);
        assert.equal(details.violations[0]?.field, field, name);
        assert.ok(details.message.length > 0);
      }

      // The third fits; the fourth reaches the per-device limit.
      await t.client.create(
        base({ offset: String(0x300), source: { pid: src.pid, fd: src.fds[3] } }),
      );
      const full = await t.client.create(
        base({ offset: String(0x400), source: { pid: src.pid, fd: src.fds[4] } }),
      ).then(() => assert.fail("accepted past the limit"), (e: grpc.ServiceError) => e);
      assert.equal(full.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(decodeStatus(full)?.reason, "LIMIT_REACHED");

      // request_id reused for something else.
      await t.client.delete({
        key: { device: GPU, bar: 0, offset: String(0x300), width: 4, data: "0" },
      });
      await t.client.create({
        ...base({ offset: String(0x500), source: { pid: src.pid, fd: src.fds[5] } }),
        requestId: "r1",
      });
      const reused = await t.client.create({ ...base({ offset: String(0x600) }), requestId: "r1" })
        .then(() => assert.fail("accepted"), (e: grpc.ServiceError) => e);
      assert.equal(reused.code, grpc.status.ALREADY_EXISTS);
      assert.equal(decodeStatus(reused)?.reason, "REQUEST_ID_REUSED");

      // Deleting what is not there.
      const missing = await t.client.delete({ id: "ioe-0000000000000000" })
        .then(() => assert.fail("deleted"), (e: grpc.ServiceError) => e);
      assert.equal(missing.code, grpc.status.NOT_FOUND);
      assert.equal(decodeStatus(missing)?.reason, "NOT_FOUND");

      // Nothing was changed by any rejection: exactly what was accepted is there.
      const listed = await t.client.list({});
      assert.equal(listed.totalSize, countBefore + 1);
      assert.equal(t.agent.engine.info().registrations, countBefore + 1);
      assert.ok((t.agent.registry.counters.rejected.get("UNALIGNED") ?? 0) >= 1);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);
