// The control plane for `deno task bench`: real agent processes and a grpc-js client in this
// process on the agent's Unix socket. It reports every figure of issue #20's table beside its
// target: create latency and rate by concurrency, 10 000 creates from 16 clients, memory at
// 10 000 (created one by one, and through ReconcileOwner), 64 clients × 500 mixed calls, and
// spawn → serving with 10 000 journaled. No peer runs a gRPC control plane here, so each figure
// is set beside this disk's fdatasync floor and the agent's CPU time per create.
//   deno run -A bench/control_plane.ts [--quick]
import { join } from "node:path";
import { GPU, removeDir, spawnAgent, tempDir } from "../test/support/agent.ts";
import { SourceProcess } from "../test/support/source_process.ts";
import { AgentClient } from "../service/cli/client.ts";
import { rssMiB } from "./data_plane.ts";
import { percentile } from "./summary.ts";

interface Rate {
  per_sec: number;
  p50_ms: number;
  p99_ms: number;
  seconds: number;
}

function rate(latencies: number[], count: number, seconds: number): Rate {
  latencies.sort((x, y) => x - y);
  return {
    per_sec: Math.round(count / seconds),
    p50_ms: +percentile(latencies, 0.5).toFixed(2),
    p99_ms: +percentile(latencies, 0.99).toFixed(2),
    seconds: +seconds.toFixed(2),
  };
}

/** The agent process's CPU time (user + system, all threads), in ms. */
function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // USER_HZ = 100
}

/** This disk's floor for one commit: a 4 KiB write and its fdatasync, median µs. */
export function fdatasyncFloorUs(dir: string, rounds = 200): number {
  const path = join(dir, "fdatasync-floor");
  const file = Deno.openSync(path, { create: true, write: true, truncate: true });
  const page = new Uint8Array(4096);
  const times: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      file.writeSync(page);
      file.syncDataSync();
      times.push(performance.now() - t0);
    }
  } finally {
    file.close();
    Deno.removeSync(path);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[times.length >> 1] * 1000);
}

/** The issue's table: measure → value, and the raw figures. */
export async function controlPlane(quick: boolean): Promise<Record<string, unknown>> {
  const N = quick ? 1000 : 10_000;
  const SMALL = quick ? 100 : 1000;
  const MIXED = quick ? 50 : 500;
  const stateDir = tempDir("ioeventd-bench-");
  const POOL = 8; // eventfds per mixed client, reused once deleted (≤ 3 are armed at a time)
  const sourceCount = N + 3 * SMALL + 64 * POOL;
  const src = await SourceProcess.start(sourceCount);
  const limit = ["--max-per-device", String(sourceCount)];
  const out: Record<string, unknown> = { registrations: N };
  out.fdatasync_floor_us = fdatasyncFloorUs(stateDir);
  const spec = (i: number) => ({
    device: GPU,
    bar: 0,
    offset: String(0x10000 + 4 * i),
    width: 4,
    data: "1",
    source: { pid: src.pid, fd: src.fds[i] },
  });
  let agent = await spawnAgent(stateDir, limit);
  const clients = Array.from({ length: 64 }, () => new AgentClient(agent.address));
  let next = 0;
  /** `count` calls from `concurrency` clients, each `call(client, k)` with k = 0, 1, …: a Rate. */
  const calls = async (
    count: number,
    concurrency: number,
    call: (client: AgentClient, k: number) => Promise<unknown>,
  ): Promise<Rate> => {
    const latencies: number[] = [];
    const t0 = performance.now();
    let k = 0;
    await Promise.all(
      clients.slice(0, concurrency).map(async (client) => {
        while (k < count) {
          const c0 = performance.now();
          await call(client, k++);
          latencies.push(performance.now() - c0);
        }
      }),
    );
    return rate(latencies, count, (performance.now() - t0) / 1000);
  };
  const creates = (count: number, concurrency: number) =>
    calls(count, concurrency, (client) => {
      const i = next++;
      return client.create({ owner: `vm-${i % 100}`, spec: spec(i) });
    });
  // The stack's floor in the same run: GetAgentInfo (no registry work, no journal) through
  // the same client, transport and server.
  const infos = (count: number, concurrency: number) =>
    calls(count, concurrency, (client) => client.info());
  try {
    const pid = agent.child.pid;
    out.rss_mib_empty = rssMiB(pid);
    out.info_c1 = await infos(SMALL, 1);
    out.info_c16 = await infos(4 * SMALL, 16);
    // From empty (after a warm-up of the JIT: 200 creates): one client, then 16 to N, with the
    // agent's CPU time per create.
    await creates(200, 1);
    out.creates_c1 = await creates(SMALL, 1);
    const cpu0 = cpuMs(pid);
    const from = next;
    out[`creates_to_${N}_c16`] = await creates(N - next, 16);
    out.agent_cpu_ms_per_create_c16 = +((cpuMs(pid) - cpu0) / (next - from)).toFixed(3);
    out[`rss_mib_at_${N}`] = rssMiB(pid);
    // On top of N: by concurrency.
    for (const c of [1, 16, 64]) out[`creates_at_${N}_c${c}`] = await creates(SMALL, c);
    // 64 clients × MIXED calls, each client on its own registrations: per 10 calls 4 gets,
    // 2 one-page lists, 2 creates and 2 deletes of what it created.
    const mixedLatencies: number[] = [];
    const m0 = performance.now();
    await Promise.all(clients.map(async (client, c) => {
      const mine: string[] = [];
      const owner = `vm-mixed-${c}`;
      const base = N + 3 * SMALL + c * POOL;
      let slot = 0;
      for (let k = 0; k < MIXED; k++) {
        const c0 = performance.now();
        const step = k % 10;
        if (step < 2 || mine.length === 0) {
          mine.push((await client.create({ owner, spec: spec(base + (slot++ % POOL)) })).id);
        } else if (step < 4) {
          await client.delete({ id: mine.shift()! });
        } else if (step < 6) {
          await client.list({ owner, pageSize: 100 });
        } else {
          await client.get(mine[mine.length - 1]);
        }
        mixedLatencies.push(performance.now() - c0);
      }
    }));
    out[`mixed_64x${MIXED}`] = rate(mixedLatencies, 64 * MIXED, (performance.now() - m0) / 1000);
    for (const c of clients) c.close();

    // Spawn → serving with what is journaled now (≥ N): a SIGTERM'd agent, then a new one.
    const journaled = (await agent.client.listAll()).length;
    agent.kill("SIGTERM");
    await agent.exited;
    agent.client.close();
    const s0 = performance.now();
    agent = await spawnAgent(stateDir, limit);
    const spawnToServingMs = performance.now() - s0;
    const replayed = agent.logs.map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === "journal replayed");
    out.restart = {
      journaled,
      spawn_to_serving_ms: Math.round(spawnToServingMs),
      replay_ms: replayed?.replay_ms,
      rearm_ms: replayed?.rearm_ms,
      startup_ms: replayed?.startup_ms,
    };
  } finally {
    await agent.crash();
  }

  // Memory at N through ReconcileOwner (100 owners, one call each) on a fresh agent.
  const reconcileDir = tempDir("ioeventd-bench-");
  const fresh = await spawnAgent(reconcileDir, limit);
  try {
    const perOwner = N / 100;
    for (let o = 0; o < 100; o++) {
      const desired = Array.from({ length: perOwner }, (_, k) => spec(o * perOwner + k));
      await fresh.client.reconcile({ owner: `vm-${o}`, desired });
    }
    out[`rss_mib_at_${N}_reconcile`] = rssMiB(fresh.child.pid);
  } finally {
    await fresh.crash();
    removeDir(reconcileDir);
    await src.kill();
    removeDir(stateDir);
  }
  return out;
}

/** Issue #20's table: each measure, what was measured, and its target. */
export function controlPlaneTable(cp: Record<string, unknown>): string[][] {
  const N = cp.registrations as number;
  const r = (k: string) => cp[k] as Rate;
  const restart = cp.restart as {
    journaled: number;
    spawn_to_serving_ms: number;
    replay_ms: number;
  };
  const mixedKey = Object.keys(cp).find((k) => k.startsWith("mixed_"))!;
  return [
    ["measure", "measured", "target"],
    [
      "create p50 / p99, 16 clients (to N)",
      `${r(`creates_to_${N}_c16`).p50_ms} / ${r(`creates_to_${N}_c16`).p99_ms} ms`,
      "p99 ≤ 5 ms",
    ],
    [
      "creates/s, 1 client (from empty; at N)",
      `${r("creates_c1").per_sec}; ${r(`creates_at_${N}_c1`).per_sec}`,
      "≥ 2000",
    ],
    [`${N} creates from 16 clients`, `${r(`creates_to_${N}_c16`).seconds} s`, "≤ 2 s"],
    [
      `RSS empty / at ${N} one by one / via reconcile`,
      `${cp.rss_mib_empty} / ${cp[`rss_mib_at_${N}`]} / ${cp[`rss_mib_at_${N}_reconcile`]} MiB`,
      "≤ 150 MiB at N",
    ],
    [
      `${mixedKey.slice(6)} mixed calls: p50 / p99, calls/s`,
      `${r(mixedKey).p50_ms} / ${r(mixedKey).p99_ms} ms, ${r(mixedKey).per_sec}/s`,
      "p99 ≤ 20 ms",
    ],
    [
      `spawn → serving, ${restart.journaled} journaled (replay)`,
      `${restart.spawn_to_serving_ms} ms (${restart.replay_ms} ms)`,
      "≤ 500 ms",
    ],
    [
      "floor: GetAgentInfo calls/s, 1 / 16 clients",
      `${r("info_c1").per_sec} / ${r("info_c16").per_sec} (p99 ${r("info_c16").p99_ms} ms)`,
      "-",
    ],
    ["fdatasync floor (4 KiB)", `${cp.fdatasync_floor_us} µs`, "-"],
    ["agent CPU per create, 16 clients", `${cp.agent_cpu_ms_per_create_c16} ms`, "-"],
  ];
}

if (import.meta.main) {
  const { renderTable } = await import("../service/cli/table.ts");
  const cp = await controlPlane(Deno.args.includes("--quick"));
  console.log(renderTable(controlPlaneTable(cp)));
  console.log(JSON.stringify(cp));
  console.log("load", Deno.readTextFileSync("/proc/loadavg").trim());
}
