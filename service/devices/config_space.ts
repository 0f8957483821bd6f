// The binary sysfs `config` file: the type 0/1 header and the standard capability list.
// Real files are 256 or 4096 bytes, but non-root readers get only the first 64.

import type { ConfigProblem } from "./types.ts";

/** Bytes of the standard header, the part every reader of sysfs may see. */
export const CONFIG_HEADER_SIZE = 0x40;
/** Standard (non-extended) config space; capability pointers are bytes, so they stay in it. */
export const CONFIG_STANDARD_SIZE = 0x100;
/** Upper bound on real capability lists: (256 - 64) / 4 slots of the smallest size. */
export const MAX_CAPABILITIES = 48;

export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_CAPABILITY_LIST = 0x34;
/** CardBus bridges (header type 2) keep their capability pointer elsewhere. */
const PCI_CB_CAPABILITY_LIST = 0x14;

export interface ConfigHeader {
  vendorId: number;
  deviceId: number;
  command: number;
  status: number;
  revision: number;
  /** 24-bit class code. */
  classCode: number;
  /** Layout of the header (bit 7, multi-function, masked off). */
  headerType: number;
  /** Only type 0 headers carry subsystem ids. */
  subsystemVendorId: number | null;
  subsystemDeviceId: number | null;
}

export interface PciCapability {
  id: number;
  offset: number;
}

export interface ConfigSpace {
  /** Bytes actually read. */
  size: number;
  /** null when even the 64-byte header is incomplete. */
  header: ConfigHeader | null;
  /** Capabilities in list order; those found before an error are kept. */
  capabilities: PciCapability[];
  /** Clear message when the header or the capability walk could not be completed. */
  error: string | null;
  problem: ConfigProblem | null;
}

function u16(bytes: Uint8Array, offset: number): number {
  return bytes[offset] | (bytes[offset + 1] << 8);
}

function hex(value: number, digits = 2): string {
  return "0x" + value.toString(16).padStart(digits, "0");
}

/** Reads the header and walks the capability list; never throws and never loops forever. */
export function parseConfigSpace(bytes: Uint8Array): ConfigSpace {
  const size = bytes.length;
  if (size < CONFIG_HEADER_SIZE) {
    return {
      size,
      header: null,
      capabilities: [],
      error: `config space truncated: ${size} bytes, the header alone needs ${CONFIG_HEADER_SIZE}`,
      problem: "TRUNCATED",
    };
  }
  const headerType = bytes[0x0e] & 0x7f;
  const header: ConfigHeader = {
    vendorId: u16(bytes, 0x00),
    deviceId: u16(bytes, 0x02),
    command: u16(bytes, PCI_COMMAND),
    status: u16(bytes, PCI_STATUS),
    revision: bytes[0x08],
    classCode: bytes[0x09] | (bytes[0x0a] << 8) | (bytes[0x0b] << 16),
    headerType,
    subsystemVendorId: headerType === 0 ? u16(bytes, 0x2c) : null,
    subsystemDeviceId: headerType === 0 ? u16(bytes, 0x2e) : null,
  };
  const walk = walkCapabilities(bytes, header);
  return { size, header, ...walk };
}

function walkCapabilities(
  bytes: Uint8Array,
  header: ConfigHeader,
): Pick<ConfigSpace, "capabilities" | "error" | "problem"> {
  const capabilities: PciCapability[] = [];
  if ((header.status & PCI_STATUS_CAP_LIST) === 0) {
    return { capabilities, error: null, problem: null };
  }
  const fail = (problem: ConfigProblem, error: string) => ({ capabilities, error, problem });
  const pointerAt = header.headerType === 2 ? PCI_CB_CAPABILITY_LIST : PCI_CAPABILITY_LIST;
  const visited = new Set<number>();
  let from = `capability pointer at ${hex(pointerAt)}`;
  let pointer = bytes[pointerAt] & ~3;
  while (pointer !== 0) {
    if (pointer < CONFIG_HEADER_SIZE) {
      return fail("MALFORMED", `${from} points into the header (${hex(pointer)} < 0x40)`);
    }
    if (pointer + 2 > bytes.length) {
      const rootHint = bytes.length === CONFIG_HEADER_SIZE ? "; reading all of it needs root" : "";
      return fail(
        "TRUNCATED",
        `config space truncated: ${from} points to ${hex(pointer)}, ` +
          `beyond the ${bytes.length} bytes read${rootHint}`,
      );
    }
    if (visited.has(pointer)) {
      return fail("MALFORMED", `capability list loops: ${from} points back to ${hex(pointer)}`);
    }
    if (visited.size >= MAX_CAPABILITIES) {
      return fail("MALFORMED", `capability list longer than ${MAX_CAPABILITIES} entries`);
    }
    visited.add(pointer);
    capabilities.push({ id: bytes[pointer], offset: pointer });
    from = `capability ${hex(bytes[pointer])} at ${hex(pointer)}`;
    pointer = bytes[pointer + 1] & ~3;
  }
  return { capabilities, error: null, problem: null };
}

/** Offset of the first capability with this id, or null. */
export function findCapability(config: ConfigSpace, id: number): number | null {
  return config.capabilities.find((c) => c.id === id)?.offset ?? null;
}
