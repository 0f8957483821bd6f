// A journal that cannot be written (issue #16.2), on real small file systems: a 2 MiB tmpfs
// filled to the last byte, and an ext4 image forced read-only. The agent never exits: creates
// are refused with UNAVAILABLE / JOURNAL_UNAVAILABLE naming SQLite's error and arm nothing;
// reads, deletes and every armed ioeventfd keep working; /readyz and the metrics say why;
// once space is back, creates work again without a restart. A restart on a full disk starts,
// and journals the replay's drops once it can.
import assert from "node:assert/strict";
import type * as grpc from "@grpc/grpc-js";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeStatus } from "../../service/api/status_details.ts";
import type { AgentClient } from "../../service/cli/client.ts";
import { journalPath } from "../../service/config.ts";
import { Journal } from "../../service/registry/journal.ts";
import { createSimulatedHost } from "../../service/devices/simulate.ts";
import { GPU, startAgent, type TestAgent } from "../support/agent.ts";
import { readBar, waitForBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function run(cmd: string, ...args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
}

/** A 2 MiB tmpfs: `fill()` takes every free byte, `free()` gives them back. */
function smallTmpfs() {
  const dir = mkdtempSync(join(tmpdir(), "ioeventd-full-"));
  run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir);
  const filler = join(dir, "filler");
  return {
    dir,
    stateDir: join(dir, "state"),
    fill() {
      const f = Deno.openSync(filler, { create: true, append: true });
      const zeros = new Uint8Array(4096);
      try {
        for (;;) f.writeSync(zeros);
      } catch (err) {
        if (!(err instanceof Error && /No space left/.test(err.message))) throw err;
      } finally {
        f.close();
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      spawnSync("umount", ["-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const spec = (src: SourceProcess, i: number) => ({
  device: GPU,
  bar: 0,
  offset: String(0x1000 + 4 * i),
  width: 4,
  data: String(0x100 + i),
  source: { pid: src.pid, fd: src.fds[i] },
});

/** The call's failure, decoded: gRPC code, ErrorInfo reason and metadata. */
async function refusal(call: Promise<unknown>) {
  const err = await call.then(() => null, (e) => e as grpc.ServiceError);
  assert.ok(err, "the call was refused");
  const status = decodeStatus(err);
  assert.ok(status, `status details on ${err.message}`);
  return status;
}

async function http(agent: TestAgent, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${agent.agent.metricsHttp!.port}${path}`);
  return { status: res.status, body: await res.text() };
}

function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const UNAVAILABLE = 14;

/**
 * A simulated host outside the small file system: only the journal (the state directory) is
 * on it, and a BAR page the engine writes is never refused.
 */
async function simulatedHost(): Promise<{ root: string; bar0: string; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), "ioeventd-sim-"));
  const root = join(dir, "sys", "bus", "pci", "devices");
  await createSimulatedHost(root);
  return {
    root,
    bar0: join(root, GPU, "resource0"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function startIn(stateDir: string, simRoot: string): Promise<TestAgent> {
  return await startAgent(
    { sysfsRoots: [simRoot], simulate: false, metricsListen: "127.0.0.1:0" },
    stateDir,
  );
}

async function ids(client: AgentClient): Promise<string[]> {
  return (await client.listAll()).map((r) => r.id).sort();
}

Deno.test(
  "journal full: creates refused with JOURNAL_UNAVAILABLE and arm nothing; reads, writes and deletes go on; space back → creates work, no restart",
  opts,
  async () => {
    const fs = smallTmpfs();
    const sim = await simulatedHost();
    const bar0 = sim.bar0;
    const src = await SourceProcess.start(8);
    let t: TestAgent | null = null;
    try {
      t = await startIn(fs.stateDir, sim.root);
      const a = await t.client.create({ owner: "vm-1", spec: spec(src, 0) });
      const b = await t.client.create({ owner: "vm-1", spec: spec(src, 1) });
      const revisionBefore = t.agent.registry.revision;
      const armed = t.agent.engine.info().registrations;

      fs.fill();
      const refused = await refusal(t.client.create({ owner: "vm-1", spec: spec(src, 2) }));
      assert.equal(refused.code, UNAVAILABLE);
      assert.equal(refused.reason, "JOURNAL_UNAVAILABLE");
      assert.match(refused.metadata.cause, /database or disk is full/);
      assert.equal(
        t.agent.engine.info().registrations,
        armed,
        "nothing of the refused create armed",
      );
      assert.deepEqual(await ids(t.client), [a.id, b.id].sort(), "nor listed");
      await src.signal(2);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(readBar(bar0, 0x1000 + 8, 4), 0n, "the refused create never writes");
      // A reconcile is refused alike and arms nothing either.
      const rec = await refusal(t.client.reconcile({
        owner: "vm-2",
        desired: [spec(src, 3)],
      }));
      assert.equal(rec.reason, "JOURNAL_UNAVAILABLE");
      assert.equal(t.agent.engine.info().registrations, armed);

      // Reads work; an armed ioeventfd still writes.
      assert.equal((await t.client.get(a.id)).id, a.id);
      await src.signal(0);
      await waitForBar(bar0, 0x1000, 4, 0x100n);

      // Degraded, not dead: /healthz 200, /readyz 503 naming the journal, the metrics say why.
      assert.equal((await http(t, "/healthz")).status, 200);
      const ready = await http(t, "/readyz");
      assert.equal(ready.status, 503);
      assert.match(ready.body, /journal unavailable: database or disk is full/);
      const metrics = (await http(t, "/metrics")).body;
      assert.equal(sample(metrics, "ioeventd_journal_available"), 0);
      assert.ok(
        sample(metrics, 'ioeventd_journal_commit_failures_total{cause="disk_full"}')! >= 2,
        metrics.split("\n").filter((l) => l.includes("journal")).join("\n"),
      );
      assert.ok(
        sample(metrics, 'ioeventd_registrations_rejected_total{reason="JOURNAL_UNAVAILABLE"}')! >=
          2,
      );

      // A delete takes effect (a barrier) and is journaled once the disk takes writes again.
      const del = await refusal(t.client.delete({ id: b.id }));
      assert.equal(del.reason, "JOURNAL_UNAVAILABLE");
      assert.deepEqual(await ids(t.client), [a.id]);
      assert.equal(t.agent.engine.info().registrations, armed - 1);
      await src.signal(1);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(readBar(bar0, 0x1004, 4), 0n, "the deleted one never writes");
      assert.equal(
        sample((await http(t, "/metrics")).body, "ioeventd_journal_pending_removals"),
        1,
      );

      // Space back: the next create just works, and the state clears.
      fs.free();
      const c = await t.client.create({ owner: "vm-1", spec: spec(src, 2) });
      assert.equal((await http(t, "/readyz")).status, 200);
      assert.equal(sample((await http(t, "/metrics")).body, "ioeventd_journal_available"), 1);
      await src.signal(2);
      await waitForBar(bar0, 0x1008, 4, 0x102n);
      const revisionAfter = t.agent.registry.revision;
      assert.ok(revisionAfter > revisionBefore);

      await t.stop();
      t = null;
      const journal = Journal.open(journalPath({ stateDir: fs.stateDir } as never));
      try {
        assert.deepEqual(
          journal.all().map((r) => r.id).sort(),
          [a.id, c.id].sort(),
          "the journal holds what the agent holds: b's removal was journaled, the refused create never",
        );
        assert.ok(journal.revision() >= revisionAfter);
      } finally {
        journal.close();
      }
    } finally {
      await t?.stop();
      await src.kill();
      fs.unmount();
      sim.remove();
    }
  },
);

Deno.test(
  "journal full at start: a source died meanwhile; the agent starts, re-arms the rest and journals the drop once space is back",
  opts,
  async () => {
    const fs = smallTmpfs();
    const sim = await simulatedHost();
    const keep = await SourceProcess.start(1);
    const dies = await SourceProcess.start(1);
    let t: TestAgent | null = null;
    try {
      t = await startIn(fs.stateDir, sim.root);
      const a = await t.client.create({ owner: "vm-1", spec: spec(keep, 0) });
      await t.client.create({ owner: "vm-2", spec: { ...spec(dies, 0), offset: "4100" } });
      await t.stop();
      t = null;
      await dies.kill();
      fs.fill();

      t = await startIn(fs.stateDir, sim.root);
      assert.equal(t.agent.replay!.rearmed, 1);
      assert.equal(t.agent.replay!.dropped.length, 1);
      assert.match(t.agent.replay!.journalError ?? "", /disk is full/);
      assert.deepEqual(await ids(t.client), [a.id]);
      assert.match((await http(t, "/readyz")).body, /journal unavailable/);
      await keep.signal(0);
      await waitForBar(sim.bar0, 0x1000, 4, 0x100n);

      // No request needed: the agent retries, and clears the state once space is back.
      fs.free();
      const until = Date.now() + 10_000;
      while ((await http(t, "/readyz")).status !== 200 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal((await http(t, "/readyz")).status, 200);
      await t.stop();
      t = null;
      const journal = Journal.open(journalPath({ stateDir: fs.stateDir } as never));
      try {
        assert.deepEqual(journal.all().map((r) => r.id), [a.id], "the dropped entry left");
      } finally {
        journal.close();
      }
    } finally {
      await t?.stop();
      await keep.kill();
      await dies.kill();
      fs.unmount();
      sim.remove();
    }
  },
);

Deno.test(
  "journal read-only (ext4 forced read-only by an error): creates refused with the cause, reads and writes go on",
  opts,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "ioeventd-ro-"));
    const image = join(dir, "fs.img");
    const mnt = join(dir, "mnt");
    writeFileSync(image, new Uint8Array(0));
    Deno.truncateSync(image, 32 << 20);
    run("mkfs.ext4", "-q", image);
    Deno.mkdirSync(mnt);
    run("mount", "-o", "loop,errors=remount-ro", image, mnt);
    const sim = await simulatedHost();
    const src = await SourceProcess.start(2);
    let t: TestAgent | null = null;
    try {
      t = await startIn(join(mnt, "state"), sim.root);
      const a = await t.client.create({ owner: "vm-1", spec: spec(src, 0) });
      const armed = t.agent.engine.info().registrations;
      const device = spawnSync("findmnt", ["-no", "SOURCE", mnt], { encoding: "utf8" }).stdout
        .trim().replace("/dev/", "");
      writeFileSync(`/sys/fs/ext4/${device}/trigger_fs_error`, "1");

      const refused = await refusal(t.client.create({ owner: "vm-1", spec: spec(src, 1) }));
      assert.equal(refused.code, UNAVAILABLE);
      assert.equal(refused.reason, "JOURNAL_UNAVAILABLE");
      assert.ok(refused.metadata.cause, "SQLite's error is the cause");
      assert.doesNotMatch(refused.metadata.cause, /cannot rollback/);
      assert.equal(t.agent.engine.info().registrations, armed);
      assert.deepEqual(await ids(t.client), [a.id]);
      await src.signal(0);
      await waitForBar(sim.bar0, 0x1000, 4, 0x100n);
      assert.equal((await http(t, "/readyz")).status, 503);
    } finally {
      await t?.stop().catch(() => {});
      await src.kill();
      spawnSync("umount", ["-l", mnt]);
      rmSync(dir, { recursive: true, force: true });
      sim.remove();
    }
  },
);
