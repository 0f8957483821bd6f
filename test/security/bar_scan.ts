// What a device would see: the byte ranges of a simulated BAR file that hold anything but
// zero. The simulator creates every BAR as a sparse, all-zero file, so "no byte changed
// outside the registered offsets" is "every non-zero byte lies inside one of them".
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

export interface ByteRange {
  start: number;
  end: number;
}

const CHUNK = 1 << 20;

export function nonZeroRanges(path: string): ByteRange[] {
  const out: ByteRange[] = [];
  const buf = new Uint8Array(CHUNK);
  const words = new BigUint64Array(buf.buffer);
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    for (let base = 0; base < size; base += CHUNK) {
      const n = readSync(fd, buf, 0, Math.min(CHUNK, size - base), base);
      buf.fill(0, n);
      for (let w = 0; w < words.length; w++) {
        if (words[w] === 0n) continue;
        for (let b = w * 8; b < w * 8 + 8; b++) {
          if (buf[b] === 0) continue;
          const at = base + b;
          const last = out[out.length - 1];
          if (last && last.end === at) last.end = at + 1;
          else out.push({ start: at, end: at + 1 });
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Offsets of non-zero bytes no range of `allowed` covers. */
export function strayBytes(path: string, allowed: ByteRange[]): number[] {
  const stray: number[] = [];
  for (const r of nonZeroRanges(path)) {
    for (let at = r.start; at < r.end; at++) {
      if (!allowed.some((a) => a.start <= at && at < a.end)) stray.push(at);
    }
  }
  return stray;
}
