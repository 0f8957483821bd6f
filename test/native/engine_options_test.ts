// The engine's sharding and pinning options as the agent takes them: flags, environment,
// validation (service/config.ts), and what the engine then reports.
import assert from "node:assert/strict";
import { parseCpuList } from "../../service/config.ts";
import { loadConfig } from "../../service/config_loader.ts";
import { NativeEngine } from "../../service/native/engine.ts";
import { tempDir } from "../support/agent.ts";

Deno.test("config: --shard and --cpus, with round-robin and no pinning by default", () => {
  const stateDir = tempDir();
  const plain = loadConfig(["--state-dir", stateDir]);
  assert.equal(plain.shard, "round-robin");
  assert.deepEqual(plain.cpus, []);
  const set = loadConfig(["--state-dir", stateDir, "--shard", "device", "--cpus", "0,1"]);
  assert.equal(set.shard, "device");
  assert.deepEqual(set.cpus, [0, 1]);
  assert.deepEqual(parseCpuList("3, 0-2,7"), [3, 0, 1, 2, 7]);
  assert.throws(() => loadConfig(["--state-dir", stateDir, "--shard", "numa"]), /shard must be/);
  for (const bad of ["x", "1,-2", "4-2", "1024"]) {
    assert.throws(() => loadConfig(["--state-dir", stateDir, "--cpus", bad]), /cpus must be/, bad);
  }
  Deno.env.set("IOEVENTD_SHARD", "device");
  Deno.env.set("IOEVENTD_CPUS", "1");
  try {
    const env = loadConfig(["--state-dir", stateDir]);
    assert.deepEqual([env.shard, env.cpus], ["device", [1]]);
  } finally {
    Deno.env.delete("IOEVENTD_SHARD");
    Deno.env.delete("IOEVENTD_CPUS");
  }
});

Deno.test("engine: options reach the plugin, refusals come back as errors", () => {
  const base = { workers: 2, canaryPeriodUs: 0, pollMode: "block" as const, spinBudgetUs: 0 };
  const plain = NativeEngine.open(base);
  try {
    const info = plain.info();
    assert.deepEqual([info.shard, info.pinnedCpus, info.watchedEventfds], ["round-robin", 0, 0]);
    assert.equal(info.readFallback, false, "RWF_NOWAIT reads work on this kernel");
  } finally {
    plain.close();
  }
  const sharded = NativeEngine.open({ ...base, shard: "device", cpus: [0] });
  try {
    assert.deepEqual([sharded.info().shard, sharded.info().pinnedCpus], ["device", 1]);
  } finally {
    sharded.close();
  }
  assert.throws(() => NativeEngine.open({ ...base, cpus: [4096] }), /engine_open: EINVAL/);
  assert.throws(() => NativeEngine.open({ ...base, cpus: [-1] }), /bad CPU id/);
});
