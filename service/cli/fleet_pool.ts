// Runs one task per host with at most `concurrency` in flight, each bounded by its own
// timeout, so one dead or slow host costs its timeout and never stalls the others.
export type Settled<R> =
  | { ok: true; value: R; ms: number }
  | { ok: false; error: unknown; timedOut: boolean; ms: number };

export interface PoolOptions {
  concurrency: number;
  timeoutMs: number;
}

export class TaskTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/**
 * `task` receives the absolute deadline (epoch ms) to pass on to its calls; the pool also
 * enforces it, in case a call ignores it. Results keep the order of `items`.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  options: PoolOptions,
  task: (item: T, deadline: number) => Promise<R>,
  onSettled: (item: T, result: Settled<R>, index: number) => void = () => {},
): Promise<Settled<R>[]> {
  const results = new Array<Settled<R>>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      const item = items[index];
      const started = performance.now();
      const deadline = Date.now() + options.timeoutMs;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TaskTimeout(options.timeoutMs)), options.timeoutMs);
      });
      let result: Settled<R>;
      try {
        const value = await Promise.race([task(item, deadline), timeout]);
        result = { ok: true, value, ms: performance.now() - started };
      } catch (error) {
        const timedOut = error instanceof TaskTimeout;
        result = { ok: false, error, timedOut, ms: performance.now() - started };
      } finally {
        clearTimeout(timer);
      }
      results[index] = result;
      onSettled(item, result, index);
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
  return results;
}
