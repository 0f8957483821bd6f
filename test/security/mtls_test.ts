// mTLS and authorization through the real server: who is refused at the handshake, who is
// refused by the policy (PERMISSION_DENIED with the reason), and that a refusal changes
// nothing. Every mutation leaves one audit line; every refusal is counted in /metrics.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import type { CreateIoeventfdRequest } from "../../service/api/generated/ioeventd/v1/CreateIoeventfdRequest.ts";
import { AgentClient } from "../../service/cli/client.ts";
import { clientCredentials } from "../../service/security/tls.ts";
import { GPU, NIC } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";
import { refusal, startSecureAgent } from "./fixture.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function create(
  src: SourceProcess,
  i: number,
  owner: string,
  device = GPU,
): CreateIoeventfdRequest {
  return {
    owner,
    spec: {
      device,
      bar: 0,
      offset: String(0x1000 + 8 * i),
      width: 4,
      data: String(i),
      source: { pid: src.pid, fd: src.fds[i] },
    },
  };
}

Deno.test(
  "mTLS: no certificate, another CA's certificate and plaintext fail the handshake; a valid certificate without a role is PERMISSION_DENIED",
  opts,
  async () => {
    const t = await startSecureAgent();
    try {
      const ca = Buffer.from(readFileSync(t.pki.ca));
      const noCert = t.connect(grpc.credentials.createSsl(ca));
      const foreign = t.connect(clientCredentials({ ca: t.pki.ca, ...t.pki.foreign }));
      const plaintext = new AgentClient(t.tlsAddress);
      for (
        const [name, client] of [["no cert", noCert], ["other CA", foreign], [
          "plaintext",
          plaintext,
        ]] as const
      ) {
        const r = await refusal(client.info({ deadlineMs: 3000 }));
        assert.equal(r.code, grpc.status.UNAVAILABLE, `${name}: ${r.details}`);
        assert.equal(r.reason, "", `${name}: no handler may have answered`);
      }
      plaintext.close();
      // The foreign certificate names admin-1, which the policy makes admin: only the CA
      // is wrong, and that is enough.
      assert.match(readFileSync(t.pki.foreign.cert, "utf8"), /BEGIN CERTIFICATE/);

      const stranger = t.as("stranger");
      const r = await refusal(stranger.listDevices());
      assert.equal(r.code, grpc.status.PERMISSION_DENIED);
      assert.equal(r.reason, "PERMISSION_DENIED");
      assert.match(r.details, /CN=stranger has no role/);
      assert.equal(r.metadata.denial, "NO_ROLE");
      assert.equal(r.metadata.required_role, "viewer");
      // Health checks only need a verified certificate (load balancers probe with one).
      const admin = t.as("admin");
      assert.equal((await admin.info()).version.length > 0, true);
    } finally {
      await t.stop();
    }
  },
);

Deno.test(
  "authorization: a viewer reads and watches but cannot create, delete or reconcile; nothing changes",
  opts,
  async () => {
    const t = await startSecureAgent();
    const src = await SourceProcess.start(4);
    try {
      const operator = t.as("operator");
      const viewer = t.as("viewer");
      const made = await operator.create(create(src, 0, "vm-a"));
      assert.equal(made.state, "ARMED");
      const revision = t.agent.registry.revision;

      assert.equal((await viewer.listAll()).length, 1);
      assert.equal((await viewer.get(made.id)).id, made.id);
      assert.equal((await viewer.getDevice(GPU)).address, GPU);
      const snapshot = await new Promise<number>((resolve, reject) => {
        const call = viewer.watch({}, (e) => {
          call.cancel();
          resolve(e.snapshot.length);
        }, reject);
      });
      assert.equal(snapshot, 1);

      for (
        const [method, call] of [
          ["CreateIoeventfd", viewer.create(create(src, 1, "vm-a"))],
          ["DeleteIoeventfd", viewer.delete({ id: made.id })],
          ["ReconcileOwner", viewer.reconcile({ owner: "vm-a", desired: [] })],
        ] as const
      ) {
        const r = await refusal(call);
        assert.equal(r.code, grpc.status.PERMISSION_DENIED, method);
        assert.equal(r.reason, "PERMISSION_DENIED");
        assert.match(r.details, new RegExp(`CN=viewer-1 is viewer; ${method} needs operator`));
        assert.equal(r.metadata.denial, "ROLE");
      }
      assert.equal(t.agent.registry.revision, revision);
      assert.equal(t.agent.registry.size, 1);
      assert.equal(t.agent.engine.info().registrations, 1);

      // Counted in metrics, by method and kind.
      const text = await t.agent.metrics.registry.metrics();
      assert.match(
        text,
        /ioeventd_security_refused_total\{method="CreateIoeventfd",kind="ROLE"\} 1/,
      );
      // ...and audited: who, what, result.
      const denied = t.auditLines().filter((l) => l.identity === "CN=viewer-1");
      assert.deepEqual(denied.map((l) => [l.method, l.result, l.reason]), [
        ["CreateIoeventfd", "PERMISSION_DENIED", "PERMISSION_DENIED"],
        ["DeleteIoeventfd", "PERMISSION_DENIED", "PERMISSION_DENIED"],
        ["ReconcileOwner", "PERMISSION_DENIED", "PERMISSION_DENIED"],
      ]);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test(
  "authorization: an operator restricted to one owner cannot touch another owner's ioeventfds",
  opts,
  async () => {
    const t = await startSecureAgent();
    const src = await SourceProcess.start(8);
    try {
      const operator = t.as("operator");
      const restricted = t.as("restricted");
      const theirs = await operator.create(create(src, 0, "vm-b"));
      const mine = await restricted.create(create(src, 1, "vm-a"));
      await restricted.create(create(src, 2, "tenant-a-7")); // the prefix grant
      const revision = t.agent.registry.revision;
      const key = {
        device: GPU,
        bar: 0,
        offset: theirs.spec!.offset,
        width: 4,
        data: theirs.spec!.data,
      };
      const attempts: [string, Promise<unknown>, string][] = [
        ["create for vm-b", restricted.create(create(src, 3, "vm-b")), "OWNER"],
        ["delete by id", restricted.delete({ id: theirs.id }), "OWNER"],
        ["delete by key", restricted.delete({ key }), "OWNER"],
        ["get", restricted.get(theirs.id), "OWNER"],
        ["reconcile vm-b", restricted.reconcile({ owner: "vm-b", desired: [] }), "OWNER"],
        ["list everything", restricted.list({}), "NEEDS_FILTER"],
        ["list vm-b", restricted.list({ owner: "vm-b" }), "OWNER"],
      ];
      for (const [name, call, kind] of attempts) {
        const r = await refusal(call);
        assert.equal(r.code, grpc.status.PERMISSION_DENIED, name);
        assert.equal(r.metadata.denial, kind, name);
        assert.match(r.details, /URI:spiffe:\/\/test\/restricted|CN=restricted-1/, name);
      }
      const watchRefused = await new Promise<number>((resolve) => {
        const call = restricted.watch({}, () => resolve(-1), (e) => resolve(e.code));
        call.on("end", () => resolve(-2));
      });
      assert.equal(watchRefused, grpc.status.PERMISSION_DENIED);
      assert.equal(t.agent.registry.revision, revision, "no refusal changed anything");
      assert.ok(t.agent.registry.lookup({ id: theirs.id }), "theirs is still there");

      // What is theirs to do still works.
      const listed = await restricted.listAll({ owner: "vm-a" });
      assert.deepEqual(listed.map((i) => i.id), [mine.id]);
      await restricted.reconcile({ owner: "tenant-a-7", desired: [] });
      await restricted.delete({ id: mine.id });
      assert.equal(t.agent.registry.size, 1);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test(
  "authorization: an operator restricted to one device cannot use another",
  opts,
  async () => {
    const t = await startSecureAgent();
    const src = await SourceProcess.start(2);
    try {
      const gpuOnly = t.as("gpuonly");
      await gpuOnly.create(create(src, 0, "vm-a", GPU));
      const r = await refusal(gpuOnly.create(create(src, 1, "vm-a", NIC)));
      assert.equal(r.code, grpc.status.PERMISSION_DENIED);
      assert.equal(r.metadata.denial, "DEVICE");
      assert.match(r.details, /may not act on device 0000:66:00\.0/);
      // A reconcile that would remove its GPU entry is fine; one naming the NIC is not.
      const nic = await refusal(gpuOnly.reconcile({
        owner: "vm-a",
        desired: [create(src, 1, "vm-a", NIC).spec!],
      }));
      assert.equal(nic.metadata.denial, "DEVICE");
      assert.equal(t.agent.registry.size, 1);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test(
  "audit: every mutation is one JSON line with who, what and the result",
  opts,
  async () => {
    const t = await startSecureAgent();
    const src = await SourceProcess.start(3);
    try {
      const operator = t.as("operator");
      const made = await operator.create({ ...create(src, 0, "vm-a"), requestId: "r-1" });
      await refusal(
        operator.create({ ...create(src, 1, "vm-a"), spec: { device: GPU, width: 3 } }),
      );
      await operator.delete({ id: made.id });
      await t.client.reconcile({ owner: "vm-c", desired: [create(src, 2, "vm-c").spec!] });
      await operator.listAll(); // reads are not audited
      const lines = t.auditLines();
      assert.equal(lines.length, 4);
      const [created, rejected, deleted, reconciled] = lines;
      assert.equal(created.identity, "CN=operator-1");
      assert.equal(created.transport, "tls");
      assert.equal(created.role, "operator");
      assert.equal(created.method, "CreateIoeventfd");
      assert.equal(created.result, "OK");
      assert.deepEqual(created.added, [made.id]);
      assert.equal((created.request as { owner: string }).owner, "vm-a");
      assert.equal((created.request as { requestId: string }).requestId, "r-1");
      assert.match(String(created.peer), /^127\.0\.0\.1:\d+$/);
      assert.ok(!Number.isNaN(Date.parse(String(created.ts))));
      assert.equal(rejected.result, "INVALID_ARGUMENT");
      assert.equal(rejected.reason, "WIDTH_UNSUPPORTED");
      assert.deepEqual(deleted.removed, [made.id]);
      assert.equal(reconciled.identity, "local");
      assert.equal(reconciled.role, "admin");
      assert.equal((reconciled.added as string[]).length, 1);
      assert.equal(Deno.statSync(t.auditPath).mode! & 0o777, 0o600);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test(
  "the Unix socket is the local identity (admin by default); TLS listeners raise no warning",
  opts,
  async () => {
    const t = await startSecureAgent();
    try {
      const info = await t.client.info();
      assert.deepEqual(info.warnings, []);
      const grant = t.agent.security.policy.grantFor({
        transport: "local",
        names: ["local"],
        name: "local",
      });
      assert.equal(grant?.role, "admin");
    } finally {
      await t.stop();
    }
  },
);
