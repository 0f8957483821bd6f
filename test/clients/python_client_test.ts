// The Python example client (clients/python/example.py, on the stubs `deno task clients`
// generates) against a live agent, run by Debian's python3 with python3-grpcio: it creates
// idempotently (the same request_id twice: one ioeventfd), reads a rejection's ErrorInfo,
// watches, and deletes, seeing the removal on its watch.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { GPU, type TestAgent } from "../support/agent.ts";
import { startCliAgent } from "../support/ioeventctl.ts";
import { SourceProcess } from "../support/source_process.ts";
import { PYTHON, python } from "./python.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
Deno.test("python3-grpcio is there (test/setup.sh)", () => {
  const r = spawnSync(PYTHON, ["-c", "import grpc"], { encoding: "utf8" });
  assert.equal(r.status, 0, `run test/setup.sh: ${r.stderr}`);
});

Deno.test(
  "the Python example creates, reads a rejection's ErrorInfo, watches and deletes",
  opts,
  async () => {
    let t: TestAgent | null = null;
    const source = await SourceProcess.start(1);
    try {
      t = await startCliAgent();
      const address = t.agent.server.bound.find((a) => a.startsWith("unix:"))!;
      const r = await python("example.py", [
        "--address",
        address,
        "--device",
        GPU,
        "--pid",
        String(source.pid),
        "--fd",
        String(source.fds[0]),
        "--owner",
        "vm-python",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const step = (name: string) => r.lines.find((l) => l.step === name)!;
      assert.equal(step("info").ready, true);
      assert.equal(step("watch").type, "SNAPSHOT");
      const created = step("create");
      assert.match(String(created.id), /^ioe-/);
      assert.equal(created.retried_id, created.id, "the same request_id gives the same one");
      assert.deepEqual(step("rejection"), {
        step: "rejection",
        code: "ALREADY_EXISTS",
        reason: "DUPLICATE",
        domain: "ioeventd.v1",
        metadata: step("rejection").metadata,
      });
      assert.deepEqual(step("event"), { step: "event", type: "ADDED", id: created.id });
      assert.deepEqual(step("delete"), {
        step: "delete",
        id: created.id,
        retry: "NOT_FOUND",
        event: "REMOVED",
        cause: "REQUEST",
      });
      assert.equal((await t.client.list({ owner: "vm-python" })).ioeventfds.length, 0);
    } finally {
      await t?.stop();
      await source.kill();
    }
  },
);
