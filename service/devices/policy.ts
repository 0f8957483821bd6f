// Which devices the agent manages, and which of their BARs may carry ioeventfds.

import { normalizePciAddress } from "./pci_address.ts";
import type {
  Bar,
  BarFacts,
  BarIneligibility,
  PciDevice,
  PciDeviceFacts,
  UnmanagedReason,
} from "./types.ts";

/** Devices bound to this driver are managed without being allow-listed. */
export const VFIO_DRIVER = "vfio-pci";

/** Entries are a PCI address ("0000:65:00.0", or "65:00.0" for domain 0) or "vendor:device" in hex ("10de:2330"). */
export interface DevicePolicyRules {
  allow?: string[];
  deny?: string[];
}

export type DeviceSelector =
  | { kind: "address"; address: string }
  | { kind: "id"; vendorId: number; deviceId: number };

const VENDOR_DEVICE = /^([0-9a-f]{4}):([0-9a-f]{4})$/i;

/** Parses one allow/deny entry; throws with the offending text if it is neither form. */
export function parseDeviceSelector(text: string): DeviceSelector {
  const ids = VENDOR_DEVICE.exec(text.trim());
  if (ids) {
    return { kind: "id", vendorId: parseInt(ids[1], 16), deviceId: parseInt(ids[2], 16) };
  }
  const address = normalizePciAddress(text);
  if (address !== null) return { kind: "address", address };
  throw new Error(
    `device selector "${text}" is neither a PCI address (0000:65:00.0) nor vendor:device (10de:2330)`,
  );
}

function selects(selector: DeviceSelector, device: PciDeviceFacts): boolean {
  return selector.kind === "address"
    ? selector.address === device.address
    : selector.vendorId === device.vendorId && selector.deviceId === device.deviceId;
}

export interface ManagementDecision {
  managed: boolean;
  unmanagedReason: UnmanagedReason | null;
}

export class DevicePolicy {
  readonly #allow: DeviceSelector[];
  readonly #deny: DeviceSelector[];

  /** Throws if an entry is malformed, so a typo in the configuration is not silently ignored. */
  constructor(rules: DevicePolicyRules = {}) {
    this.#allow = (rules.allow ?? []).map(parseDeviceSelector);
    this.#deny = (rules.deny ?? []).map(parseDeviceSelector);
  }

  decide(device: PciDeviceFacts): ManagementDecision {
    const unmanaged = (reason: UnmanagedReason) => ({ managed: false, unmanagedReason: reason });
    if (this.#deny.some((s) => selects(s, device))) return unmanaged("DENY_LISTED");
    const chosen = device.driver === VFIO_DRIVER || this.#allow.some((s) => selects(s, device));
    if (!chosen) return unmanaged("NOT_VFIO_BOUND");
    // Without a complete config and resource table the MSI-X table (which the kernel protects)
    // and the BAR sizes are unknown, so no write could be checked in advance.
    if (device.configProblem === "UNREADABLE" || device.configProblem === "TRUNCATED") {
      return unmanaged("CONFIG_UNREADABLE");
    }
    if (device.configProblem === "MALFORMED") return unmanaged("CONFIG_INVALID");
    if (device.resourceError !== null) return unmanaged("RESOURCE_UNREADABLE");
    return { managed: true, unmanagedReason: null };
  }

  /** The device with its management decision and per-BAR eligibility filled in. */
  apply(device: PciDeviceFacts): PciDevice {
    return { ...device, bars: device.bars.map(classifyBar), ...this.decide(device) };
  }
}

/** Only memory BARs whose resourceN can be mmapped can carry ioeventfds. */
export function barIneligibility(bar: BarFacts): BarIneligibility | null {
  if (bar.upperHalfOf64bit) return "UPPER_HALF_OF_64BIT";
  if (bar.kind === "io") return "IO_BAR";
  if (bar.kind === "absent") return "ABSENT";
  if (!bar.mappable) return "NOT_MAPPABLE";
  return null;
}

export function classifyBar(bar: BarFacts): Bar {
  const reason = barIneligibility(bar);
  return {
    index: bar.index,
    start: bar.start,
    length: bar.length,
    kind: bar.kind,
    is64bit: bar.is64bit,
    prefetchable: bar.prefetchable,
    resourcePath: bar.resourcePath,
    mappable: bar.mappable,
    eligible: reason === null,
    ineligibleReason: reason,
  };
}
