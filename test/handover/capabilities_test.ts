// Which capabilities each intake needs, checked against a running agent: with
// CAP_SYS_PTRACE dropped (setpriv, util-linux), taking (pid, fd) with pidfd_getfd fails
// (SOURCE_ACCESS_DENIED) while the hand-over works: a deployment with hand-over only needs
// no CAP_SYS_PTRACE (and no hostPID).
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AgentClient } from "../../service/cli/client.ts";
import { followAgentLogs } from "../support/agent_logs.ts";
import { GPU, removeDir, tempDir } from "../support/agent.ts";
import { waitForBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";
import { HandoverVmm, refusal } from "./vmm.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const MAIN = fileURLToPath(new URL("../../service/main.ts", import.meta.url));

function capEff(pid: number): bigint {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return BigInt("0x" + /CapEff:\s*([0-9a-f]+)/.exec(status)![1]);
}

const CAP_SYS_PTRACE = 19n;

Deno.test(
  "capabilities: without CAP_SYS_PTRACE pid/fd taking fails, hand-over works",
  opts,
  async () => {
    const dir = tempDir("ioeventd-caps-");
    const child = new Deno.Command("setpriv", {
      args: [
        "--bounding-set=-sys_ptrace",
        "--inh-caps=-sys_ptrace",
        "--",
        Deno.execPath(),
        "run",
        "--allow-all",
        MAIN,
        "--state-dir",
        dir,
        "--metrics-listen",
        "",
        "--simulate",
      ],
      env: { IOEVENTD_SYSFS_ROOTS: "" },
      stdin: "null",
      stdout: "inherit",
      stderr: "piped",
    }).spawn();
    const { serving } = followAgentLogs(child);
    await serving;
    const client = new AgentClient(`unix://${join(dir, "run", "ioeventd.sock")}`);
    const src = await SourceProcess.start(1);
    const vmm = await HandoverVmm.start(join(dir, "run", "handover.sock"), "vm-c", 1);
    try {
      // The agent's process (deno under setpriv: the same pid after exec) lacks the capability.
      assert.equal((capEff(child.pid) >> CAP_SYS_PTRACE) & 1n, 0n);
      const taken = await client.create({
        owner: "vm-c",
        spec: {
          device: GPU,
          bar: 0,
          offset: String(0x88704),
          width: 4,
          data: "1",
          source: { pid: src.pid, fd: src.fds[0] },
        },
      }).then(() => null, (e) => e);
      assert.equal(refusal(taken).reason, "SOURCE_ACCESS_DENIED");
      const handed = await client.create({
        owner: "vm-c",
        spec: {
          device: GPU,
          bar: 0,
          offset: String(0x88708),
          width: 4,
          data: String(0x77),
          source: { pid: 0, fd: 0, handle: vmm.handles[0] },
        },
      });
      assert.equal(handed.state, "ARMED");
      await vmm.signal(0);
      const bar = join(dir, "sim", "sys", "bus", "pci", "devices", GPU, "resource0");
      await waitForBar(bar, 0x88708, 4, 0x77n);
    } finally {
      await vmm.kill();
      await src.kill();
      client.close();
      Deno.kill(child.pid, "SIGTERM");
      await child.status;
      removeDir(dir);
    }
  },
);
