// Reads what landed in a simulated BAR: the bytes of a resourceN file, as a device would see.
import { closeSync, openSync, readSync, writeSync } from "node:fs";

export function readBar(path: string, offset: number, width: number): bigint {
  const buf = new Uint8Array(width);
  const fd = openSync(path, "r");
  try {
    readSync(fd, buf, 0, width, offset);
  } finally {
    closeSync(fd);
  }
  let value = 0n;
  for (let i = width - 1; i >= 0; i--) value = (value << 8n) | BigInt(buf[i]);
  return value;
}

/** Polls until the BAR holds `expected` at `offset`, or fails after `ms`. */
export async function waitForBar(
  path: string,
  offset: number,
  width: number,
  expected: bigint,
  ms = 5000,
): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (readBar(path, offset, width) === expected) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(
    `BAR ${path}+0x${offset.toString(16)} holds 0x${readBar(path, offset, width).toString(16)}, ` +
      `expected 0x${expected.toString(16)}`,
  );
}

/** Overwrites bytes of a simulated BAR (tests reset a register before the next write). */
export function writeBar(path: string, offset: number, width: number, value: bigint): void {
  const buf = new Uint8Array(width);
  for (let i = 0; i < width; i++) buf[i] = Number((value >> BigInt(8 * i)) & 0xffn);
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, buf, 0, width, offset);
  } finally {
    closeSync(fd);
  }
}
