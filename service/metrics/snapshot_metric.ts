// A prom-client metric whose samples are computed once per scrape from a snapshot (the
// native engine's counters, the registry's state) instead of being updated on every event:
// the data plane stays free of TypeScript work, and a scrape costs one pass over the state.
import type { Metric, Registry } from "prom-client";

export type MetricKind = "counter" | "gauge" | "histogram";

export interface Sample {
  value: number;
  labels: Record<string, string>;
  /** For histograms: the `_bucket`, `_sum` or `_count` sample name. */
  metricName?: string;
}

/** What prom-client's Registry reads from a metric (see its getMetricsAsString). */
interface Collected {
  name: string;
  help: string;
  type: MetricKind;
  values: readonly Sample[];
  aggregator: "sum" | "max" | "first";
}

export class SnapshotMetric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricKind,
    /** Called at every scrape; may return the same (mutated) sample objects each time. */
    private readonly samples: () => readonly Sample[],
  ) {}

  get(): Promise<Collected> {
    const aggregator = this.type === "gauge" ? "max" : "sum";
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.samples(),
      aggregator,
    });
  }

  /** prom-client's Registry.resetMetrics calls this; snapshots have nothing to reset. */
  reset(): void {}

  /** Adds the metric to a prom-client registry, which only needs name, get() and reset(). */
  registerIn(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

/** A gauge or counter with one unlabelled sample. */
export function scalar(
  name: string,
  help: string,
  type: "counter" | "gauge",
  value: () => number,
): SnapshotMetric {
  const sample: Sample = { value: 0, labels: {} };
  const values = [sample];
  return new SnapshotMetric(name, help, type, () => {
    sample.value = value();
    return values;
  });
}
