// The /metrics exposition as scrapers ask for it: OpenMetrics when the Accept header prefers
// it (as Prometheus does), with trace-id exemplars on the RPC latency histogram when tracing
// is on; the Prometheus text format otherwise, without exemplars; gzip when Accept-Encoding
// allows it; and refused calls by method and reason (a delete of nothing is
// DeleteIoeventfd/NOT_FOUND, apart from creates' refusals).
import assert from "node:assert/strict";
import { request } from "node:http";
import { gunzipSync } from "node:zlib";
import { acceptsGzip, negotiate } from "../../service/metrics/http.ts";
import { GPU, startAgent, type TestAgent } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";
import { OtlpReceiver } from "../tracing/otlp_receiver.ts";
import { parseExposition, select, value } from "./exposition.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("Accept and Accept-Encoding negotiation", () => {
  // Prometheus 2.x's scrape header.
  const prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;" +
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
  assert.equal(negotiate(prometheus), "openmetrics");
  assert.equal(negotiate("application/openmetrics-text"), "openmetrics");
  assert.equal(negotiate(null), "prometheus");
  assert.equal(negotiate("*/*"), "prometheus");
  assert.equal(negotiate("text/plain;version=0.0.4"), "prometheus");
  assert.equal(negotiate("application/openmetrics-text;version=0.0.1"), "prometheus");
  assert.equal(negotiate("text/plain, application/openmetrics-text;q=0.5"), "prometheus");
  assert.equal(negotiate("application/openmetrics-text;q=0"), "prometheus");
  assert.ok(acceptsGzip("gzip"));
  assert.ok(acceptsGzip("br, gzip;q=0.5"));
  assert.ok(acceptsGzip("*"));
  assert.ok(!acceptsGzip("gzip;q=0"));
  assert.ok(!acceptsGzip("identity"));
  assert.ok(!acceptsGzip(null));
});

/** A raw GET (fetch would decompress): status, headers and the body's bytes. */
function get(
  port: number,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, string>; body: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/metrics", headers }, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (c: Uint8Array) => chunks.push(c));
      res.on("end", () => {
        const body = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of chunks) body.set(c, (at += c.length) - c.length);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers as Record<string, string>,
          body,
        });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

function hex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** Starts an agent with these environment variables set, as an operator would. */
async function startWithEnv(env: Record<string, string>): Promise<TestAgent> {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  try {
    return await startAgent({ metricsListen: "127.0.0.1:0" });
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
}

Deno.test(
  "OpenMetrics with trace-id exemplars, Prometheus text without, gzip when asked",
  opts,
  async () => {
    const receiver = new OtlpReceiver();
    const source = await SourceProcess.start(1);
    let t: TestAgent | null = null;
    try {
      t = await startWithEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_BSP_SCHEDULE_DELAY: "50",
      });
      const port = t.agent.metricsHttp!.port;
      const traceId = hex(16);
      const spec = {
        device: GPU,
        bar: 0,
        offset: "1024",
        width: 4,
        data: "1",
        source: { pid: source.pid, fd: source.fds[0] },
      };
      const created = await t.client.create({ owner: "vm-om", spec }, {
        metadata: { traceparent: `00-${traceId}-${hex(8)}-01` },
      });
      await assert.rejects(t.client.create({ owner: "vm-om", spec })); // DUPLICATE
      await t.client.delete({ id: created.id });
      await assert.rejects(t.client.delete({ id: created.id })); // NOT_FOUND: a retried delete
      await assert.rejects(t.client.delete({ id: created.id }));

      // OpenMetrics: the content type, counters as families without _total, samples with,
      // # EOF last, and the exemplar of the traced call on its latency bucket.
      const om = await get(port, { accept: "application/openmetrics-text;version=1.0.0" });
      assert.equal(om.status, 200);
      assert.equal(
        om.headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
      );
      const omText = new TextDecoder().decode(om.body);
      assert.ok(omText.endsWith("# EOF\n"), omText.slice(-50));
      assert.match(omText, /^# TYPE grpc_server_started counter$/m);
      assert.match(omText, /^grpc_server_started_total\{/m);
      assert.match(omText, /^# TYPE ioeventd_owner_triggers counter$/m);
      const exemplar = omText.split("\n").find((l) =>
        l.startsWith("grpc_server_handling_seconds_bucket{") &&
        l.includes('grpc_method="CreateIoeventfd"') && l.includes(`trace_id="${traceId}"`)
      );
      assert.ok(exemplar, "no exemplar with the caller's trace id");
      assert.match(exemplar, / # \{trace_id="[0-9a-f]{32}"\} [0-9.e-]+ [0-9.]+$/);

      // The Prometheus text format: what it always was, no exemplars.
      const text = await get(port, { accept: "text/plain;version=0.0.4" });
      assert.equal(text.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
      const body = new TextDecoder().decode(text.body);
      assert.ok(!body.includes("trace_id"));
      assert.ok(!body.includes("# EOF"));
      const e = parseExposition(body);
      const rejected = (grpc_method: string, reason: string) =>
        value(e, "ioeventd_requests_rejected_total", { grpc_method, reason });
      assert.equal(rejected("CreateIoeventfd", "DUPLICATE"), 1);
      assert.equal(rejected("DeleteIoeventfd", "NOT_FOUND"), 2);
      assert.equal(rejected("CreateIoeventfd", "NOT_FOUND"), 0);
      assert.equal(rejected("ReconcileOwner", "LIMIT_REACHED"), 0);
      // The deprecated series still counts both, for one release.
      assert.equal(value(e, "ioeventd_registrations_rejected_total", { reason: "DUPLICATE" }), 1);
      assert.equal(value(e, "ioeventd_registrations_rejected_total", { reason: "NOT_FOUND" }), 2);
      // vm-om's last ioeventfd went before the OpenMetrics scrape, which showed its final
      // counts; by this one its slot is free.
      assert.match(omText, /^ioeventd_owner_triggers_total\{owner="vm-om"\} 0$/m);
      assert.equal(select(e, "ioeventd_owner_triggers_total", { owner: "vm-om" }).length, 0);

      // gzip when asked: the same exposition, compressed.
      const gz = await get(port, { accept: "text/plain", "accept-encoding": "gzip" });
      assert.equal(gz.headers["content-encoding"], "gzip");
      assert.match(gz.headers["vary"], /accept-encoding/);
      const unzipped = new TextDecoder().decode(gunzipSync(gz.body));
      assert.match(unzipped, /^# TYPE ioeventd_requests_rejected_total counter$/m);
      assert.ok(gz.body.length < unzipped.length / 3, `${gz.body.length} of ${unzipped.length}`);
      const plain = await get(port, { accept: "text/plain", "accept-encoding": "identity" });
      assert.equal(plain.headers["content-encoding"], undefined);
    } finally {
      await t?.stop();
      await source.kill();
      await receiver.close();
    }
  },
);

Deno.test("without tracing, OpenMetrics carries no exemplars", opts, async () => {
  const t = await startAgent({ metricsListen: "127.0.0.1:0" });
  try {
    await t.client.info({ metadata: { traceparent: `00-${hex(16)}-${hex(8)}-01` } });
    const om = await get(t.agent.metricsHttp!.port, { accept: "application/openmetrics-text" });
    const text = new TextDecoder().decode(om.body);
    assert.ok(text.endsWith("# EOF\n"));
    assert.ok(!text.includes("trace_id"));
  } finally {
    await t.stop();
  }
});
