// The metrics HTTP endpoint: /metrics, /healthz and /readyz, on its own and in a real agent.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { MetricsHttpServer, parseListen } from "../../service/metrics/http.ts";
import { startAgent } from "../support/agent.ts";
import { parseExposition, select, value } from "./exposition.ts";
import { requireTool } from "./prometheus_server.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("parseListen accepts host:port, [v6]:port and :port", () => {
  assert.deepEqual(parseListen("127.0.0.1:9464"), { hostname: "127.0.0.1", port: 9464 });
  assert.deepEqual(parseListen("[::1]:0"), { hostname: "::1", port: 0 });
  assert.deepEqual(parseListen(":9464"), { hostname: "0.0.0.0", port: 9464 });
  assert.throws(() => parseListen("9464"), /host:port/);
  assert.throws(() => parseListen("localhost:99999"), /host:port/);
});

Deno.test(
  "healthz is always 200, readyz follows readiness, other paths and methods refused",
  opts,
  async () => {
    let ready = false;
    const server = MetricsHttpServer.start("127.0.0.1:0", {
      metrics: () => Promise.resolve("# HELP x X.\n# TYPE x gauge\nx 1\n"),
      contentType: "text/plain; version=0.0.4; charset=utf-8",
      ready: () => ready,
    });
    const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;
    const get = async (path: string, init?: RequestInit) => {
      const res = await fetch(url(path), init);
      return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
    };
    try {
      assert.ok(server.port > 0);
      assert.equal((await get("/healthz")).status, 200);
      assert.equal((await get("/readyz")).status, 503);
      ready = true;
      assert.equal((await get("/readyz")).status, 200);
      const metrics = await get("/metrics");
      assert.equal(metrics.status, 200);
      assert.equal(metrics.type, "text/plain; version=0.0.4; charset=utf-8");
      assert.match(metrics.body, /^x 1$/m);
      assert.equal((await get("/nope")).status, 404);
      assert.equal((await get("/metrics", { method: "POST", body: "x" })).status, 405);
    } finally {
      await server.close();
    }
    await assert.rejects(fetch(url("/healthz")));
  },
);

Deno.test(
  "an agent serves metrics that promtool accepts, with help, types and zeroed RPC series",
  opts,
  async () => {
    const promtool = requireTool("promtool");
    const t = await startAgent({ metricsListen: "127.0.0.1:0" });
    const url = (path: string) => `http://127.0.0.1:${t.agent.metricsHttp!.port}${path}`;
    try {
      assert.equal((await fetch(url("/readyz"))).status, 200);
      assert.equal((await fetch(url("/healthz"))).status, 200);
      await t.client.info();
      const first = await (await fetch(url("/metrics"))).text();
      const lint = spawnSync(promtool, ["check", "metrics"], { input: first, encoding: "utf8" });
      assert.equal(lint.status, 0, `promtool check metrics:\n${lint.stdout}${lint.stderr}`);

      const e = parseExposition(await (await fetch(url("/metrics"))).text());
      for (const [name, f] of e.families) {
        assert.ok(f.help.length > 10, `${name} has no help text`);
        assert.ok(["counter", "gauge", "histogram"].includes(f.type), `${name}: ${f.type}`);
        if (f.type === "counter") assert.match(name, /_total$/);
      }
      // prom-client's default Node.js metrics read wrong under Deno: none is exported.
      assert.equal([...e.families.keys()].filter((n) => n.startsWith("nodejs_")).length, 0);
      for (
        const name of [
          "ioeventd_build_info",
          "ioeventd_ready",
          "ioeventd_rearm_duration_seconds",
          "ioeventd_engine_alive",
          "ioeventd_scrape_duration_seconds",
          "ioeventd_devices",
          "process_cpu_seconds_total",
          "process_resident_memory_bytes",
          "process_open_fds",
          "process_start_time_seconds",
        ]
      ) {
        assert.ok(select(e, name).length > 0, `${name} missing`);
      }
      assert.equal(value(e, "ioeventd_ready"), 1);
      assert.equal(value(e, "ioeventd_engine_alive"), 1);
      assert.equal(value(e, "ioeventd_devices", { state: "managed" }), 2);
      assert.equal(select(e, "ioeventd_ioeventfd_info").length, 0, "per-ioeventfd is opt-in");
      assert.ok(value(e, "ioeventd_rearm_duration_seconds") > 0);
      assert.ok(value(e, "process_open_fds") > 3);
      const start = value(e, "process_start_time_seconds");
      assert.ok(Math.abs(start - Date.now() / 1000) < 600, `start time ${start}`);

      // Every method of the API and of health, every status code, from the start.
      const handled = select(e, "grpc_server_handled_total", {
        grpc_service: "ioeventd.v1.IoeventfdService",
      });
      const methods = new Set(handled.map((s) => s.labels.grpc_method));
      assert.ok(
        methods.has("CreateIoeventfd") && methods.has("WatchIoeventfds"),
        [...methods].join(),
      );
      assert.equal(handled.length, methods.size * 17);
      assert.equal(
        value(e, "grpc_server_handled_total", { grpc_method: "GetAgentInfo", grpc_code: "OK" }),
        1,
      );
      assert.equal(
        value(e, "grpc_server_started_total", {
          grpc_method: "WatchIoeventfds",
          grpc_type: "server_stream",
        }),
        0,
      );
      assert.equal(
        value(e, "grpc_server_handled_total", {
          grpc_service: "grpc.health.v1.Health",
          grpc_method: "Check",
          grpc_code: "OK",
        }),
        0,
      );
      assert.equal(select(e, "ioeventd_registrations_rejected_total").length >= 20, true);
      assert.equal(value(e, "ioeventd_registrations_removed_total", { cause: "source_exit" }), 0);
    } finally {
      await t.stop();
    }
    await assert.rejects(fetch(url("/healthz")), "the endpoint closes with the agent");
  },
);

Deno.test('metricsListen "" serves nothing', opts, async () => {
  const t = await startAgent({ metricsListen: "" });
  try {
    assert.equal(t.agent.metricsHttp, null);
  } finally {
    await t.stop();
  }
});
