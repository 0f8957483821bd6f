// Process metrics that are true under Deno, with the names the Prometheus client libraries
// use. prom-client's own defaults are not used: its event-loop lag and GC metrics read wrong
// under Deno, and a wrong number is worse than none. CPU and memory come from getrusage and
// Deno.memoryUsage(); the rest from /proc/self, which Deno only lets an agent with
// --allow-all read: under narrower flags (`deno task start`) the native plugin reads them
// (`processStats`), and without either they are absent, not made up.
import process from "node:process";
import type { Registry as PromRegistry } from "prom-client";
import type { ProcessStats } from "../native/engine.ts";
import { type Sample, SnapshotMetric } from "./snapshot_metric.ts";

/** USER_HZ: the unit of times in /proc/<pid>/stat; 100 on every Linux ABI Deno runs on. */
const CLOCK_TICKS = 100;

/** Fields of /proc/self/stat after the command name, numbered as in proc(5). */
function statFields(): string[] | null {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    return ["", "", "", ...stat.slice(stat.lastIndexOf(")") + 2).split(" ")];
  } catch {
    return null;
  }
}

function bootTimeSeconds(): number | null {
  try {
    const m = /^btime (\d+)$/m.exec(Deno.readTextFileSync("/proc/stat"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function maxOpenFiles(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(Deno.readTextFileSync("/proc/self/limits"));
    return m && m[1] !== "unlimited" ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function openFds(): number | null {
  try {
    // Linux >= 6.2 reports the count as the directory's size: O(1) instead of listing every
    // fd (one per armed ioeventfd; 10 ms a scrape at 10 000). Listing is the fallback.
    const size = Deno.statSync("/proc/self/fd").size;
    if (size > 0) return size;
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    return n - 1; // the directory's own fd, open while it is read
  } catch {
    return null;
  }
}

/**
 * Registers the process metrics; `refresh()` reads /proc once for all of them. `native`: the
 * plugin's reading of /proc/self, used when Deno's permissions keep TypeScript out of /proc.
 */
export function registerProcessMetrics(
  registry: PromRegistry,
  native: (() => ProcessStats) | null = null,
): { refresh(): void } {
  const procReadable = statFields() !== null;
  const fromPlugin = !procReadable && native !== null ? native : null;
  const first = fromPlugin?.() ?? null;
  const bootTime = first ? first.bootTime : bootTimeSeconds();
  const startTicks = Number(first ? first.startTicks ?? NaN : statFields()?.[22] ?? NaN);
  const startTime = bootTime !== null && Number.isFinite(startTicks)
    ? bootTime + startTicks / CLOCK_TICKS
    : performance.timeOrigin / 1000;
  const values = new Map<string, number | null>();
  const metric = (name: string, help: string, type: "counter" | "gauge") => {
    const sample: Sample = { value: 0, labels: {} };
    new SnapshotMetric(name, help, type, () => {
      const v = values.get(name);
      if (v === null || v === undefined) return [];
      sample.value = v;
      return [sample];
    }).registerIn(registry);
  };
  metric("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", "counter");
  metric("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge");
  metric("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge");
  metric("process_open_fds", "Open file descriptors (each armed ioeventfd holds one).", "gauge");
  metric("process_max_fds", "Maximum number of open file descriptors (soft limit).", "gauge");
  metric("process_threads", "OS threads of the process (Deno's and the native workers').", "gauge");
  metric(
    "process_start_time_seconds",
    "Start time of the process since the Unix epoch, in seconds.",
    "gauge",
  );
  metric("deno_heap_used_bytes", "V8 heap in use, in bytes (Deno.memoryUsage).", "gauge");
  metric("deno_heap_total_bytes", "V8 heap reserved, in bytes (Deno.memoryUsage).", "gauge");
  metric(
    "deno_external_memory_bytes",
    "Memory of JavaScript objects bound to C++ objects (Deno.memoryUsage).",
    "gauge",
  );
  values.set("process_start_time_seconds", startTime);

  return {
    refresh() {
      const cpu = process.cpuUsage(); // getrusage(RUSAGE_SELF): every thread, in µs
      values.set("process_cpu_seconds_total", (cpu.user + cpu.system) / 1e6);
      const plugin = fromPlugin?.() ?? null;
      const stat = procReadable ? statFields() : null;
      const num = (i: number) => (stat && stat[i] !== undefined ? Number(stat[i]) : null);
      values.set("process_threads", plugin ? plugin.threads : num(20));
      values.set("process_virtual_memory_bytes", plugin ? plugin.virtualBytes : num(23));
      const mem = Deno.memoryUsage();
      values.set("process_resident_memory_bytes", mem.rss);
      values.set("deno_heap_used_bytes", mem.heapUsed);
      values.set("deno_heap_total_bytes", mem.heapTotal);
      values.set("deno_external_memory_bytes", mem.external);
      values.set("process_open_fds", plugin ? plugin.openFds : procReadable ? openFds() : null);
      values.set(
        "process_max_fds",
        plugin ? plugin.maxFds : procReadable ? maxOpenFiles() : null,
      );
    },
  };
}
