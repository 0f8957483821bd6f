// The TypeScript example client (clients/typescript/example.ts, on the protoc-gen-es stubs
// and connect-es) against a live agent over TCP: idempotent create, ErrorInfo, delete.
import assert from "node:assert/strict";
import { GPU, type TestAgent } from "../support/agent.ts";
import { startCliAgent } from "../support/ioeventctl.ts";
import { SourceProcess } from "../support/source_process.ts";
import { CLIENTS } from "./python.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "the TypeScript example creates idempotently, reads ErrorInfo, deletes",
  opts,
  async () => {
    let t: TestAgent | null = null;
    const source = await SourceProcess.start(1);
    try {
      t = await startCliAgent({ listen: ["127.0.0.1:0"], allowInsecureTcp: true });
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          `${CLIENTS}typescript/example.ts`,
          "--address",
          t.agent.server.bound[0],
          "--device",
          GPU,
          "--pid",
          String(source.pid),
          "--fd",
          String(source.fds[0]),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const lines = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      const step = (s: string) => lines.find((l) => l.step === s);
      assert.equal(step("info").ready, true);
      assert.equal(step("create").retriedId, step("create").id);
      assert.deepEqual(step("rejection"), {
        step: "rejection",
        code: "AlreadyExists",
        reason: "DUPLICATE",
      });
      assert.equal(step("delete").id, step("create").id);
    } finally {
      await t?.stop();
      await source.kill();
    }
  },
);
