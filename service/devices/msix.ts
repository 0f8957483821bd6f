// The MSI-X capability (id 0x11): where a device keeps its vector table and pending-bit array.
// The kernel refuses ioeventfds that overlap the table, so the agent must know exactly where
// it is.

import type { Msix } from "./types.ts";

export const MSIX_CAPABILITY_ID = 0x11;
/** Capability header, Message Control, Table and PBA registers. */
export const MSIX_CAPABILITY_SIZE = 12;
export const MSIX_ENTRY_SIZE = 16;

const MESSAGE_CONTROL = 0x2;
const TABLE_REGISTER = 0x4;
const PBA_REGISTER = 0x8;
const TABLE_SIZE_MASK = 0x7ff;
const ENABLE = 0x8000;
const FUNCTION_MASK = 0x4000;
const BIR_MASK = 0x7;
const LAST_BAR = 5;

export type MsixParse = { ok: true; msix: Msix } | { ok: false; error: string };

export function msixTableLength(entries: number): number {
  return entries * MSIX_ENTRY_SIZE;
}

/** One pending bit per entry, in whole 64-bit words. */
export function msixPbaLength(entries: number): number {
  return Math.ceil(entries / 64) * 8;
}

function u16(bytes: Uint8Array, offset: number): number {
  return bytes[offset] | (bytes[offset + 1] << 8);
}

function u32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) |
    (bytes[offset + 3] << 24)) >>> 0;
}

/** Decodes the MSI-X capability at `offset` of a config space image. */
export function parseMsixCapability(config: Uint8Array, offset: number): MsixParse {
  const at = "0x" + offset.toString(16);
  if (offset + MSIX_CAPABILITY_SIZE > config.length) {
    return {
      ok: false,
      error: `config space truncated: MSI-X capability at ${at} needs ${MSIX_CAPABILITY_SIZE} ` +
        `bytes but only ${Math.max(0, config.length - offset)} were read`,
    };
  }
  const control = u16(config, offset + MESSAGE_CONTROL);
  const tableRegister = u32(config, offset + TABLE_REGISTER);
  const pbaRegister = u32(config, offset + PBA_REGISTER);
  const tableSize = (control & TABLE_SIZE_MASK) + 1;
  const tableBar = tableRegister & BIR_MASK;
  const pbaBar = pbaRegister & BIR_MASK;
  if (tableBar > LAST_BAR || pbaBar > LAST_BAR) {
    return {
      ok: false,
      error: `MSI-X capability at ${at}: BAR indicator ${Math.max(tableBar, pbaBar)} ` +
        `(table BIR ${tableBar}, PBA BIR ${pbaBar}) is not a BAR (0..5)`,
    };
  }
  return {
    ok: true,
    msix: {
      capabilityOffset: offset,
      tableSize,
      table: {
        bar: tableBar,
        offset: (tableRegister & ~BIR_MASK) >>> 0,
        length: msixTableLength(tableSize),
      },
      pba: {
        bar: pbaBar,
        offset: (pbaRegister & ~BIR_MASK) >>> 0,
        length: msixPbaLength(tableSize),
      },
      enabled: (control & ENABLE) !== 0,
      functionMask: (control & FUNCTION_MASK) !== 0,
    },
  };
}

export interface MsixLayout {
  tableSize: number;
  tableBar: number;
  tableOffset: number;
  pbaBar: number;
  pbaOffset: number;
  enabled?: boolean;
  functionMask?: boolean;
}

/**
 * The 10 bytes that follow the capability id and next pointer (Message Control, Table, PBA),
 * little-endian, as a device presents them.
 */
export function encodeMsixCapabilityBody(layout: MsixLayout): Uint8Array {
  const body = new Uint8Array(MSIX_CAPABILITY_SIZE - 2);
  const view = new DataView(body.buffer);
  const control = ((layout.tableSize - 1) & TABLE_SIZE_MASK) |
    (layout.enabled ? ENABLE : 0) | (layout.functionMask ? FUNCTION_MASK : 0);
  view.setUint16(0, control, true);
  view.setUint32(2, ((layout.tableOffset & ~BIR_MASK) | (layout.tableBar & BIR_MASK)) >>> 0, true);
  view.setUint32(6, ((layout.pbaOffset & ~BIR_MASK) | (layout.pbaBar & BIR_MASK)) >>> 0, true);
  return body;
}

export interface BarExtent {
  index: number;
  kind: "memory" | "io" | "absent";
  length: number;
}

/**
 * Why the table or PBA cannot be where the capability says (not in a memory BAR, or running
 * past its end); null if both fit.
 */
export function msixPlacementError(msix: Msix, bars: BarExtent[]): string | null {
  for (const [name, region] of [["table", msix.table], ["PBA", msix.pba]] as const) {
    const bar = bars[region.bar];
    if (bar === undefined || bar.kind !== "memory") {
      return `MSI-X ${name} is in BAR ${region.bar}, which is not a memory BAR`;
    }
    if (region.offset + region.length > bar.length) {
      return `MSI-X ${name} (offset 0x${region.offset.toString(16)}, ${region.length} bytes) ` +
        `runs past the end of BAR ${region.bar} (${bar.length} bytes)`;
    }
  }
  return null;
}
