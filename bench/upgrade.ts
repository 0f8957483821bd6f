// Upgrades under a doorbell stream (README "Upgrades"): at 1 and 10 000 registrations, in
// the same run, a hand-over upgrade (a successor takes over), a plain restart (SIGTERM,
// then start) and a kill -9 restart (SIGKILL, then start). For each: the longest
// doorbell→write delay of a 1 kHz stream against one registration, the stream's
// steady-state p99 before it, doorbells lost (not written within 10 s), doubled writes
// (writes counted by the agents beyond the doorbells rung), and when the new agent had
// re-armed everything, from its process start.
import { type AgentProcess, removeDir, spawnAgent, tempDir } from "../test/support/agent.ts";
import { SourceProcess } from "../test/support/source_process.ts";
import {
  armAll,
  logLine,
  probeConnections,
  startStream,
  type StreamReport,
} from "../test/upgrade/support.ts";

export type UpgradeMethod = "hand-over" | "restart" | "kill -9";
export const METHODS: readonly UpgradeMethod[] = ["hand-over", "restart", "kill -9"];

export interface UpgradeFigures {
  registrations: number;
  method: UpgradeMethod;
  doorbells: number;
  steady_p99_ms: number;
  longest_ms: number;
  lost: number;
  /** null: not countable (a killed agent's counters die with it). */
  doubled: number | null;
  refused_connections: number;
  /** The new agent: every journaled ioeventfd armed, ms from its runtime's start. */
  rearmed_since_process_start_ms: number;
  startup_ms: Record<string, number>;
}

/** Both agents alike: room for 10 000 registrations on the simulated GPU and NIC. */
const ARGS = ["--max-per-device", "10000"];
const ms = (ns: number) => Math.round(ns / 1e4) / 100;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

function totalTriggers(list: { triggers: string }[]): bigint {
  return list.reduce((n, r) => n + BigInt(r.triggers), 0n);
}

async function oneUpgrade(registrations: number, method: UpgradeMethod): Promise<UpgradeFigures> {
  const dir = tempDir("ioeventd-bench-upgrade-");
  const src = await SourceProcess.start(registrations);
  let old: AgentProcess | null = await spawnAgent(dir, ARGS);
  let next: AgentProcess | null = null;
  try {
    await armAll(old, src, registrations);
    // Steady state first: the same stream, no upgrade.
    let stop = await startStream(src, dir);
    await sleep(1000);
    const steady = await stop();
    stop = await startStream(src, dir);
    const probe = probeConnections(`${dir}/run/ioeventd.sock`, 5);
    await sleep(200);
    let oldWrites: bigint | null = null;
    if (method === "hand-over") {
      next = await spawnAgent(dir, ARGS);
      await old.exited;
      oldWrites = BigInt(
        logLine(next, "took over: the predecessor writes no more")!
          .predecessor_triggers as string,
      );
    } else if (method === "restart") {
      old.kill("SIGTERM");
      await old.exited;
      next = await spawnAgent(dir, ARGS);
      const stopped = logLine(old, "ioeventd stopped"); // its log is read by now
      oldWrites = stopped ? BigInt(stopped.triggers as string) : null;
    } else {
      old.kill("SIGKILL");
      await old.exited;
      next = await spawnAgent(dir, ARGS);
    }
    old.client.close();
    old = null;
    await sleep(500);
    const stream: StreamReport = await stop();
    const connections = await probe();
    const newWrites = totalTriggers(await next.client.listAll());
    const replayed = logLine(next, "journal replayed")!;
    // Both steady-state streams were written by the first agent; its counters hold them.
    const rung = BigInt(stream.count + steady.count);
    return {
      registrations,
      method,
      doorbells: stream.count,
      steady_p99_ms: ms(steady.p99_ns),
      longest_ms: ms(stream.max_ns),
      lost: stream.timeouts,
      doubled: oldWrites === null ? null : Number(oldWrites + newWrites - rung),
      refused_connections: connections.refused,
      rearmed_since_process_start_ms: replayed.rearmed_since_process_start_ms as number,
      startup_ms: replayed.startup_ms as Record<string, number>,
    };
  } finally {
    for (const a of [old, next]) {
      if (!a) continue;
      a.kill("SIGKILL");
      await a.exited;
      a.client.close();
    }
    await src.kill();
    removeDir(dir);
  }
}

/** Every method at each size, in one run. */
export async function upgrades(quick: boolean): Promise<UpgradeFigures[]> {
  const out: UpgradeFigures[] = [];
  for (const n of quick ? [1, 1000] : [1, 10_000]) {
    for (const m of METHODS) out.push(await oneUpgrade(n, m));
  }
  return out;
}

/** The figures as the README's table: one row per size and method. */
export function upgradeRows(figures: readonly UpgradeFigures[]): string[][] {
  const rows = [[
    "registrations",
    "upgrade",
    "longest delay ms",
    "steady p99 ms",
    "lost",
    "doubled",
    "refused conns",
    "re-armed after process start ms",
  ]];
  for (const f of figures) {
    rows.push([
      String(f.registrations),
      f.method,
      f.longest_ms.toFixed(2),
      f.steady_p99_ms.toFixed(2),
      String(f.lost),
      f.doubled === null ? "n/a" : String(f.doubled),
      String(f.refused_connections),
      String(f.rearmed_since_process_start_ms),
    ]);
  }
  return rows;
}

if (import.meta.main) {
  const sizes = Deno.args.filter((a) => /^\d+$/.test(a)).map(Number);
  const methods = METHODS.filter((m) => Deno.args.includes(m));
  const figures: UpgradeFigures[] = [];
  for (const n of sizes.length ? sizes : [1, 10_000]) {
    for (const m of methods.length ? methods : METHODS) {
      const f = await oneUpgrade(n, m);
      console.log(JSON.stringify(f));
      figures.push(f);
    }
  }
  const { renderTable } = await import("../service/cli/table.ts");
  console.log(renderTable(upgradeRows(figures)));
  console.log(`load: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
}
