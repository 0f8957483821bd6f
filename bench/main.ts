// `deno task bench`: the data plane measured against the physical limit of this machine — a
// minimal eventfd → epoll → store loop (native/src/bin/ioeventd-baseline.rs) run in the
// same process tree, the same run — and the control plane of a real agent process.
// Results: a table on stdout, JSON under bench-results/. Ratios, never absolute targets.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import type { EngineOptions, PollMode } from "../service/native/engine.ts";
import { controlOps } from "./control_ops.ts";
import { controlPlane, controlPlaneTable } from "./control_plane.ts";
import {
  allowedCpuRange,
  baseline,
  type Latency,
  latency,
  LATENCY_COUNT,
  QUICK,
  ROUNDS,
  throughput,
  WINDOW_S,
} from "./data_plane.ts";
import { guestDoorbells } from "./guest_doorbells.ts";
import { upgradeRows, upgrades } from "./upgrade.ts";
import { removeDir, tempDir } from "../test/support/agent.ts";
import { renderTable } from "../service/cli/table.ts";

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
  const cp = await controlPlane(QUICK);
  results.control_plane = cp;
  console.log("\nControl plane (agent process, grpc-js client on its Unix socket; issue #20)\n");
  console.log(renderTable(controlPlaneTable(cp)));

  // 6. Upgrades under a 1 kHz doorbell stream: hand-over, restart, kill -9 (bench/upgrade.ts).
  const up = await upgrades(QUICK);
  results.upgrades = up;
  console.log("\nUpgrades under a 1 kHz doorbell stream (one registration signalled)\n");
  console.log(renderTable(upgradeRows(up)));
  console.log(`load: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);

  // 7. A real KVM guest's doorbells: exit, the agent in each poll mode, a bare consumer, RAM.
  results.guest_doorbells = await guestDoorbells({ quick: QUICK });
} finally {
  removeDir(dir);
}

mkdirSync("bench-results", { recursive: true });
const file = join("bench-results", `bench-${Date.now()}.json`);
writeFileSync(file, JSON.stringify(results, null, 2));
writeFileSync(join("bench-results", "latest.json"), JSON.stringify(results, null, 2));
console.log(`\nresults: ${file}`);
