// The data plane's measurements for `deno task bench`: an engine in this process with
// registrations armed on a source process's eventfds, its trigger → write latency and its
// writes per second, and the minimal eventfd → epoll → store loop
// (native/src/bin/ioeventd-baseline.rs) they are compared with; plus the process facts they
// need (CPU time, RSS, the CPUs this process may use, pinning).
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { type EngineOptions, NativeEngine, type PollMode } from "../service/native/engine.ts";
import { NATIVE_BIN, SourceProcess } from "../test/support/source_process.ts";
import { median } from "./summary.ts";

export const QUICK = Deno.args.includes("--quick"); // CI smoke: fewer triggers, shorter windows
export const LATENCY_COUNT = QUICK ? 5_000 : 100_000;
export const WINDOW_S = 1;
export const ROUNDS = QUICK ? 1 : 5; // alternating engine/baseline windows; medians reported

export interface Latency {
  count: number;
  p50_ns: number;
  p99_ns: number;
  p999_ns: number;
  mean_ns: number;
  timeouts: number;
}

export function baseline(args: string[]): Record<string, number> {
  const r = spawnSync(NATIVE_BIN + "ioeventd-baseline", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ioeventd-baseline ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/** CPU seconds this process has used (the engine's workers run inside it). */
function cpuSeconds(): number {
  const { user, system } = process.cpuUsage(); // getrusage, µs
  return (user + system) / 1e6;
}

export function rssMiB(pid: number | "self"): number {
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
export function allowedCpuRange(): [number, number] {
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

export async function latency(
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
export async function throughput(
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
