// Control-plane metrics: what the registry accepted, refused and removed, read from its
// monotonic counters (RegistryCounters) at scrape time. Every known label value is present
// from the start at 0, so rate() and increase() see the first event.
import type { Registry as PromRegistry } from "prom-client";
import { REASONS } from "../rejection/rejection.ts";
import type { JournalHealth, RegistryCounters, RemovalCause } from "../registry/registry.ts";
import { type Sample, scalar, SnapshotMetric } from "./snapshot_metric.ts";

const CAUSES: readonly RemovalCause[] = ["REQUEST", "RECONCILE", "SOURCE_EXIT"];

/** Reasons the journal replay drops an entry for, besides the API's rejection reasons. */
const REPLAY_REASONS = ["PID_REUSED", "FD_REPLACED"];

/** Replay reasons are API constants, or an engine error's text: keep label values bounded. */
export function replayReasonLabel(reason: string): string {
  return /^[A-Z][A-Z0-9_]{0,63}$/.test(reason) ? reason : "ENGINE_FAILURE";
}

/** Samples for a counter map, one per label value, created once and kept. */
function labelled(
  label: string,
  initial: readonly string[],
  read: () => Iterable<[string, number]>,
  toLabel: (key: string) => string = (k) => k,
): () => Sample[] {
  const samples = new Map<string, Sample>();
  for (const v of initial) samples.set(v, { value: 0, labels: { [label]: v } });
  return () => {
    for (const s of samples.values()) s.value = 0;
    for (const [key, n] of read()) {
      const value = toLabel(key);
      let s = samples.get(value);
      if (!s) samples.set(value, s = { value: 0, labels: { [label]: value } });
      s.value += n;
    }
    return [...samples.values()];
  };
}

export function registerControlPlaneMetrics(
  registry: PromRegistry,
  counters: () => RegistryCounters | null,
): void {
  const none: [string, number][] = [];
  scalar(
    "ioeventd_registrations_created_total",
    "ioeventfds created (CreateIoeventfd and ReconcileOwner); journal replays not included.",
    "counter",
    () => counters()?.created ?? 0,
  ).registerIn(registry);
  new SnapshotMetric(
    "ioeventd_registrations_rejected_total",
    "DEPRECATED, removed after 0.2: use ioeventd_requests_rejected_total{grpc_method, " +
      "reason}. Creates, reconciles and deletes the registry refused, by ErrorInfo reason; " +
      "NOT_FOUND is a delete of an id or key that names nothing (e.g. a retried delete).",
    "counter",
    labelled("reason", Object.keys(REASONS), () => counters()?.rejected ?? none),
  ).registerIn(registry);
  new SnapshotMetric(
    "ioeventd_registrations_removed_total",
    "ioeventfds removed, by cause: request (DeleteIoeventfd), reconcile (ReconcileOwner) or " +
      "source_exit (the process owning the eventfd exited).",
    "counter",
    labelled(
      "cause",
      CAUSES.map((c) => c.toLowerCase()),
      () => counters()?.removed ?? none,
      (c) => c.toLowerCase(),
    ),
  ).registerIn(registry);
  scalar(
    "ioeventd_registrations_orphaned_total",
    "ioeventfds that stopped writing because their device disappeared or stopped being managed.",
    "counter",
    () => counters()?.orphaned.total ?? 0,
  ).registerIn(registry);
  new SnapshotMetric(
    "ioeventd_replay_dropped_total",
    "Journaled ioeventfds the start-up replay could not re-arm and dropped, by reason " +
      "(e.g. PID_REUSED: the source process is gone and its PID now names another).",
    "counter",
    labelled(
      "reason",
      REPLAY_REASONS,
      () => counters()?.replayDropped ?? none,
      replayReasonLabel,
    ),
  ).registerIn(registry);
}

/** Causes a failed journal commit is counted by (journal.ts journalFailureCause). */
export const JOURNAL_FAILURE_CAUSES = [
  "disk_full",
  "read_only",
  "io_error",
  "corrupt",
  "cannot_open",
  "busy",
  "other",
];

/** Whether the journal takes commits; why it did not (see deploy/runbooks/). */
export function registerJournalMetrics(
  registry: PromRegistry,
  health: () => JournalHealth | null,
): void {
  scalar(
    "ioeventd_journal_available",
    "1 while the journal takes commits; 0 while they fail (disk full, read-only, I/O " +
      "error): creates are refused with JOURNAL_UNAVAILABLE, reads and armed ioeventfds work.",
    "gauge",
    () => (health()?.available ?? true) ? 1 : 0,
  ).registerIn(registry);
  new SnapshotMetric(
    "ioeventd_journal_commit_failures_total",
    "Journal commits that failed, by cause (disk_full, read_only, io_error, corrupt, …).",
    "counter",
    labelled("cause", JOURNAL_FAILURE_CAUSES, () => health()?.failures ?? []),
  ).registerIn(registry);
  scalar(
    "ioeventd_journal_pending_removals",
    "Removals in effect (disarmed) that wait for the journal to take writes again.",
    "gauge",
    () => health()?.carried ?? 0,
  ).registerIn(registry);
}
