// Types the rest of the agent sees for the PCI devices of this host (real or simulated).

export type BarKind = "memory" | "io" | "absent";

export type BarIneligibility = "IO_BAR" | "ABSENT" | "UPPER_HALF_OF_64BIT" | "NOT_MAPPABLE";

export interface Bar {
  index: number;
  /** Bus address of the BAR (0 when absent). */
  start: number;
  /** Length in bytes (0 when absent). */
  length: number;
  kind: BarKind;
  is64bit: boolean;
  prefetchable: boolean;
  /** Absolute path of `resourceN` if it exists. */
  resourcePath: string | null;
  /** `resourceN` exists and is a regular file the native plugin can mmap. */
  mappable: boolean;
  eligible: boolean;
  ineligibleReason: BarIneligibility | null;
}

/** A byte range inside one BAR. */
export interface Region {
  bar: number;
  offset: number;
  length: number;
}

export interface Msix {
  /** Offset of capability 0x11 in config space. */
  capabilityOffset: number;
  /** Number of table entries. */
  tableSize: number;
  /** length = entries * 16 */
  table: Region;
  /** length = ceil(entries / 64) * 8 */
  pba: Region;
  enabled: boolean;
  functionMask: boolean;
}

/** Machine-readable reasons a device is listed but not managed by the agent. */
export type UnmanagedReason =
  | "DENY_LISTED"
  | "NOT_VFIO_BOUND"
  /** config missing or shorter than needed (non-root readers of sysfs get 64 bytes). */
  | "CONFIG_UNREADABLE"
  /** config readable but inconsistent: capability loop, bad pointer, MSI-X BIR > 5... */
  | "CONFIG_INVALID"
  /** `resource` missing or malformed, so BAR geometry is unknown. */
  | "RESOURCE_UNREADABLE";

/** Why `configError` is set; null when config was read and parsed completely. */
export type ConfigProblem = "UNREADABLE" | "TRUNCATED" | "MALFORMED";

export interface PciDevice {
  /** Canonical "dddd:bb:dd.f", lowercase. */
  address: string;
  sysfsPath: string;
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number | null;
  subsystemDeviceId: number | null;
  /** 24-bit class code (base class, subclass, programming interface). */
  classCode: number;
  revision: number;
  driver: string | null;
  iommuGroup: number | null;
  numaNode: number | null;
  /** Always 6 entries, index 0..5. */
  bars: Bar[];
  msix: Msix | null;
  /** Command register bit 1; writes to BARs are dropped while it is clear. null if unknown. */
  memoryDecode: boolean | null;
  /** Clear message when reading or walking config space failed. */
  configError: string | null;
  configProblem: ConfigProblem | null;
  /** Clear message when `resource` was missing or malformed. */
  resourceError: string | null;
  managed: boolean;
  /** Machine-readable, e.g. "NOT_VFIO_BOUND", "DENY_LISTED"; null when managed. */
  unmanagedReason: UnmanagedReason | null;
  simulated: boolean;
}

/** A BAR as read from sysfs, before the eligibility rule is applied. */
export type BarFacts = Omit<Bar, "eligible" | "ineligibleReason"> & {
  /** Set on the slot that holds the upper 32 bits of the previous 64-bit BAR. */
  upperHalfOf64bit: boolean;
};

/** A device as read from sysfs, before the management policy is applied. */
export type PciDeviceFacts = Omit<PciDevice, "bars" | "managed" | "unmanagedReason"> & {
  bars: BarFacts[];
};
