// The fleet's worker pool: never more than `concurrency` hosts in flight, a per-host
// timeout that frees the slot, results in the order of the host list.
import assert from "node:assert/strict";
import { mapBounded, TaskTimeout } from "../../service/cli/fleet_pool.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("pool: the concurrency bound holds and every item runs once, in order", async () => {
  let inFlight = 0;
  let peak = 0;
  const items = Array.from({ length: 20 }, (_, i) => i);
  const settled: number[] = [];
  const results = await mapBounded(items, { concurrency: 4, timeoutMs: 1000 }, async (i) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await sleep(5 + (i % 3) * 5);
    inFlight--;
    return i * 10;
  }, (i) => settled.push(i));
  assert.equal(peak, 4);
  assert.deepEqual(results.map((r) => (r.ok ? r.value : -1)), items.map((i) => i * 10));
  assert.deepEqual(settled.sort((x, y) => x - y), items);
});

Deno.test("pool: a hung task times out alone; the others finish; errors are kept", async () => {
  const t0 = performance.now();
  const results = await mapBounded(
    ["hang", "ok", "boom", "ok2"],
    { concurrency: 2, timeoutMs: 200 },
    async (item, deadline) => {
      assert.ok(deadline > Date.now());
      if (item === "hang") await new Promise(() => {});
      if (item === "boom") throw new Error("boom");
      await sleep(10);
      return item;
    },
  );
  const ms = performance.now() - t0;
  assert.ok(ms < 600, `took ${ms} ms`);
  const [hang, ok, boom, ok2] = results;
  assert.ok(!hang.ok && hang.timedOut && hang.error instanceof TaskTimeout);
  assert.ok(ok.ok && ok.value === "ok");
  assert.ok(!boom.ok && !boom.timedOut && (boom.error as Error).message === "boom");
  assert.ok(ok2.ok && ok2.value === "ok2");
});
