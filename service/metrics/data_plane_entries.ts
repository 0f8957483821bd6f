// What the data-plane metrics keep per registration and per (device, BAR): counts that never
// go back when a registration is removed or orphaned, and the samples each scrape fills.
import type { RegistrationStats } from "../native/engine.ts";
import type { Registration } from "../registry/registry.ts";
import type { OwnerSeries } from "./owners.ts";
import type { Sample } from "./snapshot_metric.ts";

export interface Counts {
  triggers: number;
  signals: number;
  /** Unix ns of the last write; 0 if none. */
  lastNs: number;
}

export const zero = (): Counts => ({ triggers: 0, signals: 0, lastNs: 0 });

export function addInto(into: Counts, c: Counts): void {
  into.triggers += c.triggers;
  into.signals += c.signals;
  if (c.lastNs > into.lastNs) into.lastNs = c.lastNs;
}

/** Counters of one (device, BAR), monotonic across removals. */
export interface Series {
  /** What removed registrations of this (device, BAR) had counted. */
  gone: Counts;
  /** Recomputed each scrape: gone + every live registration. */
  total: Counts;
  triggers: Sample;
  signals: Sample;
  last: Sample;
}

export interface PerIoeventfd {
  triggers: Sample;
  signals: Sample;
  last: Sample;
  info: Sample;
}

/** An orphan cause as a bounded label value. */
export function orphanCauseLabel(cause: string | undefined): string {
  return cause && /^[A-Z][A-Z0-9_]{0,63}$/.test(cause) ? cause : "UNKNOWN";
}

/** One registration the metrics know about. */
export interface Entry {
  state: Registration["state"];
  orphanCause: string | undefined;
  device: string;
  owner: string;
  ownerSeries: OwnerSeries;
  nativeId: bigint | null;
  series: Series;
  /** Counts of native registrations this entry no longer has (it was orphaned). */
  base: Counts;
  /** Counts of its current native registration, as of the last scrape. */
  live: Counts;
  detail: PerIoeventfd | null;
}

export interface DeviceGauges {
  armed: Sample;
  orphaned: Sample;
  limit: Sample;
  armedCount: number;
  orphanedCount: number;
}

export function setCounts(into: Counts, s: RegistrationStats): void {
  into.triggers = Number(s.triggers);
  into.signals = Number(s.signals);
  into.lastNs = Number(s.lastTriggerNs);
}
