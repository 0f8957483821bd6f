// Test helper: runs `lspci -D -vv -nn` and parses the parts of its output that the inventory
// also reports, so the two can be compared device by device.

import type { PciDevice } from "../../service/devices/types.ts";

export interface LspciRegion {
  index: number;
  kind: "memory" | "io";
  start: number;
  size: number | null;
  is64bit: boolean;
  prefetchable: boolean;
}

export interface LspciMsix {
  capabilityOffset: number;
  count: number;
  enabled: boolean;
  masked: boolean;
  table: { bar: number; offset: number } | null;
  pba: { bar: number; offset: number } | null;
}

export interface LspciDevice {
  address: string;
  vendorId: number | null;
  deviceId: number | null;
  revision: number | null;
  memoryDecode: boolean | null;
  regions: LspciRegion[];
  msix: LspciMsix | null;
  /** lspci could not read past the 64-byte header ("Capabilities: <access denied>"). */
  capabilitiesDenied: boolean;
  driver: string | null;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
};

function parseSize(rest: string): number | null {
  const size = /\[size=(\d+)([KMGT]?)\]/.exec(rest);
  return size ? Number(size[1]) * SIZE_UNITS[size[2]] : null;
}

/** Parses the output of `lspci -D -vv -nn` (one block per device, blocks separated by blank lines). */
export function parseLspciVerbose(text: string): LspciDevice[] {
  const devices: LspciDevice[] = [];
  let current: LspciDevice | null = null;
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) /.exec(line);
    if (head) {
      const ids = /\[([0-9a-f]{4}):([0-9a-f]{4})\](?: \(rev ([0-9a-f]{2})\))?/.exec(line);
      current = {
        address: head[1],
        vendorId: ids ? parseInt(ids[1], 16) : null,
        deviceId: ids ? parseInt(ids[2], 16) : null,
        revision: ids?.[3] !== undefined ? parseInt(ids[3], 16) : null,
        memoryDecode: null,
        regions: [],
        msix: null,
        capabilitiesDenied: false,
        driver: null,
      };
      devices.push(current);
      continue;
    }
    if (current === null) continue;
    let m: RegExpExecArray | null;
    if ((m = /^\tControl: .*\bMem([+-])/.exec(line))) {
      current.memoryDecode = m[1] === "+";
    } else if (
      (m = /^\tRegion (\d): Memory at ([0-9a-f]+) \(([^,]+), (non-)?prefetchable\)(.*)$/.exec(line))
    ) {
      current.regions.push({
        index: Number(m[1]),
        kind: "memory",
        start: parseInt(m[2], 16),
        size: parseSize(m[5]),
        is64bit: m[3] === "64-bit",
        prefetchable: m[4] === undefined,
      });
    } else if ((m = /^\tRegion (\d): I\/O ports at ([0-9a-f]+)(.*)$/.exec(line))) {
      current.regions.push({
        index: Number(m[1]),
        kind: "io",
        start: parseInt(m[2], 16),
        size: parseSize(m[3]),
        is64bit: false,
        prefetchable: false,
      });
    } else if (/^\tCapabilities: <access denied>/.test(line)) {
      current.capabilitiesDenied = true;
    } else if (
      (m = /^\tCapabilities: \[([0-9a-f]+)\] MSI-X: Enable([+-]) Count=(\d+) Masked([+-])/.exec(
        line,
      ))
    ) {
      current.msix = {
        capabilityOffset: parseInt(m[1], 16),
        count: Number(m[3]),
        enabled: m[2] === "+",
        masked: m[4] === "+",
        table: null,
        pba: null,
      };
    } else if ((m = /^\t\tVector table: BAR=(\d) offset=([0-9a-f]+)/.exec(line)) && current.msix) {
      current.msix.table = { bar: Number(m[1]), offset: parseInt(m[2], 16) };
    } else if ((m = /^\t\tPBA: BAR=(\d) offset=([0-9a-f]+)/.exec(line)) && current.msix) {
      current.msix.pba = { bar: Number(m[1]), offset: parseInt(m[2], 16) };
    } else if ((m = /^\tKernel driver in use: (\S+)/.exec(line))) {
      current.driver = m[1];
    }
  }
  return devices;
}

/** Runs lspci; a missing binary fails with the package to install, never a silent skip. */
export async function runLspci(args: string[]): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("lspci", { args, stdout: "piped", stderr: "piped" }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        "lspci is not installed: install the Debian package pciutils " +
          "(apt-get update && apt-get install -y pciutils)",
      );
    }
    throw error;
  }
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success) throw new Error(`lspci ${args.join(" ")} failed: ${stderr}`);
  return new TextDecoder().decode(output.stdout);
}

export interface LspciComparison {
  /** Memory BARs whose start, size, width and prefetchability were compared. */
  memoryBarsCompared: number;
  /** Devices whose MSI-X capability offset, size, flags, table and PBA were compared. */
  msixCompared: number;
  devicesCompared: number;
  mismatches: string[];
}

/** Compares what the inventory says with what lspci says, for every device lspci lists. */
export function compareWithLspci(inventory: PciDevice[], lspci: LspciDevice[]): LspciComparison {
  const result: LspciComparison = {
    memoryBarsCompared: 0,
    msixCompared: 0,
    devicesCompared: 0,
    mismatches: [],
  };
  const byAddress = new Map(inventory.map((d) => [d.address, d]));
  const expect = (address: string, what: string, ours: unknown, theirs: unknown) => {
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
      result.mismatches.push(
        `${address} ${what}: inventory ${JSON.stringify(ours)}, lspci ${JSON.stringify(theirs)}`,
      );
    }
  };
  for (const address of byAddress.keys()) {
    if (!lspci.some((l) => l.address === address)) {
      result.mismatches.push(`${address}: in the inventory but not in lspci`);
    }
  }
  for (const theirs of lspci) {
    const ours = byAddress.get(theirs.address);
    if (ours === undefined) {
      result.mismatches.push(`${theirs.address}: listed by lspci but not in the inventory`);
      continue;
    }
    result.devicesCompared++;
    const a = theirs.address;
    expect(a, "vendor:device", [ours.vendorId, ours.deviceId], [theirs.vendorId, theirs.deviceId]);
    if (theirs.revision !== null) expect(a, "revision", ours.revision, theirs.revision);
    if (theirs.memoryDecode !== null) {
      expect(a, "memory decode", ours.memoryDecode, theirs.memoryDecode);
    }
    expect(a, "driver", ours.driver, theirs.driver);

    const lspciMemory = theirs.regions.filter((r) => r.kind === "memory");
    const ourMemory = ours.bars.filter((b) => b.kind === "memory" && b.start !== 0);
    expect(
      a,
      "memory BAR indices",
      ourMemory.map((b) => b.index),
      lspciMemory.map((r) => r.index),
    );
    for (const region of lspciMemory) {
      const bar = ours.bars[region.index];
      const shape = (b: { start: number; is64bit: boolean; prefetchable: boolean }) =>
        `0x${b.start.toString(16)} ${b.is64bit ? "64" : "32"}-bit ` +
        `${b.prefetchable ? "" : "non-"}prefetchable`;
      expect(a, `BAR ${region.index}`, `${bar.kind} ${shape(bar)}`, `memory ${shape(region)}`);
      if (region.size !== null) expect(a, `BAR ${region.index} size`, bar.length, region.size);
      result.memoryBarsCompared++;
    }

    if (theirs.capabilitiesDenied) {
      result.mismatches.push(`${a}: lspci could not read the capabilities (not root?)`);
    } else if (theirs.msix === null) {
      expect(a, "MSI-X", ours.msix, null);
    } else {
      const m = ours.msix;
      expect(
        a,
        "MSI-X",
        m && {
          capabilityOffset: m.capabilityOffset,
          count: m.tableSize,
          enabled: m.enabled,
          masked: m.functionMask,
          table: { bar: m.table.bar, offset: m.table.offset },
          pba: { bar: m.pba.bar, offset: m.pba.offset },
        },
        theirs.msix,
      );
      result.msixCompared++;
    }
  }
  return result;
}
