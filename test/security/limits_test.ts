// Limits on everything a caller can grow, each refused with RESOURCE_EXHAUSTED and changing
// nothing: request rate per identity, concurrent streams per identity, message size, and
// registrations per owner and per device.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import type { CreateIoeventfdRequest } from "../../service/api/generated/ioeventd/v1/CreateIoeventfdRequest.ts";
import type { IoeventfdEvent__Output } from "../../service/api/generated/ioeventd/v1/IoeventfdEvent.ts";
import type { AgentClient } from "../../service/cli/client.ts";
import { RateLimiter } from "../../service/security/rate_limit.ts";
import { StreamLimiter } from "../../service/security/stream_limit.ts";
import { GPU, NIC, startAgent } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";
import { refusal, startSecureAgent } from "./fixture.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function req(src: SourceProcess, i: number, owner: string, device = GPU): CreateIoeventfdRequest {
  return {
    owner,
    spec: {
      device,
      bar: 0,
      offset: String(0x2000 + 4 * i),
      width: 4,
      data: "7",
      source: { pid: src.pid, fd: src.fds[i] },
    },
  };
}

Deno.test("rate limit: a token bucket per identity", () => {
  let now = 0;
  const r = new RateLimiter(10, 3, () => now);
  assert.deepEqual([r.take("a"), r.take("a"), r.take("a"), r.take("a")], [true, true, true, false]);
  assert.equal(r.take("b"), true, "each identity has its own bucket");
  assert.equal(r.retryAfterMs("a"), 100);
  now = 100;
  assert.deepEqual([r.take("a"), r.take("a")], [true, false]);
  now = 10_000;
  assert.deepEqual([r.take("a"), r.take("a"), r.take("a"), r.take("a")], [true, true, true, false]);
  const off = new RateLimiter(0, 1, () => now);
  for (let i = 0; i < 100; i++) assert.equal(off.take("a"), true);
});

Deno.test("stream limit: slots per identity, released once", () => {
  const s = new StreamLimiter(2);
  const a = s.acquire("x")!;
  const b = s.acquire("x")!;
  assert.equal(s.acquire("x"), null);
  assert.ok(s.acquire("y"));
  a();
  a(); // twice is once
  assert.equal(s.open("x"), 1);
  assert.ok(s.acquire("x"));
  b();
});

Deno.test(
  "rate limit: past the burst, RESOURCE_EXHAUSTED (RATE_LIMITED) before the request is read",
  opts,
  async () => {
    // 1 per second: the three calls below cannot earn a token back unless they take a second.
    const t = await startAgent({
      rateLimitPerSecond: 1,
      rateLimitBurst: 3,
      unlimitedIdentities: [],
    });
    const src = await SourceProcess.start(1);
    try {
      for (let i = 0; i < 3; i++) await t.client.listDevices();
      const revision = t.agent.registry.revision;
      const r = await refusal(t.client.create(req(src, 0, "vm-a")));
      assert.equal(r.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(r.reason, "RATE_LIMITED");
      assert.equal(r.metadata.identity, "local");
      assert.ok(Number(r.metadata.retry_after_ms) > 0);
      assert.equal(t.agent.registry.revision, revision);
      await new Promise((res) => setTimeout(res, Number(r.metadata.retry_after_ms) + 20));
      assert.equal((await t.client.create(req(src, 0, "vm-a"))).state, "ARMED");
      assert.equal(t.agent.security.counters.total("RATE_LIMITED"), 1);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

function openWatch(
  client: AgentClient,
): Promise<grpc.ClientReadableStream<IoeventfdEvent__Output>> {
  return new Promise((resolve, reject) => {
    const call = client.watch({}, () => resolve(call), reject);
  });
}

Deno.test(
  "stream limit: concurrent watches per identity; a closed one frees its slot",
  opts,
  async () => {
    const t = await startAgent({ maxStreamsPerIdentity: 2, unlimitedIdentities: [] });
    try {
      const a = await openWatch(t.client);
      await openWatch(t.client);
      const r = await refusal(openWatch(t.client));
      assert.equal(r.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(r.reason, "LIMIT_REACHED");
      assert.match(r.details, /local already has 2 open streams/);
      a.cancel();
      let reopened = false;
      for (let i = 0; i < 50 && !reopened; i++) {
        await new Promise((res) => setTimeout(res, 20));
        reopened = await openWatch(t.client).then((c) => (c.cancel(), true), () => false);
      }
      assert.ok(reopened, "the cancelled watch's slot is free again");
    } finally {
      await t.stop();
    }
  },
);

Deno.test(
  "limits: the local socket is exempt from rate and stream limits by default; others are not",
  opts,
  async () => {
    const t = await startSecureAgent({
      rateLimitPerSecond: 2,
      rateLimitBurst: 2,
      maxStreamsPerIdentity: 1,
    });
    try {
      for (let i = 0; i < 10; i++) await t.client.listDevices();
      const watches = [await openWatch(t.client), await openWatch(t.client)];
      for (const w of watches) w.cancel();
      const viewer = t.as("viewer");
      await viewer.listDevices();
      await viewer.listDevices();
      assert.equal((await refusal(viewer.listDevices())).reason, "RATE_LIMITED");
    } finally {
      await t.stop();
    }
  },
);

Deno.test("message size: a request over maxMessageBytes is RESOURCE_EXHAUSTED", opts, async () => {
  const t = await startAgent({ maxMessageBytes: 16 * 1024 });
  try {
    const desired = Array.from({ length: 100 }, (_, i) => ({
      device: GPU,
      offset: String(i * 4),
      width: 4,
      labels: { note: "x".repeat(200) },
    }));
    const r = await refusal(t.client.reconcile({ owner: "vm-a", desired }));
    assert.equal(r.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(t.agent.registry.size, 0);
    assert.equal((await t.client.info()).ready, true);
  } finally {
    await t.stop();
  }
});

Deno.test(
  "registrations: per owner and per device limits (LIMIT_REACHED, RESOURCE_EXHAUSTED)",
  opts,
  async () => {
    const t = await startAgent({ maxPerOwner: 2, maxPerDevice: 3 });
    const src = await SourceProcess.start(6);
    try {
      await t.client.create(req(src, 0, "vm-a"));
      await t.client.create(req(src, 1, "vm-a"));
      const owner = await refusal(t.client.create(req(src, 2, "vm-a")));
      assert.equal(owner.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(owner.reason, "LIMIT_REACHED");
      assert.match(owner.details, /owner vm-a already has the maximum of 2/);
      await t.client.create(req(src, 2, "vm-b"));
      const device = await refusal(t.client.create(req(src, 3, "vm-c")));
      assert.equal(device.reason, "LIMIT_REACHED");
      assert.match(device.details, /device 0000:65:00.0 already has the maximum of 3/);
      await t.client.create(req(src, 3, "vm-c", NIC)); // another device still has room
      assert.equal(t.agent.registry.size, 4);
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);
