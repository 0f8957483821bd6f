// The guest-doorbells figures: per path, the medians and totals of its runs' samples (the
// ram path's medians are the floor the others are measured above), and the targets checked
// on them, each with what was measured alongside when it is missed.
import { median } from "../summary.ts";

export type PollMode = "block" | "busy" | "adaptive";
/** The agent's poll modes: each is a path of its own, labelled `ioeventd <mode>`. */
export const POLL_MODES: PollMode[] = ["block", "busy", "adaptive"];

/** One run of one path: its stores run and its latency run. */
export interface Sample {
  nsPerStore: number;
  p50: number;
  p99: number;
  stores: number;
  signals: number;
  wakeups: number;
  exits: number;
  /** Whether the final doorbell landed (null on the ram path: its doorbells are RAM). */
  finalLanded: boolean | null;
  /** Involuntary context switches of the VMM's and the agent's threads in the latency run. */
  preemptions: number;
  /** Share of the latency run in which the vCPU and the consumer were runnable on one CPU. */
  sharedCpu: number;
}

/** Per path label: the figures of the JSON report and of the table. */
export type Figures = Record<string, Record<string, number | boolean | string>>;

/** The figures of every path, in the order the paths were first measured. */
export function figuresOf(samples: Map<string, Sample[]>): Figures {
  const med = (label: string, f: (s: Sample) => number) => median(samples.get(label)!.map(f));
  const sum = (label: string, f: (s: Sample) => number) =>
    samples.get(label)!.reduce((a, s) => a + f(s), 0);
  const floorNs = med("ram", (s) => s.nsPerStore);
  const floorP50 = med("ram", (s) => s.p50);
  const floorP99 = med("ram", (s) => s.p99);
  const figures: Figures = {};
  for (const label of samples.keys()) {
    figures[label] = {
      ns_per_store: +med(label, (s) => s.nsPerStore).toFixed(0),
      overhead_ns: +(med(label, (s) => s.nsPerStore) - floorNs).toFixed(0),
      p50_ns: med(label, (s) => s.p50),
      p99_ns: med(label, (s) => s.p99),
      net_p50_ns: med(label, (s) => s.p50) - floorP50,
      net_p99_ns: med(label, (s) => s.p99) - floorP99,
      stores: sum(label, (s) => s.stores),
      signals: sum(label, (s) => s.signals),
      wakeups: sum(label, (s) => s.wakeups),
      mmio_exits: sum(label, (s) => s.exits),
      final_landed: label === "ram"
        ? "n/a"
        : `${samples.get(label)!.filter((s) => s.finalLanded).length}/${
          samples.get(label)!.length
        }`,
      preemptions: sum(label, (s) => s.preemptions),
      shared_cpu_pct: +(100 * med(label, (s) => s.sharedCpu)).toFixed(1),
    };
  }
  return figures;
}

/**
 * Which bare path each agent mode is compared with: the blocking agent with the blocking
 * consumer, the spinning ones (adaptive spins while doorbells come every few µs) with the
 * spinning consumer.
 */
export const bareOf = (
  label: string,
): string => (label === "ioeventd block" ? "bare" : "bare-spin");

// Latency targets on what the guest sees (p50/p99 as measured); the net ratios are shown
// beside them. A ratio whose denominator is not above the floor's noise is not a measure.
export interface Target {
  target: string;
  measured: number;
  net?: number;
  limit: number;
  atMost: boolean;
  cause: string;
}

/** The targets of each agent poll mode; `loadAfter` (/proc/loadavg) goes into the causes. */
export function targetsOf(figures: Figures, loadAfter: string): Target[] {
  const targets: Target[] = [];
  const causeOf = (label: string, other: string) => {
    const f = figures[label];
    const o = figures[other];
    const parts = [`load ${loadAfter.split(" ")[0]} on ${navigator.hardwareConcurrency} CPUs`];
    for (const [name, g] of [[label, f], [other, o]] as const) {
      if ((g.shared_cpu_pct as number) > 2) {
        parts.push(
          `${name}: vCPU and consumer runnable on one CPU ${g.shared_cpu_pct}% of the time`,
        );
      }
      if ((g.preemptions as number) > 20) parts.push(`${name}: ${g.preemptions} preemptions`);
      if ((g.wakeups as number) > 0 && label.startsWith("ioeventd") && name === label) {
        parts.push(`${name}: ${g.wakeups} wake-ups for ${g.stores} stores`);
      }
    }
    return parts.join("; ");
  };
  for (const poll of POLL_MODES) {
    const label = `ioeventd ${poll}`;
    const a = figures[label];
    const bname = bareOf(label);
    const b = figures[bname];
    const n = (k: string, g: typeof a) => g[k] as number;
    targets.push(
      {
        target: `overhead ${label} / ${bname} ≤ 1.05×`,
        measured: n("overhead_ns", b) > 0 ? n("overhead_ns", a) / n("overhead_ns", b) : NaN,
        limit: 1.05,
        atMost: true,
        cause: causeOf(label, bname),
      },
      {
        target: `latency p50 ${label} / ${bname} ≤ 1.2×`,
        measured: n("p50_ns", a) / n("p50_ns", b),
        net: n("net_p50_ns", a) / n("net_p50_ns", b),
        limit: 1.2,
        atMost: true,
        cause: causeOf(label, bname),
      },
      {
        target: `latency p99 ${label} / ${bname} ≤ 1.5×`,
        measured: n("p99_ns", a) / n("p99_ns", b),
        net: n("net_p99_ns", a) / n("net_p99_ns", b),
        limit: 1.5,
        atMost: true,
        cause: causeOf(label, bname),
      },
      {
        target: `overhead exit / ${label} ≥ 4×`,
        measured: n("overhead_ns", a) > 0
          ? n("overhead_ns", figures.exit) / n("overhead_ns", a)
          : NaN,
        limit: 4,
        atMost: false,
        cause: causeOf(label, "exit"),
      },
    );
  }
  return targets;
}
