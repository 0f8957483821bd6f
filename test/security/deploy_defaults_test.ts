// Safe deployment defaults (#17): no shipped manifest leaves the API open to every peer as
// admin. The DaemonSet's plaintext TCP listener comes with the shipped node-local policy,
// under which a plaintext caller is a viewer: a real agent with the DaemonSet's policy
// refuses its create, and the node-local socket still arms.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { AgentClient } from "../../service/cli/client.ts";
import { Policy } from "../../service/security/policy.ts";
import { GPU, startAgent } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const opts = { sanitizeOps: false, sanitizeResources: false };

function daemonSetArgs(): string[] {
  const text = readFileSync(join(REPO, "deploy/kubernetes/daemonset.yaml"), "utf8");
  return [...text.matchAll(/^\s+- (--[a-z-]+(?:=\S*)?)\s*$/gm)].map((m) => m[1]);
}

Deno.test("deploy defaults: the DaemonSet's plaintext listener is read-only", opts, async () => {
  const args = daemonSetArgs();
  const policyArg = args.find((a) => a.startsWith("--policy="));
  assert.ok(args.includes("--allow-insecure-tcp") ? policyArg : true, "plaintext needs a policy");
  const path = join(REPO, policyArg!.slice("--policy=".length));
  const policy = Policy.load(path);
  const insecure = policy.grantFor({
    transport: "insecure",
    names: ["insecure"],
    name: "insecure",
  });
  assert.equal(insecure?.role, "viewer");
  assert.ok(args.some((a) => a.startsWith("--handover-socket=")));

  const t = await startAgent({
    listen: [`unix://${join(Deno.makeTempDirSync(), "s.sock")}`, "127.0.0.1:0"],
    allowInsecureTcp: true,
    policyFile: path,
  });
  const src = await SourceProcess.start(1);
  const tcp = new AgentClient(t.agent.server.bound[1]);
  const req = {
    owner: "vm-a",
    spec: {
      device: GPU,
      bar: 0,
      offset: String(0x88704),
      width: 4,
      data: "1",
      source: { pid: src.pid, fd: src.fds[0] },
    },
  };
  try {
    assert.ok((await tcp.info()).version); // fleet status works
    const err = await tcp.create(req).then(() => null, (e) => e as grpc.ServiceError);
    assert.equal(err?.code, grpc.status.PERMISSION_DENIED);
    assert.equal((await t.client.create(req)).state, "ARMED"); // the node-local socket
  } finally {
    tcp.close();
    await src.kill();
    await t.stop();
  }
});
