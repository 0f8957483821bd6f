// The ioeventfd lifecycle through the real gRPC API: a real agent, a real child process
// owning eventfds, and the bytes that land in the simulated BAR file.
import assert from "node:assert/strict";
import type { IoeventfdEvent__Output } from "../../service/api/generated/ioeventd/v1/IoeventfdEvent.ts";
import { barPath, GPU, startAgent } from "../support/agent.ts";
import { readBar, waitForBar, writeBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function spec(source: SourceProcess, i: number, offset: number, width: number, data: bigint) {
  return {
    device: GPU,
    bar: 0,
    offset: String(offset),
    width,
    data: data.toString(),
    source: { pid: source.pid, fd: source.fds[i] },
  };
}

Deno.test(
  "lifecycle: each width lands little-endian at its offset, and stops after delete",
  opts,
  async () => {
    const t = await startAgent();
    const src = await SourceProcess.start(4);
    try {
      const bar0 = barPath(t.config, GPU, 0);
      const cases: [number, number, bigint][] = [
        [1, 0x1001, 0xabn],
        [2, 0x2002, 0xbeefn],
        [4, 0x88704, 0xdeadbeefn],
        [8, 0x3008, 0x0123456789abcdefn],
      ];
      const ids: string[] = [];
      for (const [i, [width, offset, data]] of cases.entries()) {
        const created = await t.client.create({
          spec: spec(src, i, offset, width, data),
          owner: "vm-1",
        });
        assert.match(created.id, /^ioe-[0-9a-f]{16}$/);
        assert.equal(created.state, "ARMED");
        assert.equal(created.backend, "user-mmap");
        ids.push(created.id);
        await src.signal(i);
        await waitForBar(bar0, offset, width, data);
        // Nothing around the register was touched.
        assert.equal(readBar(bar0, offset - 1, 1), 0n);
        assert.equal(readBar(bar0, offset + width, 1), 0n);
      }
      const got = await t.client.get(ids[3]);
      assert.equal(got.triggers, "1");
      assert.equal(got.signals, "1");
      assert.ok(got.lastTriggerTime);

      // After delete returns, signals no longer write.
      await t.client.delete({ id: ids[2] });
      writeBar(bar0, 0x88704, 4, 0n);
      await src.signal(2, 5);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(readBar(bar0, 0x88704, 4), 0n);
      await assert.rejects(t.client.get(ids[2]), (e: { code: number }) => e.code === 5);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test(
  "lifecycle: a signal pending before create fires at once; coalesced signals are counted",
  opts,
  async () => {
    const t = await startAgent();
    const src = await SourceProcess.start(1);
    try {
      await src.signal(0, 3); // before the ioeventfd exists: the kernel keeps the count
      const created = await t.client.create({ spec: spec(src, 0, 0x100, 4, 7n), owner: "vm-1" });
      await waitForBar(barPath(t.config, GPU, 0), 0x100, 4, 7n);
      const got = await t.client.get(created.id);
      assert.equal(got.triggers, "1", "one write for the pending signals");
      assert.equal(got.signals, "3", "three signals coalesced into it");
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test(
  "lifecycle: list filters and pages, delete by key, request_id is idempotent",
  opts,
  async () => {
    const t = await startAgent();
    const src = await SourceProcess.start(6);
    try {
      for (let i = 0; i < 5; i++) {
        await t.client.create({
          spec: {
            ...spec(src, i, 0x1000 + 4 * i, 4, BigInt(i)),
            labels: { tier: i % 2 ? "odd" : "even" },
          },
          owner: i < 3 ? "vm-a" : "vm-b",
        });
      }
      assert.equal((await t.client.list({ owner: "vm-a" })).totalSize, 3);
      assert.equal((await t.client.list({ labels: { tier: "odd" } })).totalSize, 2);
      const page1 = await t.client.list({ pageSize: 2 });
      assert.equal(page1.ioeventfds.length, 2);
      assert.equal(page1.totalSize, 5);
      const page2 = await t.client.list({ pageSize: 2, pageToken: page1.nextPageToken });
      const page3 = await t.client.list({ pageSize: 2, pageToken: page2.nextPageToken });
      assert.equal(page3.nextPageToken, "");
      const ids = [...page1.ioeventfds, ...page2.ioeventfds, ...page3.ioeventfds].map((i) => i.id);
      assert.equal(new Set(ids).size, 5);
      assert.deepEqual(ids, [...ids].sort());

      const { deleted } = await t.client.delete({
        key: { device: GPU, bar: 0, offset: String(0x1004), width: 4, data: "1" },
      });
      assert.equal(deleted?.owner, "vm-a");
      assert.equal((await t.client.list({})).totalSize, 4);

      const first = await t.client.create({
        spec: spec(src, 5, 0x2000, 4, 9n),
        owner: "vm-c",
        requestId: "req-1",
      });
      const retry = await t.client.create({
        spec: spec(src, 5, 0x2000, 4, 9n),
        owner: "vm-c",
        requestId: "req-1",
      });
      assert.equal(retry.id, first.id, "a retried request returns the original");
      assert.equal((await t.client.list({ owner: "vm-c" })).totalSize, 1);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test(
  "lifecycle: watch sends a snapshot, then every change; source exit removes and reports",
  opts,
  async () => {
    const t = await startAgent();
    const src = await SourceProcess.start(2);
    const events: IoeventfdEvent__Output[] = [];
    try {
      const existing = await t.client.create({ spec: spec(src, 0, 0x10, 4, 1n), owner: "vm-w" });
      const call = t.client.watch({}, (e) => events.push(e));
      const until = async (n: number) => {
        const end = Date.now() + 5000;
        while (events.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
        assert.ok(events.length >= n, `expected ${n} events, got ${JSON.stringify(events)}`);
      };
      await until(1);
      assert.equal(events[0].type, "SNAPSHOT");
      assert.deepEqual(events[0].snapshot.map((i) => i.id), [existing.id]);

      const added = await t.client.create({ spec: spec(src, 1, 0x20, 4, 2n), owner: "vm-w" });
      await until(2);
      assert.equal(events[1].type, "ADDED");
      assert.equal(events[1].ioeventfd?.id, added.id);

      await t.client.delete({ id: added.id });
      await until(3);
      assert.equal(events[2].type, "REMOVED");
      assert.equal(events[2].cause, "REQUEST");

      // The VMM exits: its ioeventfds go by themselves, reported with the cause.
      await src.kill();
      await until(4);
      assert.equal(events[3].type, "REMOVED");
      assert.equal(events[3].cause, "SOURCE_EXIT");
      assert.equal(events[3].ioeventfd?.id, existing.id);
      assert.equal((await t.client.list({})).totalSize, 0);
      assert.equal(t.agent.registry.counters.removed.get("SOURCE_EXIT"), 1);
      call.cancel();
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test(
  "lifecycle: reconcile adds, keeps and removes, all or nothing, idempotently",
  opts,
  async () => {
    const t = await startAgent();
    const src = await SourceProcess.start(4);
    try {
      const a = spec(src, 0, 0x100, 4, 1n);
      const b = spec(src, 1, 0x104, 4, 2n);
      const c = spec(src, 2, 0x108, 4, 3n);
      let r = await t.client.reconcile({ owner: "vm-r", desired: [a, b] });
      assert.deepEqual([r.added.length, r.kept.length, r.removed.length], [2, 0, 0]);
      r = await t.client.reconcile({ owner: "vm-r", desired: [a, b] });
      assert.deepEqual([r.added.length, r.kept.length, r.removed.length], [0, 2, 0], "idempotent");
      r = await t.client.reconcile({ owner: "vm-r", desired: [b, c] });
      assert.deepEqual([r.added.length, r.kept.length, r.removed.length], [1, 1, 1]);
      assert.equal(r.removed[0].spec?.offset, String(0x100));

      // One bad entry: nothing changes, and the error names the entry.
      const before = (await t.client.list({ owner: "vm-r" })).ioeventfds.map((i) => i.id);
      await assert.rejects(
        t.client.reconcile({ owner: "vm-r", desired: [a, { ...c, width: 3 }] }),
        (e: { code: number; details: string }) =>
          e.code === 3 && e.details.includes("desired[1].width"),
      );
      const after = (await t.client.list({ owner: "vm-r" })).ioeventfds.map((i) => i.id);
      assert.deepEqual(after, before);

      // The signals reach the BAR through reconciled entries too.
      await src.signal(2);
      await waitForBar(barPath(t.config, GPU, 0), 0x108, 4, 3n);

      r = await t.client.reconcile({ owner: "vm-r", desired: [] });
      assert.equal(r.removed.length, 2);
      assert.equal((await t.client.list({})).totalSize, 0);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);
