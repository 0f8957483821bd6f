// `deno task bench`: the data plane measured against the physical limit of this machine — a
// minimal eventfd → epoll → store loop (native/src/bin/ioeventd-baseline.rs) run in the
// same process tree, the same run — and the control plane of a real agent process.
// Results: a table on stdout, JSON under bench-results/. Ratios, never absolute targets.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { type EngineOptions, NativeEngine, type PollMode } from "../service/native/engine.ts";
import { controlOps } from "./control_ops.ts";
import { guestDoorbells } from "./guest_doorbells.ts";
import { GPU, removeDir, spawnAgent, tempDir } from "../test/support/agent.ts";
import { NATIVE_BIN, SourceProcess } from "../test/support/source_process.ts";
import { renderTable } from "../service/cli/table.ts";
import { AgentClient } from "../service/cli/client.ts";
import process from "node:process";
import { median, percentile } from "./summary.ts";

const QUICK = Deno.args.includes("--quick"); // CI smoke: fewer triggers, shorter windows
const LATENCY_COUNT = QUICK ? 5_000 : 100_000;
const WINDOW_S = 1;
const ROUNDS = QUICK ? 1 : 5; // alternating engine/baseline windows; medians reported

interface Latency {
  count: number;
  p50_ns: number;
  p99_ns: number;
  p999_ns: number;
  mean_ns: number;
  timeouts: number;
}

function baseline(args: string[]): Record<string, number> {
  const r = spawnSync(NATIVE_BIN + "ioeventd-baseline", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ioeventd-baseline ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/** CPU seconds this process has used (the engine's workers run inside it). */
function cpuSeconds(): number {
  const { user, system } = process.cpuUsage(); // getrusage, µs
  return (user + system) / 1e6;
}

function rssMiB(pid: number | "self"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

function barFile(dir: string, bytes = 1 << 20): string {
  const path = join(dir, "resource0");
  writeFileSync(path, new Uint8Array(0));
  Deno.truncateSync(path, bytes);
  return path;
}

/** The lowest and highest CPU ids this process may run on (Cpus_allowed_list). */
function allowedCpuRange(): [number, number] {
  const status = Deno.readTextFileSync("/proc/self/status");
  const ids = /Cpus_allowed_list:\s*(\S+)/.exec(status)![1].split(/[,-]/).map(Number);
  return [ids[0], ids[ids.length - 1]];
}

/** Pins every thread of process `pid` to `cpu` (util-linux taskset); false if it cannot. */
function pinProcess(pid: number, cpu: number): boolean {
  const r = spawnSync("taskset", ["-a", "-c", "-p", String(cpu), String(pid)], {
    encoding: "utf8",
  });
  return r.status === 0;
}

/** An engine with `n` registrations armed, one per eventfd of a fresh source process. */
async function armed(
  mode: PollMode,
  n: number,
  dir: string,
  extra: Pick<EngineOptions, "shard" | "cpus"> = {},
) {
  const engine = NativeEngine.open({
    workers: 1,
    canaryPeriodUs: 0,
    pollMode: mode,
    spinBudgetUs: 50,
    ...extra,
  });
  const bar = barFile(dir, Math.max(1 << 20, n * 8 * 2));
  // Eventfds as QEMU creates them (EFD_NONBLOCK), so the engine reads them with a plain read.
  const src = await SourceProcess.start(n, { nonblocking: true });
  const ids: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const s = engine.acquireSource(src.pid, src.fds[i]);
    ids.push(
      engine.register({
        barPath: bar,
        offset: BigInt(8 * i),
        width: 4,
        data: 0xdeadbeefn,
        fd: s.fd,
        pid: 0,
        pidStart: 0n,
      }).id,
    );
  }
  const triggers = () => {
    let sum = 0n;
    for (const s of engine.registrationStats().values()) sum += s.triggers;
    return Number(sum);
  };
  return {
    engine,
    bar,
    src,
    triggers,
    async close() {
      await src.kill();
      engine.close();
    },
  };
}

async function latency(
  mode: PollMode,
  dir: string,
  extra: Pick<EngineOptions, "shard" | "cpus"> = {},
  signallerCpu?: number,
): Promise<{ engine: Latency; idleCores: number }> {
  const a = await armed(mode, 1, dir, extra);
  try {
    if (signallerCpu !== undefined && !pinProcess(a.src.pid, signallerCpu)) {
      throw new Error(`cannot pin the signalling process to CPU ${signallerCpu}`);
    }
    const result = JSON.parse(
      await a.src.command(`latency 0 ${a.bar} 0 4 0xdeadbeef ${LATENCY_COUNT}`),
    ) as Latency;
    const c0 = cpuSeconds();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const idleCores = (cpuSeconds() - c0) / ((performance.now() - t0) / 1000);
    return { engine: result, idleCores };
  } finally {
    await a.close();
  }
}

/**
 * Writes per second with `regs` armed and `signalled` of them signalled from `threads`
 * threads. With `baselineArgs`, the baseline runs between the engine's windows (engine,
 * baseline, engine, …) so both see the same machine; each side's median is reported.
 */
async function throughput(
  regs: number,
  threads: number,
  dir: string,
  signalled = regs,
  baselineArgs: string[] | null = null,
) {
  const a = await armed("block", regs, dir);
  const engine: number[] = [];
  const base: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const before = a.triggers();
      const t0 = performance.now();
      await a.src.command(`throughput 0 ${signalled - 1} ${threads} ${WINDOW_S}`);
      const seconds = (performance.now() - t0) / 1000;
      await new Promise((r) => setTimeout(r, 50)); // let the last wake-ups drain
      engine.push((a.triggers() - before) / seconds);
      if (baselineArgs) base.push(baseline(baselineArgs).writes_per_sec);
    }
    return {
      writesPerSec: median(engine),
      baselineWritesPerSec: base.length > 0 ? median(base) : 0,
      rssMiB: rssMiB("self"),
    };
  } finally {
    await a.close();
  }
}

async function controlPlane(): Promise<Record<string, unknown>> {
  const stateDir = tempDir("ioeventd-bench-");
  const N = QUICK ? 1000 : 10_000;
  const SMALL = QUICK ? 100 : 1000;
  const src = await SourceProcess.start(N + 3 * SMALL);
  const agent = await spawnAgent(stateDir, [
    "--max-per-device",
    String(N + 3 * SMALL),
    "--metrics-listen",
    "127.0.0.1:0",
  ]);
  const serving = agent.logs.map((l) => JSON.parse(l) as { msg: string; metrics?: string })
    .find((l) => l.msg === "ioeventd serving");
  const metricsUrl = `http://${serving?.metrics}/metrics`;
  const out: Record<string, unknown> = {};
  try {
    const pid = agent.child.pid;
    out.rss_mib_empty = rssMiB(pid);
    const spec = (i: number) => ({
      device: GPU,
      bar: 0,
      offset: String(0x10000 + 4 * i),
      width: 4,
      data: "1",
      source: { pid: src.pid, fd: src.fds[i] },
    });
    const clients = Array.from({ length: 64 }, () => new AgentClient(agent.address));
    let next = 0;
    const creates = async (count: number, concurrency: number) => {
      const latencies: number[] = [];
      const t0 = performance.now();
      const stop = next + count;
      await Promise.all(
        clients.slice(0, concurrency).map(async (client) => {
          while (next < stop) {
            const i = next++;
            const c0 = performance.now();
            await client.create({ owner: `vm-${i % 100}`, spec: spec(i) });
            latencies.push(performance.now() - c0);
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      latencies.sort((x, y) => x - y);
      return {
        per_sec: Math.round(count / seconds),
        p50_ms: +percentile(latencies, 0.5).toFixed(2),
        p99_ms: +percentile(latencies, 0.99).toFixed(2),
        seconds: +seconds.toFixed(2),
      };
    };
    // Time to create N from empty (16 clients), memory along the way, then reads at N.
    await creates(10, 1);
    const rss: Record<number, number> = { 0: out.rss_mib_empty as number, [next]: rssMiB(pid) };
    out[`create_${N}_c16`] = await creates(N - next, 16);
    rss[next] = rssMiB(pid);
    out.rss_mib_at = rss;
    const t0 = performance.now();
    const all = await agent.client.listAll();
    out.list_all_ms = +(performance.now() - t0).toFixed(1);
    out.list_count = all.length;
    // A Prometheus scrape with every registration armed (per-device series, the default).
    const scrapes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const s0 = performance.now();
      const body = await (await fetch(metricsUrl)).text();
      scrapes.push(performance.now() - s0);
      out.metrics_bytes = body.length;
    }
    scrapes.sort((a, b) => a - b);
    out.metrics_scrape_ms_median = +scrapes[2].toFixed(1);
    // Create latency by concurrency, on top of the N already armed.
    for (const c of [1, 16, 64]) out[`creates_c${c}`] = await creates(SMALL, c);
    out.total_registrations = N;
    for (const c of clients) c.close();
  } finally {
    await agent.crash();
    await src.kill();
    removeDir(stateDir);
  }
  return out;
}

const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) + "×" : "-");
const us = (ns: number) => (ns / 1000).toFixed(1);

const dir = tempDir("ioeventd-bench-");
const results: Record<string, unknown> = {
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    memory_gib: Math.round(totalmem() / 2 ** 30),
  },
  date: new Date().toISOString(),
  quick: QUICK,
};
try {
  // 1. Trigger → write latency, per polling mode, against the baseline in the same mode.
  const latencyRows: string[][] = [[
    "mode",
    "p50 µs",
    "base p50",
    "ratio",
    "p99 µs",
    "base p99",
    "ratio",
    "p99.9 µs",
    "base p99.9",
    "idle CPU (cores)",
  ]];
  const lat: Record<string, unknown> = {};
  // The default engine in each mode (nothing pinned: where the worker runs relative to the
  // signalling process is up to the scheduler), then blocking mode with shard=device and the
  // worker pinned (cpus), the signalling process pinned too (taskset): on another CPU — a
  // cross-CPU wake-up — and on the worker's own CPU.
  const [cpuA, cpuB] = allowedCpuRange();
  type Run = [string, PollMode, Pick<EngineOptions, "shard" | "cpus">, number?];
  const runs: Run[] = [
    ["block", "block", {}],
    ["busy", "busy", {}],
    ["adaptive", "adaptive", {}],
  ];
  const canPin = spawnSync("taskset", ["--version"]).status === 0;
  if (canPin && cpuA !== cpuB) {
    const device = { shard: "device" as const, cpus: [cpuB] };
    runs.push([`block, device, worker@${cpuB}, signaller@${cpuA}`, "block", device, cpuA]);
    runs.push([`block, device, worker@${cpuB}, signaller@${cpuB}`, "block", device, cpuB]);
  }
  const baselines = new Map<string, Latency>();
  for (const [label, mode, extra, signallerCpu] of runs) {
    const { engine, idleCores } = await latency(mode, dir, extra, signallerCpu);
    const baseMode = mode === "block" ? "block" : "busy";
    const base = baselines.get(baseMode) ?? baseline([
      "latency",
      "--count",
      String(LATENCY_COUNT),
      "--mode",
      baseMode,
    ]) as unknown as Latency;
    baselines.set(baseMode, base);
    lat[label] = {
      engine,
      baseline: base,
      idle_cores: idleCores,
      ...extra,
      signaller_cpu: signallerCpu,
    };
    latencyRows.push([
      label,
      us(engine.p50_ns),
      us(base.p50_ns),
      ratio(engine.p50_ns, base.p50_ns),
      us(engine.p99_ns),
      us(base.p99_ns),
      ratio(engine.p99_ns, base.p99_ns),
      us(engine.p999_ns),
      us(base.p999_ns),
      idleCores.toFixed(2),
    ]);
  }
  results.latency = lat;
  console.log(
    `\nTrigger → write latency (${LATENCY_COUNT} triggers; baseline: busy for busy/adaptive)\n`,
  );
  console.log(renderTable(latencyRows));

  // 2. Throughput with 1, 64 and 1000 registrations signalled from 2 threads.
  const tputRows: string[][] = [["registrations", "writes/s", "baseline writes/s", "ratio"]];
  const tput: Record<string, unknown> = {};
  for (const regs of [1, 64, 1000]) {
    const r = await throughput(regs, 2, dir, regs, [
      "throughput",
      "--regs",
      String(regs),
      "--threads",
      "2",
      "--seconds",
      String(WINDOW_S),
      "--mode",
      "block",
    ]);
    tput[regs] = { engine: r.writesPerSec, baseline: r.baselineWritesPerSec };
    tputRows.push([
      String(regs),
      Math.round(r.writesPerSec).toString(),
      Math.round(r.baselineWritesPerSec).toString(),
      ratio(r.writesPerSec, r.baselineWritesPerSec),
    ]);
  }
  results.throughput = tput;
  console.log(
    `\nThroughput (blocking mode, 2 signalling threads; median of ${ROUNDS} alternating ${WINDOW_S} s windows)\n`,
  );
  console.log(renderTable(tputRows));

  // 3. Scale: the cost of a write with 10 signalled while N are armed must stay flat.
  const scaleRows: string[][] = [[
    "armed",
    "ns/write (10 signalled)",
    "vs 10 armed",
    "bench RSS MiB",
  ]];
  const scale: Record<string, unknown> = {};
  let first = 0;
  for (const n of QUICK ? [10, 1000] : [10, 1000, 10_000]) {
    const r = await throughput(n, 2, dir, 10);
    const ns = 1e9 / r.writesPerSec;
    first ||= ns;
    scale[n] = { ns_per_write: ns, rss_mib: r.rssMiB };
    scaleRows.push([String(n), ns.toFixed(0), ratio(ns, first), r.rssMiB.toFixed(0)]);
  }
  results.scale = scale;
  console.log("\nScale (per-write cost with N registrations armed)\n");
  console.log(renderTable(scaleRows));

  // 4. Control operations of the engine itself (no agent): one by one and batched.
  const ops = controlOps(dir, QUICK ? 200 : 1000, QUICK ? 3 : 5);
  results.control_ops = ops;
  console.log(
    `\nEngine control operations (${ops.count} registrations, blocking worker; µs per registration, median of rounds)\n`,
  );
  console.log(renderTable([
    ["operation", "µs each"],
    ["register", String(ops.register_us)],
    ["unregister", String(ops.unregister_us)],
    ["registerMany", String(ops.register_many_us ?? "-")],
    ["unregisterMany", String(ops.unregister_many_us ?? "-")],
  ]));

  // 5. Control plane of a real agent process.
  const cp = await controlPlane();
  results.control_plane = cp;
  console.log("\nControl plane (agent process, journal fsync'd per change)\n");
  const cpRows: string[][] = [["measure", "value"]];
  for (const [k, v] of Object.entries(cp)) cpRows.push([k, JSON.stringify(v)]);
  console.log(renderTable(cpRows));

  // 6. A real KVM guest's doorbells: exit, the agent in each poll mode, a bare consumer, RAM.
  results.guest_doorbells = await guestDoorbells({ quick: QUICK });
} finally {
  removeDir(dir);
}

mkdirSync("bench-results", { recursive: true });
const file = join("bench-results", `bench-${Date.now()}.json`);
writeFileSync(file, JSON.stringify(results, null, 2));
writeFileSync(join("bench-results", "latest.json"), JSON.stringify(results, null, 2));
console.log(`\nresults: ${file}`);
