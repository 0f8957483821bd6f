// Order statistics of benchmark samples.

/** The value at quantile `p` (0..1) of samples already sorted ascending. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export function median(samples: number[]): number {
  return percentile([...samples].sort((a, b) => a - b), 0.5);
}
