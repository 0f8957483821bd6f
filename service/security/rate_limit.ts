// Request rate per identity: a token bucket each (`perSecond` sustained, `burst` at once).
// Past it a call is refused with RATE_LIMITED (RESOURCE_EXHAUSTED) before it is decoded.

interface Bucket {
  tokens: number;
  atMs: number;
}

/** Idle buckets are dropped beyond this many identities, so the map cannot grow unbounded. */
const MAX_BUCKETS = 4096;

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();

  /** `perSecond` 0 disables the limit. */
  constructor(
    readonly perSecond: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string): boolean {
    if (this.perSecond <= 0) return true;
    const now = this.now();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= MAX_BUCKETS) this.#prune(now);
      b = { tokens: this.burst, atMs: now };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.atMs) / 1000) * this.perSecond);
      b.atMs = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Milliseconds until `key` has a token again (for the caller's retry hint). */
  retryAfterMs(key: string): number {
    const b = this.#buckets.get(key);
    if (!b || b.tokens >= 1 || this.perSecond <= 0) return 0;
    return Math.ceil(((1 - b.tokens) / this.perSecond) * 1000);
  }

  #prune(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((now - b.atMs) / 1000) * this.perSecond >= this.burst) {
        this.#buckets.delete(key);
      }
    }
  }
}
