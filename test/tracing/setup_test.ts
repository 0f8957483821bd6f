// When tracing is on (standard OTEL_* variables only), and which request fields name the
// device, the owner and the ioeventfd of a span.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { silentLogger } from "../../service/log.ts";
import { messageAttributes } from "../../service/tracing/attributes.ts";
import { metadataGetter } from "../../service/tracing/interceptor.ts";
import { startTracing, tracingDisabledReason } from "../../service/tracing/setup.ts";

Deno.test("tracing is on only with an OTLP endpoint, and not disabled", async () => {
  const endpoint = "http://127.0.0.1:4318";
  assert.equal(tracingDisabledReason({}), "no OTLP endpoint");
  assert.equal(tracingDisabledReason({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }), null);
  assert.equal(
    tracingDisabledReason({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces` }),
    null,
  );
  assert.equal(
    tracingDisabledReason({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: "TRUE" }),
    "OTEL_SDK_DISABLED",
  );
  assert.equal(
    tracingDisabledReason({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: "false" }),
    null,
  );
  assert.match(
    tracingDisabledReason({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: "none" })!,
    /otlp/,
  );
  assert.equal(await startTracing(silentLogger, {}), null);
});

Deno.test("device, owner and id come from whichever field carries them", () => {
  assert.deepEqual(messageAttributes({ spec: { device: "65:00.0" }, owner: "vm-1" }), {
    "ioeventd.device": "0000:65:00.0",
    "ioeventd.owner": "vm-1",
  });
  assert.deepEqual(messageAttributes({ selector: "key", key: { device: "0000:66:00.0" } }), {
    "ioeventd.device": "0000:66:00.0",
  });
  assert.deepEqual(messageAttributes({ id: "ioe-1", device: "", owner: "" }), {
    "ioeventd.ioeventfd.id": "ioe-1",
  });
  assert.deepEqual(messageAttributes({ address: "not-an-address" }), {
    "ioeventd.device": "not-an-address",
  });
  assert.deepEqual(
    messageAttributes({ deleted: { id: "ioe-2", owner: "vm-2", spec: { device: "65:00.0" } } }),
    {
      "ioeventd.device": "0000:65:00.0",
      "ioeventd.owner": "vm-2",
      "ioeventd.ioeventfd.id": "ioe-2",
    },
  );
  assert.deepEqual(messageAttributes(null), {});
  assert.deepEqual(messageAttributes([1, 2]), {});
});

Deno.test("propagation headers are read from gRPC metadata", () => {
  const md = new grpc.Metadata();
  md.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  md.set("tracestate", "a=1");
  md.set("x-bin", Buffer.from([1]));
  assert.equal(
    metadataGetter.get(md, "traceparent"),
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
  );
  assert.equal(metadataGetter.get(md, "missing"), undefined);
  assert.equal(metadataGetter.get(md, "x-bin"), undefined);
  assert.deepEqual(metadataGetter.keys(md).sort(), ["traceparent", "tracestate", "x-bin"]);
});
