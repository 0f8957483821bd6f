// The sysfs `resource` file: one "0x%016x 0x%016x 0x%016x" (start end flags) line per
// resource; the first 6 lines are the BARs, the rest (ROM, SR-IOV, bridge windows) are ignored.

import type { BarKind } from "./types.ts";

export const IORESOURCE_IO = 0x100;
export const IORESOURCE_MEM = 0x200;
export const IORESOURCE_PREFETCH = 0x2000;
export const IORESOURCE_SIZEALIGN = 0x40000;
export const IORESOURCE_MEM_64 = 0x100000;

/** Number of BAR slots in a type 0 header. */
export const BAR_COUNT = 6;

/** Lines in a real `resource` file of an endpoint with CONFIG_PCI_IOV: BARs, ROM, 6 IOV BARs. */
export const RESOURCE_LINES = 13;

// The kernel copies the BAR register's low type bits into the flags, so real files carry them.
const PCI_BASE_ADDRESS_SPACE_IO = 0x1;
const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x4;
const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x8;

export interface ResourceBar {
  index: number;
  start: number;
  length: number;
  kind: BarKind;
  is64bit: boolean;
  prefetchable: boolean;
  /** This slot holds the upper 32 bits of the 64-bit BAR in the slot before it. */
  upperHalfOf64bit: boolean;
  flags: number;
}

export class ResourceTableError extends Error {
  override name = "ResourceTableError";
}

const LINE = /^0x([0-9a-f]{1,16})\s+0x([0-9a-f]{1,16})\s+0x([0-9a-f]{1,16})$/i;

function toSafeNumber(value: bigint, what: string, line: number): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ResourceTableError(`resource line ${line}: ${what} 0x${value.toString(16)} >= 2^53`);
  }
  return Number(value);
}

/** The 6 BARs described by a `resource` file. Throws ResourceTableError if it is malformed. */
export function parseResourceTable(text: string): ResourceBar[] {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  if (lines.length < BAR_COUNT) {
    throw new ResourceTableError(
      `resource is cut short: ${lines.length} of the ${BAR_COUNT} BAR lines present`,
    );
  }
  const bars: ResourceBar[] = [];
  let previousWas64bitLower = false;
  for (let index = 0; index < BAR_COUNT; index++) {
    const match = LINE.exec(lines[index]);
    if (!match) {
      throw new ResourceTableError(`resource line ${index + 1} is malformed: "${lines[index]}"`);
    }
    const start = BigInt("0x" + match[1]);
    const end = BigInt("0x" + match[2]);
    const flagsBig = BigInt("0x" + match[3]);
    const flags = toSafeNumber(flagsBig, "flags", index + 1);
    if (previousWas64bitLower) {
      // sysfs prints the upper slot as all zero; the lower slot's MEM_64 flag is what tells.
      bars.push({
        index,
        start: 0,
        length: 0,
        kind: "absent",
        is64bit: false,
        prefetchable: false,
        upperHalfOf64bit: true,
        flags,
      });
      previousWas64bitLower = false;
      continue;
    }
    if (end < start) {
      throw new ResourceTableError(`resource line ${index + 1}: end is below start`);
    }
    const lengthBig = start !== 0n || end !== 0n ? end - start + 1n : 0n;
    const isIo = (flags & IORESOURCE_IO) !== 0;
    const isMem = (flags & IORESOURCE_MEM) !== 0;
    const kind: BarKind = lengthBig === 0n ? "absent" : isIo ? "io" : isMem ? "memory" : "absent";
    const is64bit = isMem && (flags & IORESOURCE_MEM_64) !== 0;
    bars.push({
      index,
      start: kind === "absent" ? 0 : toSafeNumber(start, "start", index + 1),
      length: kind === "absent" ? 0 : toSafeNumber(lengthBig, "length", index + 1),
      kind,
      is64bit,
      prefetchable: isMem && (flags & IORESOURCE_PREFETCH) !== 0,
      upperHalfOf64bit: false,
      flags,
    });
    previousWas64bitLower = is64bit;
  }
  return bars;
}

export interface ResourceSpec {
  kind: "memory" | "io";
  start: number;
  length: number;
  is64bit?: boolean;
  prefetchable?: boolean;
}

/** The flags word the kernel reports for a BAR of this shape. */
export function resourceFlags(spec: ResourceSpec): number {
  if (spec.kind === "io") {
    return IORESOURCE_IO | IORESOURCE_SIZEALIGN | PCI_BASE_ADDRESS_SPACE_IO;
  }
  let flags = IORESOURCE_MEM | IORESOURCE_SIZEALIGN;
  if (spec.is64bit) flags |= IORESOURCE_MEM_64 | PCI_BASE_ADDRESS_MEM_TYPE_64;
  if (spec.prefetchable) flags |= IORESOURCE_PREFETCH | PCI_BASE_ADDRESS_MEM_PREFETCH;
  return flags;
}

function hex16(value: bigint): string {
  return "0x" + value.toString(16).padStart(16, "0");
}

/**
 * A `resource` file as the kernel writes it: `slots[i]` is BAR i (undefined = empty slot, and
 * the slot after a 64-bit BAR must be left empty); RESOURCE_LINES lines in all.
 */
export function formatResourceTable(slots: (ResourceSpec | undefined)[]): string {
  const lines: string[] = [];
  for (let i = 0; i < RESOURCE_LINES; i++) {
    const spec = slots[i];
    if (spec === undefined || spec.length === 0) {
      lines.push(`${hex16(0n)} ${hex16(0n)} ${hex16(0n)}`);
      continue;
    }
    const start = BigInt(spec.start);
    const end = start + BigInt(spec.length) - 1n;
    lines.push(`${hex16(start)} ${hex16(end)} ${hex16(BigInt(resourceFlags(spec)))}`);
  }
  return lines.join("\n") + "\n";
}
