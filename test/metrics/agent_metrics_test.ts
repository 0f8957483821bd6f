// Metrics of a real agent driven by a real source process: counters that outlive the
// ioeventfds (source exit), and what a restart reports (re-armed, dropped, re-arm time).
import assert from "node:assert/strict";
import { GPU, startAgent, tempDir, type TestAgent } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";
import { type Exposition, parseExposition, value } from "./exposition.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function spec(source: SourceProcess, i: number) {
  return {
    device: GPU,
    bar: 0,
    offset: String(0x200 + 4 * i),
    width: 4,
    data: "1",
    source: { pid: source.pid, fd: source.fds[i] },
  };
}

async function scrape(t: TestAgent): Promise<Exposition> {
  const res = await fetch(`http://127.0.0.1:${t.agent.metricsHttp!.port}/metrics`);
  return parseExposition(await res.text());
}

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("counts survive their ioeventfds when the source process exits", opts, async () => {
  const t = await startAgent({ metricsListen: "127.0.0.1:0" });
  const source = await SourceProcess.start(2);
  try {
    await t.client.create({ owner: "vm-1", spec: spec(source, 0) });
    await t.client.create({ owner: "vm-1", spec: spec(source, 1) });
    await source.signal(0, 1);
    await source.signal(1, 1);
    await eventually("2 writes", async () => {
      const e = await scrape(t);
      return value(e, "ioeventd_triggers_total", { device: GPU, bar: "0" }) === 2;
    });
    let e = await scrape(t);
    assert.equal(value(e, "ioeventd_ioeventfds", { device: GPU, state: "armed" }), 2);
    assert.equal(value(e, "ioeventd_engine_watched_processes"), 1);

    await source.kill();
    await eventually(
      "removal by source exit",
      async () => (await t.client.list()).ioeventfds.length === 0,
    );
    e = await scrape(t);
    assert.equal(value(e, "ioeventd_triggers_total", { device: GPU, bar: "0" }), 2);
    assert.equal(value(e, "ioeventd_signals_total", { device: GPU, bar: "0" }), 2);
    assert.equal(value(e, "ioeventd_ioeventfds", { device: GPU, state: "armed" }), 0);
    assert.equal(value(e, "ioeventd_registrations_removed_total", { cause: "source_exit" }), 2);
    assert.equal(value(e, "ioeventd_engine_registrations"), 0);
  } finally {
    await source.kill();
    await t.stop();
  }
});

Deno.test("a restart reports what the journal replay re-armed and dropped", opts, async () => {
  const dir = tempDir();
  const alive = await SourceProcess.start(1);
  const gone = await SourceProcess.start(1);
  let t = await startAgent({ metricsListen: "127.0.0.1:0" }, dir);
  try {
    await t.client.create({ owner: "vm-1", spec: spec(alive, 0) });
    await t.client.create({ owner: "vm-2", spec: { ...spec(gone, 0), offset: "0x300" } });
    await t.stop();
    await gone.kill();

    t = await startAgent({ metricsListen: "127.0.0.1:0" }, dir);
    const e = await scrape(t);
    assert.equal(value(e, "ioeventd_replay_rearmed"), 1);
    assert.equal(value(e, "ioeventd_replay_orphaned"), 0);
    const dropped = e.samples.filter((s) =>
      s.name === "ioeventd_replay_dropped_total" && s.value > 0
    );
    assert.equal(dropped.length, 1);
    assert.match(dropped[0].labels.reason, /^(SOURCE_PROCESS_GONE|PID_REUSED)$/);
    assert.equal(dropped[0].value, 1);
    assert.ok(value(e, "ioeventd_rearm_duration_seconds") > 0);
    assert.equal(value(e, "ioeventd_ioeventfds", { device: GPU, state: "armed" }), 1);
    // The replay is not a creation.
    assert.equal(value(e, "ioeventd_registrations_created_total"), 0);
  } finally {
    await t.stop();
    await alive.kill();
    await gone.kill();
  }
});
