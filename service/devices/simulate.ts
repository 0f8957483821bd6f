// Simulated PCI devices: directories shaped like the kernel's so that the same scanner (and
// lspci -O sysfs.path=...) reads them, with sparse resourceN files the native plugin can mmap.
//
// Layout, mirroring /sys (`root` plays /sys/bus/pci/devices and must end in bus/pci/devices):
//   <sys>/bus/pci/devices/<address>/{config,resource,resourceN,vendor,device,...}
//   <sys>/bus/pci/devices/<address>/driver      -> ../../drivers/<driver>
//   <sys>/bus/pci/devices/<address>/iommu_group -> ../../../../kernel/iommu_groups/<n>
//   <sys>/bus/pci/drivers/<driver>/
//   <sys>/kernel/iommu_groups/<n>/devices/<address> -> the device directory
// Real sysfs device entries are symlinks into /sys/devices; here they are plain directories.

import { dirname, join, resolve, sep } from "node:path";
import { type ConfigIdentity, ConfigSpaceBuilder } from "./config_space_builder.ts";
import { encodeMsixCapabilityBody, MSIX_CAPABILITY_ID, type MsixLayout } from "./msix.ts";
import { normalizePciAddress, parsePciAddress } from "./pci_address.ts";
import { VFIO_DRIVER } from "./policy.ts";
import { BAR_COUNT, formatResourceTable, type ResourceSpec } from "./resource_table.ts";
import {
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_STATUS_CAP_LIST,
} from "./config_space.ts";

export type SimulatedProfile = "nvidia-gpu" | "nic";

export interface SimulatedDeviceOptions {
  /** Default: derived from the address, so devices do not share a group. */
  iommuGroup?: number;
  /** Default 0. */
  numaNode?: number;
  /** Default "vfio-pci"; null leaves the device unbound. */
  driver?: string | null;
  /**
   * Moves the MSI-X vector table to this offset of its BAR (a device that changes under its
   * ioeventfds, for the tests of re-validation).
   */
  msixTableOffset?: number;
  /**
   * BAR lengths as the resource table reports them, by index (the resourceN files keep their
   * size: a mapped file is never truncated under a running engine).
   */
  reportedBarLengths?: Record<number, number>;
}

/** Addresses of the devices createSimulatedHost makes. */
export const SIMULATED_GPU_ADDRESS = "0000:65:00.0";
export const SIMULATED_NIC_ADDRESS = "0000:66:00.0";

const CAP_PM = 0x01;
const CAP_MSI = 0x05;
const CAP_VENDOR = 0x09;
const CAP_PCIE = 0x10;
const EXTENDED_CONFIG_SIZE = 4096;

interface Capability {
  offset: number;
  id: number;
  body: Uint8Array | number[];
}

interface ProfileSpec {
  identity: ConfigIdentity;
  command: number;
  /** Index = BAR slot; the slot after a 64-bit BAR stays undefined. */
  bars: (ResourceSpec | undefined)[];
  msix: MsixLayout;
  capabilities: Capability[];
}

const MIB = 1024 * 1024;
const KIB = 1024;

// Power management: PMC version 3, PMCSR NoSoftRst.
const PM_BODY = [0x03, 0x00, 0x08, 0x00, 0x00, 0x00];
// PCI Express capability register: version 2, endpoint; the rest reads zero.
const PCIE_BODY = [0x02, 0x00, ...new Array<number>(0x3a).fill(0)];

function msiBody(perVectorMasking: boolean): number[] {
  const control = 0x0080 | (perVectorMasking ? 0x0100 : 0); // 64-bit address capable
  return [control & 0xff, control >> 8, ...new Array<number>(perVectorMasking ? 20 : 10).fill(0)];
}

function msixCapability(offset: number, layout: MsixLayout): Capability {
  return { offset, id: MSIX_CAPABILITY_ID, body: encodeMsixCapabilityBody(layout) };
}

/** Bus addresses are cosmetic, but differ between addresses so that devices do not overlap. */
function windowsFor(address: string) {
  const parts = parsePciAddress(address);
  if (parts === null) throw new Error(`not a PCI address: ${address}`);
  const bdf = (parts.bus << 8) | (parts.device << 3) | parts.fn;
  // 60 slots of 32 MiB between 2 GiB and 3.875 GiB, below the usual 32-bit MMIO top.
  const slot32 = (parts.bus + parts.device * 7 + parts.fn * 3) % 60;
  return {
    mem32: 0x8000_0000 + slot32 * 32 * MIB,
    mem64: 0x3800_0000_0000 + bdf * 0x1_0000_0000,
    io: 0x1000 + (bdf % 0xe0) * 0x100,
  };
}

function nvidiaGpu(address: string): ProfileSpec {
  const w = windowsFor(address);
  const msix: MsixLayout = {
    tableSize: 16,
    tableBar: 0,
    tableOffset: 0xb90000,
    pbaBar: 0,
    pbaOffset: 0xba0000,
  };
  return {
    // H100-like 3D controller.
    identity: {
      vendorId: 0x10de,
      deviceId: 0x2330,
      classCode: 0x030200,
      revision: 0xa1,
      subsystemVendorId: 0x10de,
      subsystemDeviceId: 0x16c1,
    },
    command: PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER,
    bars: [
      { kind: "memory", start: w.mem32, length: 16 * MIB },
      { kind: "memory", start: w.mem64, length: 256 * MIB, is64bit: true, prefetchable: true },
      undefined,
      {
        kind: "memory",
        start: w.mem64 + 256 * MIB,
        length: 32 * MIB,
        is64bit: true,
        prefetchable: true,
      },
      undefined,
      { kind: "io", start: w.io, length: 128 },
    ],
    msix,
    capabilities: [
      { offset: 0x60, id: CAP_PM, body: PM_BODY },
      { offset: 0x68, id: CAP_MSI, body: msiBody(false) },
      { offset: 0x78, id: CAP_PCIE, body: PCIE_BODY },
      { offset: 0xb4, id: CAP_VENDOR, body: [0x14, ...new Array<number>(0x11).fill(0)] },
      msixCapability(0xc8, msix),
    ],
  };
}

function nic(address: string): ProfileSpec {
  const w = windowsFor(address);
  const msix: MsixLayout = {
    tableSize: 64,
    tableBar: 3,
    tableOffset: 0x0,
    pbaBar: 3,
    pbaOffset: 0x2000,
  };
  return {
    // I350-like Ethernet controller.
    identity: {
      vendorId: 0x8086,
      deviceId: 0x1521,
      classCode: 0x020000,
      revision: 0x01,
      subsystemVendorId: 0x8086,
      subsystemDeviceId: 0x0001,
    },
    command: PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER,
    bars: [
      { kind: "memory", start: w.mem32, length: 128 * KIB },
      undefined,
      undefined,
      { kind: "memory", start: w.mem32 + 128 * KIB, length: 16 * KIB },
      undefined,
      undefined,
    ],
    msix,
    capabilities: [
      { offset: 0x40, id: CAP_PM, body: PM_BODY },
      { offset: 0x50, id: CAP_MSI, body: msiBody(true) },
      msixCapability(0x70, msix),
      { offset: 0xa0, id: CAP_PCIE, body: PCIE_BODY },
    ],
  };
}

function buildConfig(spec: ProfileSpec): Uint8Array {
  const builder = new ConfigSpaceBuilder(EXTENDED_CONFIG_SIZE)
    .identity(spec.identity)
    .command(spec.command)
    .status(PCI_STATUS_CAP_LIST)
    .u8(0x3d, 0x01); // interrupt pin INTA
  spec.bars.forEach((bar, index) => {
    if (bar !== undefined) builder.bar(index, bar);
  });
  for (const cap of spec.capabilities) builder.capability(cap.offset, cap.id, cap.body);
  return builder.build();
}

function hexText(value: number, digits: number): string {
  return "0x" + value.toString(16).padStart(digits, "0") + "\n";
}

/** The directories that play /sys/bus/pci/drivers and /sys/kernel/iommu_groups for `root`. */
export function simulatedSysfsLayout(root: string): {
  devices: string;
  drivers: string;
  iommuGroups: string;
} {
  const devices = resolve(root);
  const suffix = ["bus", "pci", "devices"].join(sep);
  if (!devices.endsWith(sep + suffix)) {
    throw new Error(
      `simulated root ${devices} must end in bus/pci/devices, like /sys/bus/pci/devices, ` +
        `so that drivers/ and kernel/iommu_groups/ land beside it as in /sys`,
    );
  }
  const sys = dirname(dirname(dirname(devices)));
  return {
    devices,
    drivers: join(sys, "bus", "pci", "drivers"),
    iommuGroups: join(sys, "kernel", "iommu_groups"),
  };
}

/** Refuses to write anywhere that resolves into the real /sys. */
async function assertNotRealSysfs(path: string): Promise<void> {
  let existing = resolve(path);
  while (true) {
    try {
      existing = await Deno.realPath(existing);
      break;
    } catch {
      const parent = dirname(existing);
      if (parent === existing) break;
      existing = parent;
    }
  }
  if (existing === "/sys" || existing.startsWith("/sys/")) {
    throw new Error(`refusing to create simulated devices under the real sysfs (${path})`);
  }
}

async function replaceSymlink(target: string, link: string): Promise<void> {
  await Deno.remove(link).catch(() => {});
  await Deno.symlink(target, link);
}

function canonical(address: string): string {
  const normalized = normalizePciAddress(address);
  if (normalized === null) throw new Error(`not a PCI address: ${address}`);
  return normalized;
}

/**
 * Binds a simulated device to `driver` (creating <sys>/bus/pci/drivers/<driver>), or unbinds it
 * when `driver` is null, as echoing into a driver's bind/unbind would on a real host.
 */
export async function bindSimulatedDriver(
  root: string,
  address: string,
  driver: string | null,
): Promise<void> {
  const layout = simulatedSysfsLayout(root);
  await assertNotRealSysfs(layout.devices);
  const link = join(layout.devices, canonical(address), "driver");
  await Deno.remove(link).catch(() => {});
  if (driver === null) return;
  await Deno.mkdir(join(layout.drivers, driver), { recursive: true });
  await Deno.symlink(join("..", "..", "drivers", driver), link);
}

/** Creates (or re-creates) one simulated device; returns its directory. */
export async function createSimulatedDevice(
  root: string,
  address: string,
  profile: SimulatedProfile,
  options: SimulatedDeviceOptions = {},
): Promise<string> {
  const layout = simulatedSysfsLayout(root);
  await assertNotRealSysfs(layout.devices);
  const name = canonical(address);
  const spec = profile === "nvidia-gpu" ? nvidiaGpu(name) : nic(name);
  if (options.msixTableOffset !== undefined) {
    spec.msix = { ...spec.msix, tableOffset: options.msixTableOffset };
    spec.capabilities = spec.capabilities.map((c) =>
      c.id === MSIX_CAPABILITY_ID ? msixCapability(c.offset, spec.msix) : c
    );
  }
  const fileLengths = spec.bars.map((b) => b?.length);
  for (const [index, length] of Object.entries(options.reportedBarLengths ?? {})) {
    const bar = spec.bars[Number(index)];
    if (bar) spec.bars[Number(index)] = { ...bar, length };
  }
  const dir = join(layout.devices, name);
  const parts = parsePciAddress(name)!;
  const iommuGroup = options.iommuGroup ?? ((parts.bus << 8) | (parts.device << 3) | parts.fn);
  await Deno.mkdir(dir, { recursive: true });

  const id = spec.identity;
  await Promise.all([
    Deno.writeFile(join(dir, "config"), buildConfig(spec)),
    Deno.writeTextFile(join(dir, "resource"), formatResourceTable(spec.bars)),
    Deno.writeTextFile(join(dir, "vendor"), hexText(id.vendorId, 4)),
    Deno.writeTextFile(join(dir, "device"), hexText(id.deviceId, 4)),
    Deno.writeTextFile(join(dir, "subsystem_vendor"), hexText(id.subsystemVendorId, 4)),
    Deno.writeTextFile(join(dir, "subsystem_device"), hexText(id.subsystemDeviceId, 4)),
    Deno.writeTextFile(join(dir, "class"), hexText(id.classCode, 6)),
    Deno.writeTextFile(join(dir, "revision"), hexText(id.revision, 2)),
    Deno.writeTextFile(join(dir, "numa_node"), `${options.numaNode ?? 0}\n`),
    // lspci reads it; vfio-pci devices commonly show their legacy IRQ here.
    Deno.writeTextFile(join(dir, "irq"), "16\n"),
  ]);
  for (let index = 0; index < BAR_COUNT; index++) {
    const bar = spec.bars[index];
    const path = join(dir, `resource${index}`);
    if (bar === undefined) {
      await Deno.remove(path).catch(() => {});
      continue;
    }
    // Sparse: the length is set, no byte is written, so a 256 MiB BAR costs no disk. Never
    // shrunk: an engine may have it mapped.
    using file = await Deno.open(path, { create: true, write: true });
    if ((await file.stat()).size < fileLengths[index]!) await file.truncate(fileLengths[index]!);
  }

  const groupDir = join(layout.iommuGroups, String(iommuGroup));
  await Deno.mkdir(join(groupDir, "devices"), { recursive: true });
  await replaceSymlink(
    join("..", "..", "..", "..", "kernel", "iommu_groups", String(iommuGroup)),
    join(dir, "iommu_group"),
  );
  await replaceSymlink(
    join("..", "..", "..", "..", "bus", "pci", "devices", name),
    join(groupDir, "devices", name),
  );
  await bindSimulatedDriver(
    root,
    name,
    options.driver === undefined ? VFIO_DRIVER : options.driver,
  );
  return dir;
}

/** Hot-unplugs a simulated device: its directory and its IOMMU group entry disappear. */
export async function removeSimulatedDevice(root: string, address: string): Promise<void> {
  const layout = simulatedSysfsLayout(root);
  await assertNotRealSysfs(layout.devices);
  const name = canonical(address);
  const dir = join(layout.devices, name);
  const group = await Deno.readLink(join(dir, "iommu_group")).catch(() => null);
  if (group !== null) {
    await Deno.remove(join(resolve(dir, group), "devices", name)).catch(() => {});
  }
  await Deno.remove(dir, { recursive: true });
}

/**
 * The default simulated host: an NVIDIA GPU at 0000:65:00.0 (IOMMU group 12, NUMA node 0) and
 * a NIC at 0000:66:00.0 (group 13, node 0), both bound to vfio-pci. Returns their addresses.
 */
export async function createSimulatedHost(root: string): Promise<string[]> {
  await createSimulatedDevice(root, SIMULATED_GPU_ADDRESS, "nvidia-gpu", { iommuGroup: 12 });
  await createSimulatedDevice(root, SIMULATED_NIC_ADDRESS, "nic", { iommuGroup: 13 });
  return [SIMULATED_GPU_ADDRESS, SIMULATED_NIC_ADDRESS];
}
