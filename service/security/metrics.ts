// The security layer's counters as Prometheus metrics, read at scrape time like the
// control-plane ones (service/metrics/). Label values are bounded: method names and kinds.
import type { Registry as PromRegistry } from "prom-client";
import { type Sample, scalar, SnapshotMetric } from "../metrics/snapshot_metric.ts";
import type { SecurityCounters } from "./counters.ts";

export function registerSecurityMetrics(registry: PromRegistry, counters: SecurityCounters): void {
  new SnapshotMetric(
    "ioeventd_security_refused_total",
    "Calls the security layer refused before any handler ran, by method and kind: NO_ROLE, " +
      "ROLE, OWNER, DEVICE, NEEDS_FILTER (PERMISSION_DENIED), RATE_LIMITED, STREAM_LIMIT " +
      "(RESOURCE_EXHAUSTED), UNVERIFIED.",
    "counter",
    () =>
      counters.refusals().map((r): Sample => ({
        value: r.count,
        labels: { method: r.method, kind: r.kind },
      })),
  ).registerIn(registry);
  scalar(
    "ioeventd_audit_write_failures_total",
    "Audit lines that could not be written (the mutation itself went ahead; see the log).",
    "counter",
    () => counters.auditFailures,
  ).registerIn(registry);
  const reloads: Sample[] = [
    { value: 0, labels: { result: "ok" } },
    { value: 0, labels: { result: "failed" } },
  ];
  new SnapshotMetric(
    "ioeventd_security_reloads_total",
    "SIGHUP reloads of certificates and policy, by result (failed: the previous ones stay).",
    "counter",
    () => {
      reloads[0].value = counters.reloads.ok;
      reloads[1].value = counters.reloads.failed;
      return reloads;
    },
  ).registerIn(registry);
}
