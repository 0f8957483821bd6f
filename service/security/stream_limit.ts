// Concurrent streaming calls (watches) per identity: each holds a subscription in the
// registry until it ends, so one caller opening thousands would grow the agent's memory
// and its per-change work. Past the limit a new stream is refused with LIMIT_REACHED.

export class StreamLimiter {
  readonly #open = new Map<string, number>();

  /** `max` 0 disables the limit. */
  constructor(readonly max: number) {}

  /** A slot for `key`, as its release function (safe to call twice), or null when full. */
  acquire(key: string): (() => void) | null {
    const n = this.#open.get(key) ?? 0;
    if (this.max > 0 && n >= this.max) return null;
    this.#open.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left > 0) this.#open.set(key, left);
      else this.#open.delete(key);
    };
  }

  open(key: string): number {
    return this.#open.get(key) ?? 0;
  }
}
