// Reload (what SIGHUP does): a rotated server certificate reaches new connections while an
// open one keeps working; a broken file keeps the running certificate; the policy file is
// read again. (The real signal, on a separate agent process: permissions_test.ts.)
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { copyFileSync, writeFileSync } from "node:fs";
import { GPU } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";
import { normalSerial, serialOf } from "./certs.ts";
import {
  POLICY,
  refusal,
  rotateServerCertificate,
  servedSerial,
  startSecureAgent,
} from "./fixture.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "reload: new connections get the rotated certificate; an open connection keeps working",
  opts,
  async () => {
    const t = await startSecureAgent();
    const src = await SourceProcess.start(1);
    try {
      const before = serialOf(t.pki.server.cert);
      assert.equal(await servedSerial(t), before);
      const open = t.as("viewer");
      // A watch stream lives exactly as long as its connection: it proves the connection
      // made with the old certificate survives the reload.
      const events: string[] = [];
      const errors: grpc.ServiceError[] = [];
      const watch = open.watch({}, (e) => events.push(e.type), (e) => errors.push(e));
      while (events.length === 0) await new Promise((r) => setTimeout(r, 10));

      const after = rotateServerCertificate(t, "rotated");
      assert.notEqual(after, before);
      assert.equal(await servedSerial(t), before, "nothing changes before the reload");
      const report = t.agent.reload();
      assert.equal(report.ok, true, report.errors.join("; "));
      assert.equal(normalSerial(report.tls!.serial), after);

      assert.equal(await servedSerial(t), after);
      await t.client.create({
        owner: "vm-a",
        spec: {
          device: GPU,
          bar: 0,
          offset: "512",
          width: 4,
          data: "1",
          source: { pid: src.pid, fd: src.fds[0] },
        },
      });
      while (events.length < 2) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(events, ["SNAPSHOT", "ADDED"]);
      assert.deepEqual(errors, []);
      watch.cancel();
      assert.equal((await open.listDevices()).length, 2);
      const fresh = t.as("admin");
      assert.equal((await fresh.listDevices()).length, 2);
      assert.equal(t.agent.security.counters.reloads.ok, 1);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test(
  "reload: a broken certificate or policy keeps the running one, and says why",
  opts,
  async () => {
    const t = await startSecureAgent();
    try {
      const serial = serialOf(t.pki.server.cert);
      // A key that does not match the certificate: the usual half-done rotation.
      copyFileSync(t.pki.clients.viewer.key, t.pki.server.key);
      writeFileSync(t.policyPath, "{ not json");
      const report = t.agent.reload();
      assert.equal(report.ok, false);
      assert.equal(report.errors.length, 2);
      assert.match(report.errors[0], /tls\.key .*does not belong to the certificate/);
      assert.match(report.errors[1], /not JSON/);
      assert.equal(await servedSerial(t), serial);
      assert.equal((await t.as("operator").listDevices()).length, 2);
      assert.equal(t.agent.security.counters.reloads.failed, 1);
    } finally {
      await t.stop();
    }
  },
);

Deno.test("reload: the policy file is read again", opts, async () => {
  const t = await startSecureAgent();
  const src = await SourceProcess.start(1);
  try {
    const viewer = t.as("viewer");
    const req = {
      owner: "vm-a",
      spec: {
        device: GPU,
        bar: 0,
        offset: "256",
        width: 4,
        data: "1",
        source: { pid: src.pid, fd: src.fds[0] },
      },
    };
    assert.equal((await refusal(viewer.create(req))).code, grpc.status.PERMISSION_DENIED);
    writeFileSync(
      t.policyPath,
      JSON.stringify({
        identities: POLICY.identities.map((e) =>
          e.identity === "CN=viewer-1" ? { ...e, role: "operator" } : e
        ),
      }),
    );
    assert.equal(t.agent.reload().ok, true);
    assert.equal((await viewer.create(req)).state, "ARMED"); // same connection
  } finally {
    await src.kill();
    await t.stop();
  }
});
