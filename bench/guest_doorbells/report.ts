// The guest-doorbells report on stdout: the per-path table, what its columns mean, and the
// targets table (a missed target with what was measured alongside).
import { renderTable } from "../../service/cli/table.ts";
import { bareOf, type Figures, type Target } from "./figures.ts";

/** How the figures were gathered, for the title line. */
export interface RunShape {
  rounds: number;
  runs: number;
  stores: number;
  latency: number;
  loadBefore: string;
  loadAfter: string;
  seconds: number;
}

/** Prints the title, the per-path table, the notes on its columns and the targets table. */
export function printReport(figures: Figures, targets: Target[], shape: RunShape): void {
  const x = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : "-");
  const us = (ns: number) => (ns / 1000).toFixed(2);
  const rows: string[][] = [[
    "path",
    "ns/store",
    "overhead ns",
    "p50 µs",
    "p99 µs",
    "net p50",
    "net p99",
    "vs bare: overhead",
    "p50",
    "p99",
    "stores",
    "signals",
    "wake-ups",
    "exits",
    "last landed",
    "preempted",
    "1 CPU %",
  ]];
  for (const label of Object.keys(figures)) {
    const f = figures[label];
    const isAgent = label.startsWith("ioeventd");
    const b = figures[bareOf(label)];
    rows.push([
      label,
      String(f.ns_per_store),
      String(f.overhead_ns),
      us(f.p50_ns as number),
      us(f.p99_ns as number),
      us(f.net_p50_ns as number),
      us(f.net_p99_ns as number),
      isAgent ? x(f.overhead_ns as number, b.overhead_ns as number) : "",
      isAgent ? x(f.p50_ns as number, b.p50_ns as number) : "",
      isAgent ? x(f.p99_ns as number, b.p99_ns as number) : "",
      String(f.stores),
      String(f.signals),
      String(f.wakeups),
      String(f.mmio_exits),
      String(f.final_landed),
      String(f.preemptions),
      String(f.shared_cpu_pct),
    ]);
  }
  console.log(
    `\nGuest doorbells (a KVM guest's 4-byte doorbell; per path, ${shape.rounds} alternating rounds of ` +
      `${shape.runs} runs of ${shape.stores} back-to-back stores and ${shape.latency} ring-and-wait doorbells; ` +
      `medians of the runs; load ${shape.loadBefore} → ${shape.loadAfter}; ${
        shape.seconds.toFixed(0)
      } s)\n`,
  );
  console.log(renderTable(rows));
  console.log(
    "\nns/store: host time around KVM_RUN / stores; overhead: minus the ram path. p50/p99: the " +
      "guest's rdtsc from before its store to after it saw the value in its BAR slot; net: " +
      "minus the ram path's. stores/signals/wake-ups: the stores program's totals over the " +
      "rounds (signals: eventfd counts read; wake-ups: writes performed). preempted: involuntary " +
      "context switches of the VMM's and the agent's threads during the latency runs. 1 CPU %: " +
      "share of 1 ms samples of the latency runs in which the vCPU thread and the consumer " +
      "thread were both runnable on the same CPU (median of the runs).\n",
  );
  const targetRows: string[][] = [["target", "measured", "net", "met", "measured alongside"]];
  for (const t of targets) {
    const ok = Number.isFinite(t.measured) &&
      (t.atMost ? t.measured <= t.limit : t.measured >= t.limit);
    targetRows.push([
      t.target,
      Number.isFinite(t.measured) ? `${t.measured.toFixed(2)}×` : "n/m (≤ floor)",
      t.net !== undefined && Number.isFinite(t.net) ? `${t.net.toFixed(2)}×` : "",
      ok ? "yes" : "NO",
      ok ? "" : t.cause,
    ]);
  }
  console.log(renderTable(targetRows));
}
