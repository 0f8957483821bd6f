// What the security layer refused, for metrics (service/security/metrics.ts exports them).
// Monotonic while the agent runs; keyed by bounded labels only (method names and denial
// kinds, never identities, which an issuing CA could multiply).
import type { DenialKind } from "./authorize.ts";

export type RefusalKind = DenialKind | "UNVERIFIED" | "RATE_LIMITED" | "STREAM_LIMIT";

export class SecurityCounters {
  /** `${method}\0${kind}` → calls refused. */
  readonly refused = new Map<string, number>();
  auditFailures = 0;
  readonly reloads = { ok: 0, failed: 0 };

  refuse(method: string, kind: RefusalKind): void {
    const key = `${method}\0${kind}`;
    this.refused.set(key, (this.refused.get(key) ?? 0) + 1);
  }

  /** Refusals as label pairs. */
  refusals(): { method: string; kind: RefusalKind; count: number }[] {
    return [...this.refused].map(([key, count]) => {
      const [method, kind] = key.split("\0") as [string, RefusalKind];
      return { method, kind, count };
    });
  }

  total(kind?: RefusalKind): number {
    return this.refusals().filter((r) => !kind || r.kind === kind)
      .reduce((n, r) => n + r.count, 0);
  }
}
