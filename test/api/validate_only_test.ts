// Knowable in advance: CreateIoeventfd{validate_only} and ReconcileOwner{dry_run} answer
// exactly what the real call then does, and change nothing. A real agent, real source
// processes; the specs are generated (fast-check) across valid and invalid values.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { decodeStatus } from "../../service/api/status_details.ts";
import type { Ioeventfd__Output } from "../../service/api/generated/ioeventd/v1/Ioeventfd.ts";
import { GPU, NIC, startAgent } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

type Outcome =
  | { ok: true; ioeventfd: Omit<Ioeventfd__Output, "id" | "createdAt"> }
  | { ok: false; code: number; reason: string; fields: string[] };

async function outcome(call: Promise<Ioeventfd__Output>): Promise<Outcome> {
  try {
    const { id: _id, createdAt: _at, ...rest } = await call;
    return { ok: true, ioeventfd: rest };
  } catch (err) {
    const e = err as grpc.ServiceError;
    const d = decodeStatus(e);
    return {
      ok: false,
      code: e.code,
      reason: d?.reason ?? "",
      fields: d?.violations.map((v) => v.field) ?? [],
    };
  }
}

Deno.test(
  "validate_only: the same answer as the real create, over generated specs, and changes nothing",
  opts,
  async () => {
    const t = await startAgent();
    const src = await SourceProcess.start(2);
    try {
      const spec = fc.record({
        device: fc.constantFrom(GPU, NIC, "0000:01:00.0", "gpu0"),
        bar: fc.constantFrom(0, 1, 2, 5, 6),
        offset: fc.constantFrom("0", "4", "0x88704", "0x88702", "0xb90000", "0x10000000"),
        width: fc.constantFrom(1, 2, 3, 4, 8),
        data: fc.constantFrom("0", "255", "256", "0xffffffff"),
        source: fc.constantFrom(
          { pid: src.pid, fd: src.fds[0] },
          { pid: src.pid, fd: 999 },
          { pid: src.pid, fd: 0 }, // stdin: not an eventfd
        ),
      });
      const owner = fc.constantFrom("vm-1", "vm 2");
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(spec, owner, async (s, o) => {
          const before = t.agent.engine.info().registrations;
          const listed = (await t.client.list({})).totalSize;
          const dry = await outcome(t.client.create({ spec: s, owner: o, validateOnly: true }));
          assert.equal(t.agent.engine.info().registrations, before, "validate_only armed");
          assert.equal((await t.client.list({})).totalSize, listed, "validate_only registered");
          const real = await outcome(t.client.create({ spec: s, owner: o }));
          assert.deepEqual(dry, real);
          if (real.ok) {
            accepted++;
            const [armed] = (await t.client.list({})).ioeventfds;
            await t.client.delete({ id: armed.id });
          }
        }),
        { numRuns: 120, seed: 0x10e },
      );
      assert.ok(accepted > 0, "the run included accepted specs");
      // The would-be ioeventfd has no id.
      const wouldBe = await t.client.create({
        spec: {
          device: GPU,
          bar: 0,
          offset: "0x88704",
          width: 4,
          data: "0",
          source: { pid: src.pid, fd: src.fds[1] },
        },
        owner: "vm-1",
        validateOnly: true,
      });
      assert.equal(wouldBe.id, "");
      assert.equal(wouldBe.state, "ARMED");
      assert.equal(wouldBe.backend, "user-mmap");
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test(
  "ReconcileOwner dry_run reports exactly what the real call does, entry for entry",
  opts,
  async () => {
    const t = await startAgent();
    const src = await SourceProcess.start(4);
    try {
      const spec = (i: number, offset: number, labels: Record<string, string> = {}) => ({
        device: GPU,
        bar: 0,
        offset: String(offset),
        width: 4,
        data: String(i),
        source: { pid: src.pid, fd: src.fds[i] },
        labels,
      });
      await t.client.reconcile({ owner: "vm-42", desired: [spec(0, 0x100), spec(1, 0x200)] });
      const desired = [spec(0, 0x100, { tier: "gold" }), spec(2, 0x300), spec(3, 0x400)];
      const dry = await t.client.reconcile({ owner: "vm-42", desired, dryRun: true });
      assert.equal((await t.client.list({ owner: "vm-42" })).totalSize, 2, "dry run changed");
      const real = await t.client.reconcile({ owner: "vm-42", desired });
      const strip = (list: Ioeventfd__Output[]) =>
        list.map(({ id: _id, createdAt: _at, ...rest }) => rest);
      assert.equal(dry.added.length, 2);
      assert.deepEqual(strip(dry.added), strip(real.added));
      assert.ok(dry.added.every((i) => i.id === ""), "would-be entries have no id");
      assert.deepEqual(dry.kept, real.kept, "kept, with the labels they will have");
      assert.deepEqual(dry.removed.map((i) => i.id), real.removed.map((i) => i.id));
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);
