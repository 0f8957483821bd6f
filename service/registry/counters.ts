// The registry's counters for metrics: monotonic, never reset while the agent runs.
import type { Reason } from "../rejection/rejection.ts";
import type { RemovalCause } from "./registration.ts";

/** Monotonic counters for metrics; never reset while the agent runs. */
export class RegistryCounters {
  created = 0;
  readonly rejected = new Map<Reason, number>();
  readonly removed = new Map<RemovalCause, number>();
  readonly orphaned = { total: 0 };
  readonly replayDropped = new Map<string, number>();
  /** NEEDS_SOURCE registrations armed again by a hand-over. */
  rearmedByHandover = 0;
}

export function increment<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}
