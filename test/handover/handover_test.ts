// The hand-over intake end to end: a real VMM process hands its eventfds over on the
// agent's Unix socket (SCM_RIGHTS), creates by handle, signals, and the write lands; a
// handle is bound to its owner and to callers allowed to name its sender; handles expire;
// malformed messages are refused without leaking a descriptor.
import assert from "node:assert/strict";
import { barPath, GPU, startAgent } from "../support/agent.ts";
import { waitForBar } from "../support/bar_file.ts";
import { HandoverVmm, openFds, refusal, until } from "./vmm.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function spec(handle: string, offset: number, data = 0x1234) {
  return {
    device: GPU,
    bar: 0,
    offset: String(offset),
    width: 4,
    data: String(data),
    source: { pid: 0, fd: 0, handle },
  };
}

Deno.test(
  "handover: a VMM hands its eventfd over, creates by handle, the write lands",
  opts,
  async () => {
    const t = await startAgent();
    const vmm = await HandoverVmm.start(t.config.handoverSocket, "vm-a", 2);
    try {
      assert.equal(vmm.error, null);
      assert.equal(vmm.handles.length, 2);
      const created = await t.client.create({ owner: "vm-a", spec: spec(vmm.handles[0], 0x88704) });
      assert.equal(created.state, "ARMED");
      assert.equal(created.spec!.source!.pid, vmm.pid); // the sender, from SO_PEERCRED
      assert.equal(created.spec!.source!.fd, -1);
      assert.equal(created.spec!.source!.handle, vmm.handles[0]);
      await vmm.signal(0);
      await waitForBar(barPath(t.config, GPU, 0), 0x88704, 4, 0x1234n);
      // Used up: the same handle cannot arm a second registration.
      const again = await t.client.create({ owner: "vm-a", spec: spec(vmm.handles[0], 0x88708) })
        .then(() => null, (e) => e);
      assert.equal(refusal(again).reason, "SOURCE_FD_INVALID");
      // The VMM's exit removes it (SOURCE_EXIT), as for a taken source.
      await vmm.kill();
      await until(async () => (await t.client.list({ owner: "vm-a" })).ioeventfds.length === 0);
    } finally {
      await vmm.kill();
      await t.stop();
    }
  },
);

Deno.test(
  "handover: a handle under another owner is refused and changes nothing",
  opts,
  async () => {
    const t = await startAgent();
    const vmm = await HandoverVmm.start(t.config.handoverSocket, "tenant-a-vm1", 1);
    try {
      const err = await t.client.create({
        owner: "tenant-b-vm1",
        spec: spec(vmm.handles[0], 0x88704),
      })
        .then(() => null, (e) => e);
      assert.equal(refusal(err).reason, "SOURCE_ACCESS_DENIED");
      assert.equal(refusal(err).field, "spec.source");
      assert.equal((await t.client.list({})).ioeventfds.length, 0);
      // Still usable by its own owner: a refused call used nothing.
      const ok = await t.client.create({
        owner: "tenant-a-vm1",
        spec: spec(vmm.handles[0], 0x88704),
      });
      assert.equal(ok.state, "ARMED");
      // A handle that was never issued.
      const unknown = await t.client.create({
        owner: "tenant-a-vm1",
        spec: spec("h-" + "0".repeat(32), 0x88708),
      }).then(() => null, (e) => e);
      assert.equal(refusal(unknown).reason, "SOURCE_FD_INVALID");
    } finally {
      await vmm.kill();
      await t.stop();
    }
  },
);

Deno.test("handover: unused handles expire and their descriptors are closed", opts, async () => {
  const t = await startAgent({ handoverTtlMs: 300 });
  await t.client.info(); // the client's connection is part of the baseline
  const before = openFds();
  const vmm = await HandoverVmm.start(t.config.handoverSocket, "vm-a", 4);
  try {
    assert.equal(t.agent.handover!.stats().held, 4);
    await until(() => t.agent.handover!.stats().held === 0, 5000);
    assert.equal(t.agent.handover!.stats().expired, 4);
    const err = await t.client.create({ owner: "vm-a", spec: spec(vmm.handles[0], 0x88704) })
      .then(() => null, (e) => e);
    assert.equal(refusal(err).reason, "SOURCE_FD_INVALID");
  } finally {
    await vmm.kill();
  }
  await until(() => openFds() <= before, 3000);
  await t.stop();
});

Deno.test(
  "handover: malformed messages are refused, no descriptor leaks, the agent lives",
  opts,
  async () => {
    const t = await startAgent();
    // Warm up (the intake thread, the client's first connection) before the baseline.
    const warm = await HandoverVmm.start(t.config.handoverSocket, "vm-a", 1);
    await warm.kill();
    await until(() => t.agent.handover!.stats().held === 1);
    t.agent.handover!.consume(warm.handles[0]);
    const baseline = openFds();
    const vmm = await HandoverVmm.start(t.config.handoverSocket, "vm-a", 0);
    try {
      const replies = JSON.parse(await vmm.command("malformed")) as Record<string, string>;
      const expected: Record<string, string> = {
        too_many_fds: "TOO_MANY_FDS",
        ctrunc: "TOO_MANY_FDS",
        not_eventfd: "NOT_EVENTFD",
        not_vfio: "NOT_VFIO_DEVICE",
        mixed_bad_last: "NOT_EVENTFD",
        too_large: "TOO_LARGE",
        garbage: "MALFORMED",
        truncated: "MALFORMED",
        count_mismatch: "FD_COUNT",
        no_fds: "FD_COUNT",
        empty_with_fd: "MALFORMED",
        bad_owner: "OWNER_INVALID",
        not_utf8: "MALFORMED",
      };
      for (const [name, code] of Object.entries(expected)) {
        assert.match(replies[name], new RegExp(`^ERR ${code} `), `${name}: ${replies[name]}`);
      }
      const stats = t.agent.handover!.stats();
      assert.equal(stats.held, 0);
      assert.equal(stats.refused, Object.keys(expected).length);
    } finally {
      await vmm.kill();
    }
    await until(() => openFds() <= baseline, 3000);
    assert.equal(openFds(), baseline);
    // Alive and serving.
    assert.ok((await t.client.info()).version);
    await t.stop();
  },
);

Deno.test(
  "handover: 10 000 handles in flight, each usable once, descriptors back to baseline",
  opts,
  async () => {
    const t = await startAgent({ maxPerOwner: 20_000, maxPerDevice: 20_000 });
    await t.client.info(); // the client's connection is part of the baseline
    const baseline = openFds();
    const vmm = await HandoverVmm.start(t.config.handoverSocket, "vm-bulk", 10_000);
    try {
      assert.equal(vmm.error, null);
      assert.equal(new Set(vmm.handles).size, 10_000);
      assert.equal(t.agent.handover!.stats().held, 10_000);
      // Use a few of them (the rest stay in flight), then close the intake's copies.
      for (let i = 0; i < 8; i++) {
        const r = await t.client.create({
          owner: "vm-bulk",
          spec: spec(vmm.handles[i], 0x88704 + 4 * i),
        });
        assert.equal(r.state, "ARMED");
      }
      assert.equal(t.agent.handover!.stats().held, 10_000 - 8);
      for (const h of vmm.handles.slice(8)) t.agent.handover!.consume(h);
      assert.equal(t.agent.handover!.stats().held, 0);
    } finally {
      await vmm.kill();
    }
    // The VMM's exit removes the 8 registrations (their duplicates closed).
    await until(async () => (await t.client.list({ owner: "vm-bulk" })).ioeventfds.length === 0);
    await until(() => openFds() <= baseline, 5000);
    await t.stop();
  },
);
