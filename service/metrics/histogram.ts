// The native engine's latency histograms as Prometheus histograms. The engine keeps per-bucket
// counts (not cumulative) in nanoseconds with 1-2-5 bounds from 100 ns; Prometheus wants
// cumulative buckets in seconds. Bounds below `minBoundNs` are folded into the first bucket:
// sub-microsecond resolution is noise at scrape level and only multiplies series.
import { type Sample, SnapshotMetric } from "./snapshot_metric.ts";

/** The shape of one native histogram (service/native/engine.ts `Histogram`). */
export interface NativeHistogram {
  count: bigint;
  sumNs: bigint;
  /** Per-bucket counts; the last bucket is +Inf. */
  buckets: bigint[];
}

/** A float as Go's strconv 'g' prints it ("1e-06", "0.0001"), as other exporters label `le`. */
export function formatLe(seconds: number): string {
  if (seconds === 0) return "0";
  const exp = Math.floor(Math.log10(Math.abs(seconds)));
  if (exp < -4 || exp >= 21) {
    const [mantissa, e] = seconds.toExponential().split("e");
    const sign = e.startsWith("-") ? "-" : "+";
    return `${mantissa}e${sign}${e.replace(/^[-+]/, "").padStart(2, "0")}`;
  }
  return String(seconds);
}

export class SnapshotHistogram {
  readonly metric: SnapshotMetric;
  /** Native bucket index → Prometheus bucket index (the last one is +Inf). */
  readonly #target: Int32Array;
  readonly #perBucket: Float64Array;
  readonly #buckets: Sample[];
  readonly #sum: Sample;
  readonly #count: Sample;
  readonly #values: Sample[];

  constructor(name: string, help: string, boundsNs: readonly bigint[], minBoundNs = 1000n) {
    const kept = boundsNs.filter((b) => b >= minBoundNs);
    this.#target = new Int32Array(boundsNs.length + 1);
    for (let i = 0; i < boundsNs.length; i++) {
      const j = kept.findIndex((b) => b >= boundsNs[i]);
      this.#target[i] = j < 0 ? kept.length : j;
    }
    this.#target[boundsNs.length] = kept.length;
    this.#perBucket = new Float64Array(kept.length + 1);
    // Sample objects are made once and updated in place: a scrape allocates none of them.
    this.#buckets = [
      ...kept.map((b) => ({
        value: 0,
        labels: { le: formatLe(Number(b) / 1e9) },
        metricName: `${name}_bucket`,
      })),
      { value: 0, labels: { le: "+Inf" }, metricName: `${name}_bucket` },
    ];
    this.#sum = { value: 0, labels: {}, metricName: `${name}_sum` };
    this.#count = { value: 0, labels: {}, metricName: `${name}_count` };
    this.#values = [...this.#buckets, this.#sum, this.#count];
    this.metric = new SnapshotMetric(name, help, "histogram", () => this.#values);
  }

  /** Sets the samples to the sum of `histograms` (one per native worker). */
  update(histograms: Iterable<NativeHistogram>): void {
    this.#perBucket.fill(0);
    let sumNs = 0;
    for (const h of histograms) {
      sumNs += Number(h.sumNs);
      const n = Math.min(h.buckets.length, this.#target.length);
      for (let i = 0; i < n; i++) this.#perBucket[this.#target[i]] += Number(h.buckets[i]);
    }
    let cumulative = 0;
    for (let j = 0; j < this.#buckets.length; j++) {
      cumulative += this.#perBucket[j];
      this.#buckets[j].value = cumulative;
    }
    this.#sum.value = sumNs / 1e9;
    // _count is the +Inf bucket, not the native count read a moment apart: the two must agree.
    this.#count.value = cumulative;
  }
}
