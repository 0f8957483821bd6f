// Native per-bucket nanosecond histograms → cumulative Prometheus histograms in seconds, with
// the sub-microsecond buckets folded into the 1 µs one.
import assert from "node:assert/strict";
import { Registry } from "prom-client";
import { formatLe, SnapshotHistogram } from "../../service/metrics/histogram.ts";
import { parseExposition, select, value } from "./exposition.ts";

/** 1-2-5 from 100 ns to 100 ms, as the native engine has them. */
const BOUNDS: bigint[] = [];
for (let decade = 100n; decade <= 10_000_000n; decade *= 10n) {
  BOUNDS.push(decade, 2n * decade, 5n * decade);
}
BOUNDS.push(100_000_000n);

Deno.test("le values are formatted as Go clients format them", () => {
  assert.equal(formatLe(1e-6), "1e-06");
  assert.equal(formatLe(2e-6), "2e-06");
  assert.equal(formatLe(5e-5), "5e-05");
  assert.equal(formatLe(1e-4), "0.0001");
  assert.equal(formatLe(0.0005), "0.0005");
  assert.equal(formatLe(0.1), "0.1");
  assert.equal(formatLe(2.5), "2.5");
  assert.equal(formatLe(0), "0");
});

Deno.test("native buckets become cumulative seconds buckets from 1 µs, summed over workers", async () => {
  assert.equal(BOUNDS.length, 19);
  const registry = new Registry();
  const h = new SnapshotHistogram("test_latency_seconds", "Test.", BOUNDS);
  h.metric.registerIn(registry);
  const buckets = (entries: Record<number, number>) => {
    const b = new Array<bigint>(BOUNDS.length + 1).fill(0n);
    for (const [i, n] of Object.entries(entries)) b[Number(i)] = BigInt(n);
    return b;
  };
  // Worker 1: 100 ns, 200 ns, 500 ns (folded into 1 µs), 1 µs, 2 µs; worker 2: 5 µs and +Inf.
  h.update([
    { count: 5n, sumNs: 3_800n, buckets: buckets({ 0: 1, 1: 1, 2: 1, 3: 1, 4: 1 }) },
    { count: 3n, sumNs: 1_000_010_000n, buckets: buckets({ 5: 2, 19: 1 }) },
  ]);
  const e = parseExposition(await registry.metrics());
  assert.equal(e.families.get("test_latency_seconds")?.type, "histogram");
  const bucket = (le: string) => value(e, "test_latency_seconds_bucket", { le });
  const les = select(e, "test_latency_seconds_bucket").map((s) => s.labels.le);
  assert.equal(les[0], "1e-06");
  assert.equal(les.at(-1), "+Inf");
  assert.equal(les.length, 17); // 16 finite bounds from 1 µs to 100 ms, and +Inf
  assert.ok(!les.includes("5e-07") && !les.includes("1e-07"));
  assert.equal(bucket("1e-06"), 4);
  assert.equal(bucket("2e-06"), 5);
  assert.equal(bucket("5e-06"), 7);
  assert.equal(bucket("0.1"), 7);
  assert.equal(bucket("+Inf"), 8);
  assert.equal(value(e, "test_latency_seconds_count"), 8);
  assert.equal(value(e, "test_latency_seconds_sum"), (3_800 + 1_000_010_000) / 1e9);

  // A later snapshot replaces the values (the native counters are already cumulative in time).
  h.update([{ count: 1n, sumNs: 100n, buckets: buckets({ 0: 9 }) }]);
  const again = parseExposition(await registry.metrics());
  assert.equal(value(again, "test_latency_seconds_bucket", { le: "1e-06" }), 9);
  assert.equal(value(again, "test_latency_seconds_count"), 9);
});
