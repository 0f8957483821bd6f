// The agent as `deno task start` runs it: exactly the permission flags of deno.json's start
// task (never --allow-all), on a simulated host with an mTLS listener. It serves, arms a
// write (FFI, pidfd_getfd), enforces the policy, exports its metrics, and on a real SIGHUP
// serves a rotated certificate to new connections.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { AgentClient } from "../../service/cli/client.ts";
import { simulatedSysfsRoot } from "../../service/config.ts";
import { defaultConfig } from "../../service/config.ts";
import { clientCredentials } from "../../service/security/tls.ts";
import { GPU, removeDir, tempDir } from "../support/agent.ts";
import { waitForBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";
import { makePki } from "./certs.ts";
import { CLIENTS, POLICY, refusal, rotateServerCertificate, servedSerial } from "./fixture.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** deno.json's start task: the environment it sets (VAR=value …), then `deno run …`. */
function startTask(): { env: Record<string, string>; words: string[] } {
  const deno = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
    tasks: { start: { command: string } };
  };
  const all = deno.tasks.start.command.trim().split(/\s+/);
  const at = all.indexOf("deno");
  const words = all.slice(at);
  assert.deepEqual(words.slice(0, 2), ["deno", "run"]);
  assert.ok(words.includes("service/main.ts"), "the start task runs service/main.ts");
  const env = Object.fromEntries(
    all.slice(0, at).map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)]),
  );
  return { env, words };
}

function startTaskWords(): string[] {
  return startTask().words;
}

/** The flags between `deno run` and the script in deno.json's start task. */
export function startTaskFlags(): string[] {
  const words = startTaskWords();
  return words.slice(2, words.indexOf("service/main.ts"));
}

/** The agent's own arguments in the start task (after the script). */
function startTaskArgs(): string[] {
  const words = startTaskWords();
  return words.slice(words.indexOf("service/main.ts") + 1);
}

interface Started {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  waitFor(msg: string): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function start(args: string[]): Started {
  const argv = ["run", ...startTaskFlags(), "service/main.ts", ...startTaskArgs(), ...args];
  const child = spawn(Deno.execPath(), argv, {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "pipe"],
    env: { ...Deno.env.toObject(), ...startTask().env, IOEVENTD_SYSFS_ROOTS: "" },
  });
  const logs: Record<string, unknown>[] = [];
  const waiting: [string, (l: Record<string, unknown>) => void][] = [];
  let text = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    text += chunk;
    const lines = text.split("\n");
    text = lines.pop()!;
    for (const line of lines.filter(Boolean)) {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = { msg: line };
      }
      logs.push(parsed);
      for (const [msg, resolve] of waiting) if (parsed.msg === msg) resolve(parsed);
    }
  });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return {
    child,
    logs,
    exited,
    waitFor: (msg) => {
      const seen = logs.find((l) => l.msg === msg);
      if (seen) return Promise.resolve(seen);
      return Promise.race([
        new Promise<Record<string, unknown>>((r) => waiting.push([msg, r])),
        exited.then((code) => {
          throw new Error(
            `agent exited (${code}):\n${logs.map((l) => JSON.stringify(l)).join("\n")}`,
          );
        }),
      ]);
    },
  };
}

Deno.test("the start task's flags are narrow: no --allow-all, no --allow-run, FFI and sys scoped", () => {
  const flags = startTaskFlags();
  assert.ok(!flags.includes("--allow-all") && !flags.includes("-A"), flags.join(" "));
  assert.ok(flags.includes("--allow-ffi=native/target/release/libioeventd_native.so"));
  assert.ok(!flags.some((f) => f === "--allow-run" || f.startsWith("--allow-run=")));
  assert.ok(flags.includes("--allow-sys=hostname,uid"));
});

Deno.test(
  "the agent runs with exactly the start task's flags: serves, arms, enforces, reloads on SIGHUP",
  opts,
  async () => {
    const dir = tempDir("ioeventd-perm-");
    const pki = makePki(dir, CLIENTS, CLIENTS.admin);
    const policy = join(dir, "policy.json");
    writeFileSync(policy, JSON.stringify(POLICY));
    const socket = `unix://${join(dir, "run", "ioeventd.sock")}`;
    const agent = start([
      ...["--state-dir", dir, "--metrics-listen", "127.0.0.1:0"],
      ...["--listen", socket, "--listen", "127.0.0.1:0"],
      ...["--tls-cert", pki.server.cert, "--tls-key", pki.server.key, "--tls-ca", pki.ca],
      ...["--policy", policy],
    ]);
    const src = await SourceProcess.start(1);
    const clients: AgentClient[] = [];
    try {
      const serving = await agent.waitFor("ioeventd serving");
      const tcp = (serving.listen as string[]).find((a) => !a.startsWith("unix:"))!;
      const tlsAddress = tcp.replace("127.0.0.1", "localhost");
      const local = new AgentClient(socket);
      const viewer = new AgentClient(
        tlsAddress,
        clientCredentials({ ca: pki.ca, ...pki.clients.viewer }),
      );
      clients.push(local, viewer);

      const info = await local.info();
      assert.equal(info.ready, true);
      assert.ok(info.hostname.length > 0);
      const made = await local.create({
        owner: "vm-a",
        spec: {
          device: GPU,
          bar: 0,
          offset: "4096",
          width: 4,
          data: "305419896",
          source: { pid: src.pid, fd: src.fds[0] },
        },
      });
      assert.equal(made.state, "ARMED");
      await src.signal(0);
      const config = { ...defaultConfig(dir) };
      await waitForBar(join(simulatedSysfsRoot(config), GPU, "resource0"), 4096, 4, 0x12345678n);

      assert.equal((await viewer.listAll()).length, 1);
      const denied = await refusal(viewer.delete({ id: made.id }));
      assert.equal(denied.code, grpc.status.PERMISSION_DENIED);

      const before = await servedSerial({ tlsAddress, pki });
      const after = rotateServerCertificate({ pki }, "sighup");
      assert.notEqual(after, before);
      Deno.kill(agent.child.pid!, "SIGHUP"); // (Deno's ChildProcess.kill sends only once)
      const reload = await agent.waitFor("security reload");
      assert.equal(reload.ok, true, JSON.stringify(reload));
      assert.equal(await servedSerial({ tlsAddress, pki }), after);
      assert.equal((await viewer.listDevices()).length, 2, "the open connection still works");

      const metrics = await (await fetch(`http://${serving.metrics}/metrics`)).text();
      assert.match(
        metrics,
        /ioeventd_security_refused_total\{method="DeleteIoeventfd",kind="ROLE"\} 1/,
      );
      assert.match(metrics, /ioeventd_security_reloads_total\{result="ok"\} 1/);
      // Deno keeps TypeScript out of /proc under these flags; the plugin reads the process's
      // figures instead, so the dashboard's file-descriptor and thread panels have data.
      const sample = (name: string) =>
        Number(metrics.match(new RegExp(`^${name} (\\d+)`, "m"))?.[1]);
      assert.ok(sample("process_open_fds") > 3, "process_open_fds has a sample");
      assert.ok(sample("process_threads") >= 2, "process_threads has a sample");
      assert.ok(sample("process_max_fds") > 0, "process_max_fds has a sample");
      const audit = readFileSync(join(dir, "audit.jsonl"), "utf8").trim().split("\n");
      assert.equal(audit.length, 2);

      for (const c of clients) c.close();
      clients.length = 0;
      Deno.kill(agent.child.pid!, "SIGTERM");
      assert.equal(await agent.exited, 0);
      const denials = agent.logs.filter((l) =>
        /NotCapable|PermissionDenied/.test(JSON.stringify(l))
      );
      assert.deepEqual(denials, [], "no permission was missing");
    } finally {
      for (const c of clients) c.close();
      if (agent.child.exitCode === null) Deno.kill(agent.child.pid!, "SIGKILL");
      await agent.exited;
      await src.kill();
      removeDir(dir);
    }
  },
);
