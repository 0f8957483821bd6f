// "Did you mean …": the closest known word to a misspelt one, for every place that refuses an
// unknown name (config keys, flags, ioeventctl fleet's commands and flags).

/** Edit distance with transpositions (optimal string alignment), case-insensitive. */
function distance(a: string, b: string): number {
  [a, b] = [a.toLowerCase(), b.toLowerCase()];
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** ` (did you mean "x"?)` for the closest candidate within a typo's reach, else "". */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const reach = Math.max(2, Math.floor(word.length / 4));
  const best = candidates
    .map((c) => ({ c, d: distance(word, c) }))
    .filter(({ d }) => d <= reach)
    .sort((x, y) => x.d - y.d)[0];
  return best ? ` (did you mean "${best.c}"?)` : "";
}
