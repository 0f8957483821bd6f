// The source binding (#17): a caller names only the processes its binding covers, the agent
// never takes its own descriptors, and a refusal never names another tenant's ioeventfd.
// Each test is one repro of the security run, against a running agent, with real processes.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { Policy } from "../../service/security/policy.ts";
import { createEventfd } from "../../service/native/engine.ts";
import { GPU, startAgent } from "../support/agent.ts";
import { ctl } from "../support/ioeventctl.ts";
import { NATIVE_BIN, SourceProcess } from "../support/source_process.ts";
import { refusal } from "../handover/vmm.ts";
import { POLICY, startSecureAgent, TEST_USER } from "./fixture.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function req(owner: string, pid: number, fd: number, offset = 0x88704) {
  return {
    owner,
    spec: { device: GPU, bar: 0, offset: String(offset), width: 4, data: "1", source: { pid, fd } },
  };
}

/** A process of another user holding one eventfd (setpriv, util-linux). */
async function foreignSource(uid: number): Promise<{ pid: number; fd: number; kill(): void }> {
  const child = spawn("setpriv", [
    `--reuid=${uid}`,
    `--regid=${uid}`,
    "--clear-groups",
    NATIVE_BIN + "ioeventd-test-source",
    "1",
  ], { stdio: ["pipe", "pipe", "inherit"] });
  const first = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout! }).once("line", resolve)
  );
  const hello = JSON.parse(first) as { pid: number; fds: number[] };
  return { pid: hello.pid, fd: hello.fds[0], kill: () => child.kill("SIGKILL") };
}

Deno.test(
  "binding: the agent's own eventfds (control, canary) are never sources",
  opts,
  async () => {
    const t = await startAgent();
    const own = createEventfd(); // an eventfd of the agent's process
    try {
      const err = await t.client.create(req("vm-a", Deno.pid, own)).then(() => null, (e) => e);
      assert.equal(refusal(err).reason, "SOURCE_ACCESS_DENIED");
      assert.equal(refusal(err).field, "spec.source");
      assert.equal((await t.client.list({})).ioeventfds.length, 0);
    } finally {
      await t.stop();
    }
  },
);

Deno.test("binding: a Unix-socket caller names only its own process tree", opts, async () => {
  const t = await startAgent();
  const src = await SourceProcess.start(1); // a child of this process: not of the CLI below
  try {
    // ioeventctl is its own process: the source is its sibling, outside its tree.
    const r = await ctl(
      t.agent.server.bound[0],
      "create",
      "--device",
      GPU,
      "--bar",
      "0",
      "--offset",
      "0x88704",
      "--width",
      "4",
      "--data",
      "1",
      "--pid",
      String(src.pid),
      "--fd",
      String(src.fds[0]),
      "--owner",
      "vm-a",
    );
    assert.notEqual(r.code, 0);
    assert.match(r.out + r.err, /SOURCE_ACCESS_DENIED/);
    assert.equal((await t.client.list({})).ioeventfds.length, 0);
    // The source's own parent (this process, the in-process agent's caller) may.
    assert.equal((await t.client.create(req("vm-a", src.pid, src.fds[0]))).state, "ARMED");
  } finally {
    await src.kill();
    await t.stop();
  }
});

Deno.test("binding: loopback plaintext TCP: another user's eventfd is refused", opts, async () => {
  const t = await startAgent({ listen: ["127.0.0.1:0"], allowInsecureTcp: true });
  const other = await foreignSource(65534);
  try {
    // The caller is root (uid 0, from /proc/net/tcp); the source belongs to nobody.
    const err = await t.client.create(req("vm-a", other.pid, other.fd)).then(() => null, (e) => e);
    assert.equal(refusal(err).reason, "SOURCE_ACCESS_DENIED");
    assert.match(refusal(err).message, /its own uid's processes/);
    assert.equal((await t.client.list({})).ioeventfds.length, 0);
  } finally {
    other.kill();
    await t.stop();
  }
});

Deno.test("binding: mTLS callers name no process unless the policy binds them", opts, async () => {
  const policy = {
    identities: [
      ...POLICY.identities.filter((e) => e.identity !== "CN=operator-1"),
      { identity: "CN=operator-1", role: "operator" as const }, // no `sources`
    ],
    // Tenant A's VMMs live in tenant A's cgroup, whoever asks.
    ownerSources: [{ owner: "tenant-a-*", sources: { cgroups: ["/tenant-a.slice/"] } }],
  };
  const t = await startSecureAgent({}, policy);
  const src = await SourceProcess.start(2);
  try {
    const unbound = await t.as("operator").create(req("vm-b", src.pid, src.fds[0]))
      .then(() => null, (e) => e);
    assert.equal(refusal(unbound).reason, "SOURCE_ACCESS_DENIED");
    assert.match(refusal(unbound).message, /may name only no process/);
    // The owner-restricted operator (tenant-a-*, uids of the test user) arming a process
    // outside tenant A's cgroup: refused by the owner's binding.
    const cross = await t.as("restricted").create(req("tenant-a-vm1", src.pid, src.fds[1]))
      .then(() => null, (e) => e);
    assert.equal(refusal(cross).reason, "SOURCE_ACCESS_DENIED");
    assert.match(refusal(cross).message, /sources of owner tenant-a-vm1 must be/);
    assert.equal((await t.as("admin").list({})).ioeventfds.length, 0);
  } finally {
    await src.kill();
    await t.stop();
  }
});

Deno.test("binding: a DUPLICATE does not name another tenant's registration", opts, async () => {
  const t = await startSecureAgent();
  const src = await SourceProcess.start(2);
  try {
    const theirs = await t.as("operator").create(req("tenant-b-vm1", src.pid, src.fds[0]));
    const err = await t.as("restricted").create(req("tenant-a-vm1", src.pid, src.fds[1]))
      .then(() => null, (e) => e);
    assert.equal(refusal(err).reason, "DUPLICATE");
    assert.doesNotMatch(refusal(err).message, new RegExp(theirs.id));
    assert.equal(JSON.stringify(err.metadata.getMap()).includes(theirs.id), false);
    // The same call by a caller that may see tenant B gets the id.
    const seen = await t.as("operator").create(req("tenant-a-vm1", src.pid, src.fds[1]))
      .then(() => null, (e) => e);
    assert.match(refusal(seen).message, new RegExp(theirs.id));
  } finally {
    await src.kill();
    await t.stop();
  }
});

Deno.test("binding: policy files name rules per identity and per owner", () => {
  assert.throws(
    () =>
      Policy.parse(JSON.stringify({
        identities: [{ identity: "local", role: "admin", sources: { bogus: 1, uids: ["x"] } }],
        ownerSources: [{ owner: "", sources: {} }],
      })),
    (e: Error) =>
      /identities\[0\]\.sources: unknown key bogus/.test(e.message) &&
      /identities\[0\]\.sources\.uids must be a list of uids/.test(e.message) &&
      /ownerSources\[0\]\.owner must be/.test(e.message),
  );
  const p = Policy.parse(JSON.stringify({
    identities: [{ identity: "CN=a", role: "operator", sources: TEST_USER }],
    ownerSources: [{ owner: "tenant-a-*", sources: { cgroups: ["/kubepods.slice/pod-a/"] } }],
  }));
  assert.deepEqual(p.grants[0].sources, TEST_USER);
  assert.equal(p.ownerSources[0].owner, "tenant-a-*");
});
