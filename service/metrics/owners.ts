// Per-owner series: which VM rings. An owner is the VM (or tenant) an ioeventfd belongs to;
// a host runs a bounded number of them, but nothing in the API stops a caller from inventing
// owners, so the series are capped: the first MAX_OWNER_SERIES owners present at a time get
// series of their own, every further owner counts under owner="__other__" (for as long as it
// holds ioeventfds), and ioeventd_owner_series_overflow_total counts each such owner. An owner
// whose last ioeventfd is removed keeps its series for one more scrape (its final counts),
// then frees its slot; it starts again from 0 if it comes back (a counter reset to
// Prometheus, which rate() handles).
import type { Registry as PromRegistry } from "prom-client";
import { type Sample, scalar, SnapshotMetric } from "./snapshot_metric.ts";

/** Owners with series of their own at one time (README, Metrics). */
export const MAX_OWNER_SERIES = 256;
/** The owner label of everything past the cap (an owner really named so counts there too). */
export const OTHER_OWNER = "__other__";

export interface OwnerCounts {
  triggers: number;
  signals: number;
}

/** One owner label value's series. */
export interface OwnerSeries {
  readonly owner: string;
  /** What removed ioeventfds of this series had counted. */
  readonly gone: OwnerCounts;
  /** Recomputed each scrape: gone + every live ioeventfd of the series. */
  readonly total: OwnerCounts;
  /** ioeventfds counted in this series now. */
  ioeventfds: number;
  readonly samples: { triggers: Sample; signals: Sample; ioeventfds: Sample };
}

interface OwnerRef {
  series: OwnerSeries;
  ioeventfds: number;
}

function newSeries(owner: string): OwnerSeries {
  const labels = { owner };
  return {
    owner,
    gone: { triggers: 0, signals: 0 },
    total: { triggers: 0, signals: 0 },
    ioeventfds: 0,
    samples: {
      triggers: { value: 0, labels },
      signals: { value: 0, labels },
      ioeventfds: { value: 0, labels },
    },
  };
}

export class OwnerSeriesTable {
  readonly #owners = new Map<string, OwnerRef>();
  /** Series rendered, in the order they were made; `__other__` always. */
  readonly #series = new Map<string, OwnerSeries>();
  /** Named series whose owner left: shown once more with their final counts, then dropped. */
  readonly #leaving = new Map<OwnerSeries, boolean>();
  readonly #other = newSeries(OTHER_OWNER);
  #overflow = 0;

  constructor(readonly cap: number = MAX_OWNER_SERIES) {
    this.#series.set(OTHER_OWNER, this.#other);
  }

  /** Owners that counted under `__other__` because `cap` others had series. */
  get overflow(): number {
    return this.#overflow;
  }

  /** Named owner series now (not counting `__other__`). */
  get named(): number {
    return this.#series.size - 1;
  }

  /** The series an ioeventfd of `owner` counts in from now on. */
  acquire(owner: string): OwnerSeries {
    let ref = this.#owners.get(owner);
    if (!ref) {
      let series = owner === OTHER_OWNER ? this.#other : this.#series.get(owner);
      if (series) {
        this.#leaving.delete(series); // came back before its slot was freed
      } else if (this.named < this.cap) {
        series = newSeries(owner);
        this.#series.set(owner, series);
      } else {
        series = this.#other;
        this.#overflow++;
      }
      ref = { series, ioeventfds: 0 };
      this.#owners.set(owner, ref);
    }
    ref.ioeventfds++;
    ref.series.ioeventfds++;
    return ref.series;
  }

  /** An ioeventfd of `owner` is gone; `counts` is what it counted, kept in its series. */
  release(owner: string, counts: OwnerCounts): void {
    const ref = this.#owners.get(owner);
    if (!ref) return;
    ref.series.gone.triggers += counts.triggers;
    ref.series.gone.signals += counts.signals;
    ref.series.ioeventfds--;
    if (--ref.ioeventfds > 0) return;
    this.#owners.delete(owner);
    if (ref.series !== this.#other) this.#leaving.set(ref.series, false);
  }

  /** Starts a scrape: frees the slots of owners already shown with their final counts. */
  beginScrape(): void {
    for (const [series, shown] of this.#leaving) {
      if (shown) {
        this.#leaving.delete(series);
        this.#series.delete(series.owner);
      } else {
        this.#leaving.set(series, true);
      }
    }
    for (const s of this.#series.values()) {
      s.total.triggers = s.gone.triggers;
      s.total.signals = s.gone.signals;
    }
  }

  /** Ends a scrape: the samples take the totals the live ioeventfds were added into. */
  endScrape(): void {
    for (const s of this.#series.values()) {
      s.samples.triggers.value = s.total.triggers;
      s.samples.signals.value = s.total.signals;
      s.samples.ioeventfds.value = s.ioeventfds;
    }
  }

  /** Registers the owner metrics, reading this table. */
  registerIn(registry: PromRegistry): void {
    const samples = (pick: (s: OwnerSeries) => Sample) => () =>
      [...this.#series.values()].map(pick);
    new SnapshotMetric(
      "ioeventd_owner_triggers_total",
      `Device writes performed by the ioeventfds of one owner (the VM). At most ${this.cap} ` +
        `owners have series of their own; the others count under owner="${OTHER_OWNER}".`,
      "counter",
      samples((s) => s.samples.triggers),
    ).registerIn(registry);
    new SnapshotMetric(
      "ioeventd_owner_signals_total",
      "Eventfd signals received by the ioeventfds of one owner (the VM); signals/triggers is " +
        `its coalescing ratio. Owners past the cap count under owner="${OTHER_OWNER}".`,
      "counter",
      samples((s) => s.samples.signals),
    ).registerIn(registry);
    new SnapshotMetric(
      "ioeventd_owner_ioeventfds",
      "ioeventfds registered for one owner (the VM), armed or orphaned. Owners past the cap " +
        `count under owner="${OTHER_OWNER}".`,
      "gauge",
      samples((s) => s.samples.ioeventfds),
    ).registerIn(registry);
    scalar(
      "ioeventd_owner_series_overflow_total",
      `Owners that got no series of their own because ${this.cap} other owners had one: ` +
        `their ioeventfds count under owner="${OTHER_OWNER}" while they hold any.`,
      "counter",
      () => this.#overflow,
    ).registerIn(registry);
    scalar(
      "ioeventd_owner_series_limit",
      "The most owners with series of their own (a constant of this agent build).",
      "gauge",
      () => this.cap,
    ).registerIn(registry);
  }
}
