// Reads PCI devices from a sysfs-shaped directory (`/sys/bus/pci/devices` or a simulated one).
// Only reads: nothing under a sysfs root is ever opened for writing, and resourceN files are
// only stat()ed because opening a real one maps device memory.

import { basename, join, resolve } from "node:path";
import {
  type ConfigHeader,
  findCapability,
  parseConfigSpace,
  PCI_COMMAND_MEMORY,
} from "./config_space.ts";
import {
  MSIX_CAPABILITY_ID,
  MSIX_CAPABILITY_SIZE,
  msixPlacementError,
  parseMsixCapability,
} from "./msix.ts";
import { normalizePciAddress } from "./pci_address.ts";
import { BAR_COUNT, parseResourceTable, type ResourceBar } from "./resource_table.ts";
import type { BarFacts, ConfigProblem, Msix, PciDeviceFacts } from "./types.ts";

export interface SysfsDeviceEntry {
  /** Canonical lowercase address. */
  address: string;
  /** Absolute path of the device directory (or of the symlink to it). */
  path: string;
}

/** Device directories of one root, sorted by address; names that are not addresses are skipped. */
export async function listSysfsDevices(root: string): Promise<SysfsDeviceEntry[]> {
  const absoluteRoot = resolve(root);
  const entries: SysfsDeviceEntry[] = [];
  for await (const entry of Deno.readDir(absoluteRoot)) {
    const address = normalizePciAddress(entry.name);
    if (address === null) continue;
    entries.push({ address, path: join(absoluteRoot, entry.name) });
  }
  return entries.sort((a, b) => a.address.localeCompare(b.address));
}

async function readOptionalText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

/** sysfs prints ids as "0x10de\n". */
async function readHexFile(path: string): Promise<number | null> {
  const text = (await readOptionalText(path))?.trim();
  return text !== undefined && /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : null;
}

async function readLinkBasename(path: string): Promise<string | null> {
  try {
    return basename(await Deno.readLink(path));
  } catch {
    return null;
  }
}

async function isRegularFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

function absentBar(index: number): ResourceBar {
  return {
    index,
    start: 0,
    length: 0,
    kind: "absent",
    is64bit: false,
    prefetchable: false,
    upperHalfOf64bit: false,
    flags: 0,
  };
}

async function readBars(
  devicePath: string,
): Promise<{ bars: BarFacts[]; resourceError: string | null }> {
  let table: ResourceBar[];
  let resourceError: string | null = null;
  const text = await readOptionalText(join(devicePath, "resource"));
  try {
    if (text === null) throw new Error("resource file is missing or unreadable");
    table = parseResourceTable(text);
  } catch (error) {
    resourceError = error instanceof Error ? error.message : String(error);
    table = Array.from({ length: BAR_COUNT }, (_, i) => absentBar(i));
  }
  const bars = await Promise.all(table.map(async (bar): Promise<BarFacts> => {
    const resourcePath = join(devicePath, `resource${bar.index}`);
    const present = await exists(resourcePath);
    return {
      index: bar.index,
      start: bar.start,
      length: bar.length,
      kind: bar.kind,
      is64bit: bar.is64bit,
      prefetchable: bar.prefetchable,
      upperHalfOf64bit: bar.upperHalfOf64bit,
      resourcePath: present ? resourcePath : null,
      mappable: present && await isRegularFile(resourcePath),
    };
  }));
  return { bars, resourceError };
}

interface ConfigFacts {
  header: ConfigHeader | null;
  msix: Msix | null;
  configError: string | null;
  configProblem: ConfigProblem | null;
}

/** Header and MSI-X layout from `config`; `bars` is used to check the MSI-X placement. */
async function readConfig(path: string, bars: BarFacts[] | null): Promise<ConfigFacts> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      header: null,
      msix: null,
      configError: `cannot read config: ${message}`,
      configProblem: "UNREADABLE",
    };
  }
  const errors: string[] = [];
  let configProblem: ConfigProblem | null = null;
  const problem = (kind: ConfigProblem, message: string) => {
    configProblem ??= kind;
    errors.push(message);
  };
  const config = parseConfigSpace(bytes);
  if (config.error !== null && config.problem !== null) problem(config.problem, config.error);
  let msix: Msix | null = null;
  const msixOffset = findCapability(config, MSIX_CAPABILITY_ID);
  if (msixOffset !== null) {
    const parsed = parseMsixCapability(bytes, msixOffset);
    if (parsed.ok) {
      msix = parsed.msix;
      const misplaced = bars === null ? null : msixPlacementError(msix, bars);
      if (misplaced !== null) problem("MALFORMED", misplaced);
    } else {
      const cutOff = msixOffset + MSIX_CAPABILITY_SIZE > bytes.length;
      problem(cutOff ? "TRUNCATED" : "MALFORMED", parsed.error);
    }
  }
  return {
    header: config.header,
    msix,
    configError: errors.length > 0 ? errors.join("; ") : null,
    configProblem,
  };
}

/**
 * Everything sysfs says about one device, or null if its directory vanished while it was being
 * read (hot-unplug). Per-device problems end up in configError/resourceError, never thrown.
 */
export async function readSysfsDevice(
  entry: SysfsDeviceEntry,
  simulated: boolean,
): Promise<PciDeviceFacts | null> {
  const dir = entry.path;
  const file = (name: string) => join(dir, name);
  const { bars, resourceError } = await readBars(dir);
  const [
    config,
    vendor,
    device,
    subsystemVendor,
    subsystemDevice,
    classCode,
    revision,
    driver,
    iommuGroup,
    numaText,
  ] = await Promise.all([
    readConfig(file("config"), resourceError === null ? bars : null),
    readHexFile(file("vendor")),
    readHexFile(file("device")),
    readHexFile(file("subsystem_vendor")),
    readHexFile(file("subsystem_device")),
    readHexFile(file("class")),
    readHexFile(file("revision")),
    readLinkBasename(file("driver")),
    readLinkBasename(file("iommu_group")),
    readOptionalText(file("numa_node")),
  ]);
  if (!(await exists(dir))) return null;

  const header = config.header;
  const groupNumber = iommuGroup !== null && /^\d+$/.test(iommuGroup) ? Number(iommuGroup) : null;
  const numa = numaText !== null && /^-?\d+$/.test(numaText.trim()) ? Number(numaText.trim()) : -1;
  return {
    address: entry.address,
    sysfsPath: dir,
    // A function that is not there reads as all ones; that is the only honest default.
    vendorId: vendor ?? header?.vendorId ?? 0xffff,
    deviceId: device ?? header?.deviceId ?? 0xffff,
    subsystemVendorId: subsystemVendor ?? header?.subsystemVendorId ?? null,
    subsystemDeviceId: subsystemDevice ?? header?.subsystemDeviceId ?? null,
    classCode: classCode ?? header?.classCode ?? 0,
    revision: revision ?? header?.revision ?? 0,
    driver,
    iommuGroup: groupNumber,
    // The kernel prints -1 when the platform has no NUMA information.
    numaNode: numa >= 0 ? numa : null,
    bars,
    msix: config.msix,
    memoryDecode: header ? (header.command & PCI_COMMAND_MEMORY) !== 0 : null,
    configError: config.configError,
    configProblem: config.configProblem,
    resourceError,
    simulated,
  };
}
