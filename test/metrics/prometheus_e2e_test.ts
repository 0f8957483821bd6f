// End to end: a real Prometheus scrapes a running agent whose ioeventfds a real child process
// signals a known number of times; what Prometheus stored must be exactly that. Then every
// PromQL expression of the dashboard and of the rules must evaluate on that Prometheus. The
// same Prometheus scrapes a simulated dcgm-exporter, so the DCGM-join rules are evaluated on
// what DCGM really writes (pci_bus_id "00000000:65:00.0", Hostname), and Prometheus asks for
// OpenMetrics, as it does by default: the agent must serve it.
import assert from "node:assert/strict";
import { dcgmPciBusId, nodeName } from "../../service/metrics/agent.ts";
import { GPU, startAgent, type TestAgent } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";
import { dashboardQueries, RULES } from "./dashboard_queries.ts";
import { PrometheusServer } from "./prometheus_server.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const ROUNDS = 20;
const BURST = 50;

function spec(source: SourceProcess, i: number, offset: number) {
  return {
    device: GPU,
    bar: 0,
    offset: String(offset),
    width: 4,
    data: String(i + 1),
    source: { pid: source.pid, fd: source.fds[i] },
  };
}

/** A dcgm-exporter as far as Prometheus sees one: DCGM_FI_DEV_GPU_UTIL of one GPU. */
function fakeDcgmExporter(pciBusId: string, hostname: string, util: number) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () =>
      new Response(
        [
          "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).",
          "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
          `DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-0781f3bb-da15-f334-d5db-37b3f19542d0",` +
          `pci_bus_id="${pciBusId}",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",` +
          `Hostname="${hostname}",DCGM_FI_DRIVER_VERSION="535.183.06"} ${util}`,
          "",
        ].join("\n"),
        { headers: { "content-type": "text/plain; version=0.0.4" } },
      ),
  );
  return { target: `127.0.0.1:${server.addr.port}`, stop: () => server.shutdown() };
}

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

Deno.test(
  "Prometheus scrapes exact trigger counts and latency; dashboard and rules evaluate",
  opts,
  async () => {
    let agent: TestAgent | null = null;
    let source: SourceProcess | null = null;
    let prometheus: PrometheusServer | null = null;
    const dcgm = fakeDcgmExporter(dcgmPciBusId(GPU), nodeName(), 40);
    try {
      agent = await startAgent({ metricsListen: "127.0.0.1:0", perIoeventfdMetrics: true });
      const t = agent;
      const target = `127.0.0.1:${t.agent.metricsHttp!.port}`;
      source = await SourceProcess.start(4);
      const src = source;
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        ids.push(
          (await t.client.create({ owner: "vm-e2e", spec: spec(src, i, 0x100 + 4 * i) })).id,
        );
      }

      prometheus = await PrometheusServer.start({
        job: "ioeventd",
        targets: [target],
        ruleFiles: [RULES],
        jobs: [{ job: "dcgm", targets: [dcgm.target] }],
      });
      const prom = prometheus;
      // The series exist at 0 before the first signal, so every later increment is seen.
      await prom.waitFor(`up{job="ioeventd"}`, (v) => v === 1);
      await prom.waitFor(`sum(ioeventd_triggers_total{device="${GPU}"})`, (v) => v === 0);

      // One signal at a time, each waited for: no coalescing, one write per signal.
      for (let round = 1; round <= ROUNDS; round++) {
        for (let i = 0; i < 3; i++) {
          await src.signal(i, 1);
          await until(
            `triggers of ${ids[i]}`,
            () => t.client.get(ids[i]),
            (r) => Number(r.triggers) === round,
          );
        }
      }
      // Signals pending when an ioeventfd is armed coalesce into one write: BURST signals, 1 write.
      await src.signal(3, BURST);
      ids.push((await t.client.create({ owner: "vm-e2e", spec: spec(src, 3, 0x10c) })).id);
      await until("burst", () => t.client.get(ids[3]), (r) => Number(r.triggers) === 1);
      assert.equal(Number((await t.client.get(ids[3])).signals), BURST);
      const triggers = 3 * ROUNDS + 1;

      // Removing one must not make the per-device counters go back.
      await t.client.delete({ id: ids[2] });
      // A refused request and its metrics.
      await assert.rejects(t.client.create({ owner: "vm-e2e", spec: spec(src, 0, 0x100) }));

      const signals = 3 * ROUNDS + BURST;
      await prom.waitFor(`sum(ioeventd_signals_total{device="${GPU}"})`, (v) => v === signals);
      await prom.waitFor(`ioeventd_ioeventfds{device="${GPU}", state="armed"}`, (v) => v === 3);
      assert.equal(
        await prom.value(`sum(ioeventd_triggers_total{job="ioeventd", device="${GPU}"})`),
        triggers,
      );
      assert.equal(await prom.value(`ioeventd_triggers_total{device="${GPU}", bar="0"}`), triggers);
      assert.ok((await prom.value(`sum(rate(ioeventd_triggers_total{device="${GPU}"}[1m]))`))! > 0);
      // Coalescing: more signals than writes.
      assert.equal(
        await prom.value(
          `sum(ioeventd_signals_total{device="${GPU}"}) / sum(ioeventd_triggers_total{device="${GPU}"})`,
        ),
        signals / triggers,
      );
      assert.equal(await prom.value(`ioeventd_ioeventfds_limit{device="${GPU}"}`), 1000);
      assert.equal(await prom.value(`count(ioeventd_ioeventfd_info{owner="vm-e2e"})`), 3);
      assert.equal(await prom.value(`sum(ioeventd_ioeventfd_signals_total)`), ROUNDS * 2 + BURST);

      // Latency: the canary feeds the dispatch histogram; buckets start at 1 µs, in seconds.
      assert.ok((await prom.value(`ioeventd_dispatch_latency_seconds_count`))! > 0);
      assert.notEqual(
        await prom.value(`ioeventd_dispatch_latency_seconds_bucket{le="1e-06"}`),
        null,
      );
      assert.equal(await prom.value(`ioeventd_dispatch_latency_seconds_bucket{le="5e-07"}`), null);
      const p99 = await prom.value(
        `histogram_quantile(0.99, sum by (le) (rate(ioeventd_dispatch_latency_seconds_bucket[1m])))`,
      );
      assert.ok(p99! > 0 && p99! <= 0.1, `dispatch p99 ${p99}`);
      assert.equal(
        await prom.value(
          `ioeventd_dispatch_latency_seconds_count - ignoring (le) ioeventd_dispatch_latency_seconds_bucket{le="+Inf"}`,
        ),
        0,
      );
      assert.ok((await prom.value(`ioeventd_write_duration_seconds_count`))! >= triggers);

      // Control plane.
      const handled = (method: string, code: string) =>
        `grpc_server_handled_total{grpc_service="ioeventd.v1.IoeventfdService", grpc_method="${method}", grpc_code="${code}"}`;
      assert.equal(await prom.value(handled("CreateIoeventfd", "OK")), 4);
      assert.equal(await prom.value(handled("CreateIoeventfd", "AlreadyExists")), 1);
      assert.equal(await prom.value(handled("DeleteIoeventfd", "NotFound")), 0);
      assert.equal(await prom.value(`ioeventd_registrations_created_total`), 4);
      assert.equal(
        await prom.value(`ioeventd_registrations_rejected_total{reason="DUPLICATE"}`),
        1,
      );
      assert.equal(await prom.value(`ioeventd_registrations_removed_total{cause="request"}`), 1);
      assert.equal(
        await prom.value(`ioeventd_registrations_removed_total{cause="source_exit"}`),
        0,
      );
      assert.equal(await prom.value(`ioeventd_ready`), 1);
      assert.equal(await prom.value(`ioeventd_engine_alive`), 1);
      assert.equal(await prom.value(`count(ioeventd_build_info)`), 1);
      assert.ok((await prom.value(`ioeventd_scrape_duration_seconds`))! > 0);

      // Every expression of the dashboard evaluates, and returns data.
      // Per owner (the VM), and the device's identity as DCGM names it.
      assert.equal(await prom.value(`ioeventd_owner_triggers_total{owner="vm-e2e"}`), triggers);
      assert.equal(await prom.value(`ioeventd_owner_signals_total{owner="vm-e2e"}`), signals);
      assert.equal(await prom.value(`ioeventd_owner_ioeventfds{owner="vm-e2e"}`), 3);
      assert.equal(await prom.value(`ioeventd_owner_triggers_total{owner="__other__"}`), 0);
      assert.equal(await prom.value(`ioeventd_owner_series_overflow_total`), 0);
      assert.equal(
        await prom.value(
          `count(ioeventd_device_info{device="${GPU}", pci_bus_id="00000000:65:00.0"})`,
        ),
        1,
      );
      assert.equal(
        await prom.value(
          `ioeventd_requests_rejected_total{grpc_method="CreateIoeventfd", reason="DUPLICATE"}`,
        ),
        1,
      );
      // The engine and the registry agree (the canary is not counted as a registration).
      assert.deepEqual(
        await prom.samples(
          `max by (instance) (ioeventd_engine_registrations) != on (instance) sum by (instance) (ioeventd_ioeventfds{state="armed"})`,
        ),
        [],
      );
      // Prometheus scraped OpenMetrics (its default Accept) without an error.
      for (const t of await prom.targets()) {
        assert.equal(t.health, "up", `${t.scrapePool}: ${t.lastError}`);
      }

      // The DCGM panel reads a rule built on another recorded rule: two evaluations.
      await prom.waitFor(`count(hostname_pci_bus_id_gpu:ioeventd_triggers:rate5m)`, (v) => v === 1);
      const queries = dashboardQueries({
        job: "ioeventd",
        cluster: ".*",
        instance: target,
        device: GPU,
        __rate_interval: "1m",
        __range: "5m",
        __interval: "5s",
      });
      assert.ok(queries.length >= 30, `only ${queries.length} dashboard queries found`);
      const empty: string[] = [];
      for (const q of queries) {
        const r = await prom.query(q.expr);
        assert.ok(r.ok, `${q.where}: ${q.expr}: ${r.ok ? "" : r.error}`);
        if (r.ok && r.result.length === 0 && !q.mayBeEmpty) empty.push(`${q.where}: ${q.expr}`);
      }
      assert.deepEqual(empty, [], "dashboard queries without data");

      // Every rule loaded, evaluated without error; recording rules return data.
      const rules = await prom.rules();
      assert.equal(rules.length, 32);
      await prom.waitFor(
        `count(instance:ioeventd_dispatch_slo_errors:ratio_rate6h)`,
        (v) => v === 1,
      );
      for (const rule of await prom.rules()) {
        assert.equal(rule.health, "ok", `${rule.name}: ${rule.lastError}`);
        const r = await prom.query(rule.query);
        assert.ok(r.ok, `${rule.name}: ${rule.query}: ${r.ok ? "" : r.error}`);
        if (!/^[A-Z]/.test(rule.name)) { // a recording rule, not an alert
          // Rules built on other recorded series get data one evaluation after them.
          await prom.waitFor(`count(${rule.name})`, (v) => v !== null && v > 0).catch(() => {
            assert.fail(`recording rule ${rule.name} has no data`);
          });
        }
      }
      assert.equal(await prom.value(`up{job="ioeventd"}`), 1);
      // The DCGM join: this GPU's doorbell rate, named by DCGM's gpu and UUID.
      const joined = await prom.samples(`hostname_pci_bus_id_gpu:ioeventd_triggers:rate5m`);
      assert.equal(joined.length, 1, JSON.stringify(joined));
      assert.equal(joined[0].metric.pci_bus_id, "00000000:65:00.0");
      assert.equal(joined[0].metric.hostname, nodeName());
      assert.equal(joined[0].metric.UUID, "GPU-0781f3bb-da15-f334-d5db-37b3f19542d0");
      assert.ok(Number(joined[0].value[1]) > 0);
      const perUtil = await prom.value(
        `hostname_pci_bus_id_gpu:ioeventd_triggers_per_gpu_util:ratio5m`,
      );
      const rate = await prom.value(
        `hostname_pci_bus_id:ioeventd_triggers:rate5m{pci_bus_id="00000000:65:00.0"}`,
      );
      assert.ok(Math.abs(perUtil! - rate! / 40) < 1e-9, `${perUtil} vs ${rate}/40`);
      assert.equal(
        await prom.value(`instance_device:ioeventd_ioeventfds:utilisation{device="${GPU}"}`),
        0.003,
      );
    } finally {
      await prometheus?.stop();
      await dcgm.stop();
      await source?.kill();
      await agent?.stop();
    }
  },
);
