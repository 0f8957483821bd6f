// clients/service_config.json against an agent that is killed and restarted while a client
// calls it: with the config (waitForReady, retries on UNAVAILABLE, a 30 s deadline) every call
// succeeds, those issued while the agent was down complete once it is back, and a create
// retried with the same request_id across the restart returns the same ioeventfd; without the
// config the same client sees UNAVAILABLE.
import assert from "node:assert/strict";
import { GPU, removeDir, spawnAgent, tempDir } from "../support/agent.ts";
import { operatorPolicyFile } from "../support/ioeventctl.ts";
import { SourceProcess } from "../support/source_process.ts";
import { CLIENTS, PYTHON } from "./python.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const PROBE = new URL("./retry_probe.py", import.meta.url).pathname;

interface ProbeResult {
  calls: [number, number, string][];
  ids: string[];
}

async function probeAcrossRestart(serviceConfig: boolean, source: SourceProcess | null) {
  const stateDir = tempDir("ioeventd-retry-");
  const policy = ["--policy", operatorPolicyFile()]; // the probe names the test's source
  let agent = await spawnAgent(stateDir, policy);
  try {
    const args = [PROBE, "--address", agent.address, "--seconds", "6", "--device", GPU];
    if (!serviceConfig) args.push("--no-service-config");
    if (source) args.push("--pid", String(source.pid), "--fd", String(source.fds[0]));
    const probe = new Deno.Command(PYTHON, {
      args,
      env: { PYTHONPATH: `${CLIENTS}python`, PYTHONDONTWRITEBYTECODE: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await new Promise((r) => setTimeout(r, 1500));
    const killedAt = Date.now() / 1000;
    await agent.crash();
    await new Promise((r) => setTimeout(r, 500)); // down for a while, calls keep coming
    agent = await spawnAgent(stateDir, policy);
    const backAt = Date.now() / 1000;
    const out = await probe.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const result = JSON.parse(new TextDecoder().decode(out.stdout)) as ProbeResult;
    return { result, killedAt, backAt };
  } finally {
    await agent.crash().catch(() => {});
    removeDir(stateDir);
  }
}

Deno.test(
  "with the service config, calls ride out an agent restart; without it they fail",
  opts,
  async () => {
    const source = await SourceProcess.start(1);
    try {
      const { result, killedAt, backAt } = await probeAcrossRestart(true, source);
      const failed = result.calls.filter((c) => c[2] !== "OK");
      assert.deepEqual(failed, [], "a call failed despite the retry policy");
      const waited = result.calls.filter(([start, end]) => start > killedAt && end > backAt);
      const spanned = result.calls.filter(([start, end]) =>
        start < backAt && end > backAt && end - start > 0.2
      );
      assert.ok(result.calls.length > 20, `${result.calls.length} calls`);
      assert.ok(spanned.length >= 1, "no call waited through the restart");
      assert.ok(waited.length >= 1);
      // The create before the restart and its retry after it (same request_id): one ioeventfd.
      assert.equal(result.ids.length, 2);
      assert.equal(result.ids[1], result.ids[0]);
    } finally {
      await source.kill();
    }

    const control = await probeAcrossRestart(false, null);
    const unavailable = control.result.calls.filter((c) => c[2] === "UNAVAILABLE");
    assert.ok(unavailable.length >= 1, "without the config, the restart is seen as UNAVAILABLE");
  },
);
