// The agent's own start-up, as an operator sees it on stderr: a taken port is named, and every
// line is one JSON object (the inventory's warnings too).
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { removeDir, tempDir } from "../support/agent.ts";

const MAIN = fileURLToPath(new URL("../../service/main.ts", import.meta.url));
const opts = { sanitizeOps: false, sanitizeResources: false };

interface Run {
  code: number;
  lines: Record<string, unknown>[];
}

/** Runs the agent until it exits, or until `until` is logged (then SIGTERM). */
async function runAgent(args: string[], until?: string): Promise<Run> {
  const stateDir = tempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "--state-dir", stateDir, ...args],
    env: { IOEVENTD_SYSFS_ROOTS: "" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const raw: string[] = [];
  let text = "";
  const decoder = new TextDecoder();
  try {
    for await (const chunk of child.stderr) {
      text += decoder.decode(chunk, { stream: true });
      const parts = text.split("\n");
      text = parts.pop()!;
      raw.push(...parts.filter(Boolean));
      if (until && parts.some((l) => l.includes(`"msg":"${until}"`))) {
        child.kill("SIGTERM");
      }
    }
    if (text) raw.push(text);
    const { code } = await child.status;
    const lines = raw.map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        assert.fail(`a line of the log is not JSON: ${line}`);
      }
    });
    return { code, lines };
  } finally {
    removeDir(stateDir);
  }
}

function failure(run: Run): string {
  assert.equal(run.code, 1, JSON.stringify(run.lines));
  const error = run.lines.find((l) => l.msg === "ioeventd failed to start");
  assert.ok(error, JSON.stringify(run.lines));
  return String(error.error);
}

Deno.test("start-up: a taken metrics port is named in the error", opts, async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const address = `127.0.0.1:${taken.addr.port}`;
  const error = failure(await runAgent(["--metrics-listen", address]));
  assert.match(error, new RegExp(`^metrics listener ${address}: address already in use`));
});

Deno.test("start-up: a taken gRPC port is named in the error", opts, async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const address = `127.0.0.1:${taken.addr.port}`;
  const error = failure(
    await runAgent(["--metrics-listen", "", "--listen", address, "--allow-insecure-tcp"]),
  );
  assert.match(error, new RegExp(`^gRPC listener ${address}: address already in use`));
});

Deno.test(
  "start-up: every line on stderr is JSON, the inventory's warnings too",
  opts,
  async () => {
    const missing = join(tempDir(), "sys", "bus", "pci", "devices");
    const run = await runAgent(
      ["--metrics-listen", "", "--simulate", "--sysfs-root", missing],
      "ioeventd serving",
    );
    assert.equal(run.code, 0, JSON.stringify(run.lines));
    const warning = run.lines.find((l) => l.msg === "cannot read a sysfs root");
    assert.ok(warning, JSON.stringify(run.lines));
    assert.equal(warning.level, "warn");
    assert.equal(warning.root, missing);
    const serving = run.lines.find((l) => l.msg === "ioeventd serving")!;
    assert.equal(serving.simulated_host, true);
  },
);
