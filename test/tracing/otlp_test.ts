// A traced RPC reaches a local OTLP receiver as a server span of the caller's trace: its
// traceparent is honoured, and the span carries the RPC conventions and the device/owner.
import assert from "node:assert/strict";
import { GPU, startAgent, type TestAgent } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";
import { attributes, OtlpReceiver } from "./otlp_receiver.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const SERVICE = "ioeventd.v1.IoeventfdService";

/** Starts an agent with these environment variables set, as an operator would. */
async function startWithEnv(env: Record<string, string>): Promise<TestAgent> {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  try {
    return await startAgent();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
}

function hex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

Deno.test(
  "an RPC with a traceparent arrives at the OTLP receiver as a child span",
  opts,
  async () => {
    const receiver = new OtlpReceiver();
    const source = await SourceProcess.start(1);
    let t: TestAgent | null = null;
    try {
      t = await startWithEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_BSP_SCHEDULE_DELAY: "50",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test",
      });
      assert.notEqual(t.agent.tracing, null);
      const traceId = hex(16);
      const parentSpanId = hex(8);
      const created = await t.client.create({
        owner: "vm-traced",
        spec: {
          device: "65:00.0",
          bar: 0,
          offset: "0x400",
          width: 4,
          data: "1",
          source: { pid: source.pid, fd: source.fds[0] },
        },
      }, { metadata: { traceparent: `00-${traceId}-${parentSpanId}-01` } });
      await assert.rejects(t.client.get("ioe-0000000000000000"));

      const span = await receiver.span(`${SERVICE}/CreateIoeventfd`);
      assert.equal(span.traceId, traceId);
      assert.equal(span.parentSpanId, parentSpanId);
      assert.match(span.spanId, /^[0-9a-f]{16}$/);
      assert.notEqual(span.spanId, parentSpanId);
      assert.equal(span.kind, 2, "SPAN_KIND_SERVER");
      assert.deepEqual(attributes(span), {
        "rpc.system": "grpc",
        "rpc.service": SERVICE,
        "rpc.method": "CreateIoeventfd",
        "rpc.grpc.status_code": 0,
        "ioeventd.device": GPU,
        "ioeventd.owner": "vm-traced",
        "ioeventd.ioeventfd.id": created.id,
      });
      assert.equal(span.status?.code ?? 0, 0, "status unset on OK");
      assert.equal(span.resource["service.name"]?.stringValue, "ioeventd");
      assert.equal(span.resource["deployment.environment"]?.stringValue, "test");
      assert.equal(receiver.requests[0].contentType, "application/json");

      // Without a traceparent: a new trace. NOT_FOUND is the caller's error, not the server's.
      const missing = await receiver.span(`${SERVICE}/GetIoeventfd`);
      assert.notEqual(missing.traceId, traceId);
      assert.ok(!missing.parentSpanId, `unexpected parent ${missing.parentSpanId}`);
      const attrs = attributes(missing);
      assert.equal(attrs["rpc.grpc.status_code"], 5);
      assert.equal(attrs["ioeventd.ioeventfd.id"], "ioe-0000000000000000");
      assert.equal(missing.status?.code ?? 0, 0);

      // The caller decided not to sample (flags 00): the agent follows, nothing is exported.
      const unsampled = hex(16);
      await t.client.info({ metadata: { traceparent: `00-${unsampled}-${hex(8)}-00` } });
      await t.stop(); // flushes what is buffered
      assert.equal(receiver.spans.filter((s) => s.traceId === unsampled).length, 0);
    } finally {
      await t?.stop();
      await source.kill();
      await receiver.close();
    }
  },
);

Deno.test("without an OTLP endpoint there is no tracing at all", opts, async () => {
  const t = await startWithEnv({
    OTEL_SDK_DISABLED: "true",
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
  });
  try {
    assert.equal(t.agent.tracing, null);
    await t.client.info();
  } finally {
    await t.stop();
  }
});
