// The most recent committed events, so that a watcher that lost its stream (a restart of its
// client, a cut-off for reading too slowly) can resume from the last revision it saw instead
// of taking a new snapshot. Bounded by count and by an estimate of the bytes the events keep
// alive (a removed registration lives on here); what falls out means "take a snapshot".
import type { Registration, RegistryEvent } from "./registration.ts";

export const HISTORY_EVENTS = 8192;
export const HISTORY_BYTES = 8 << 20;

/** Roughly what one event keeps alive: the registration and its labels. */
function approxBytes(r: Registration): number {
  let n = 256;
  for (const [k, v] of Object.entries(r.spec.labels)) n += 2 * (k.length + v.length) + 64;
  return n;
}

export class WatchHistory {
  readonly #events: { event: RegistryEvent; bytes: number }[] = [];
  #head = 0;
  #bytes = 0;
  /** Every change after this revision is held (revisions may skip: an undone change). */
  #floor = 0n;

  constructor(readonly maxEvents = HISTORY_EVENTS, readonly maxBytes = HISTORY_BYTES) {}

  /** History starts at `revision` (the agent's, after its replay): nothing before is held. */
  startAt(revision: bigint): void {
    this.#events.length = 0;
    this.#head = 0;
    this.#bytes = 0;
    this.#floor = revision;
  }

  record(event: RegistryEvent): void {
    const bytes = approxBytes(event.registration);
    this.#events.push({ event, bytes });
    this.#bytes += bytes;
    while (
      this.#events.length - this.#head > this.maxEvents ||
      (this.#bytes > this.maxBytes && this.#events.length - this.#head > 1)
    ) {
      this.#bytes -= this.#events[this.#head].bytes;
      this.#floor = this.#events[this.#head].event.revision;
      this.#head++;
    }
    // Compact now and then instead of shifting on every event.
    if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
      this.#events.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /**
   * Every kept event after `revision`, in order; null when some of them are no longer kept
   * (or `revision` is from after `current`, which no agent with this journal issued).
   */
  since(revision: bigint, current: bigint): RegistryEvent[] | null {
    if (revision > current || revision < this.#floor) return null;
    const out: RegistryEvent[] = [];
    for (let i = this.#head; i < this.#events.length; i++) {
      const e = this.#events[i].event;
      if (e.revision > revision) out.push(e);
    }
    return out;
  }
}
