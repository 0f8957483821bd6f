// The agent's view of the host's PCI devices, re-read from one or more sysfs roots on demand or
// periodically, with the differences between two reads reported as changes.

import { type Fields, type Level, type Logger, stderrLogger } from "../log.ts";
import { normalizePciAddress } from "./pci_address.ts";
import type { DevicePolicy } from "./policy.ts";
import { listSysfsDevices, readSysfsDevice } from "./sysfs.ts";
import type { PciDevice } from "./types.ts";

export interface SysfsRoot {
  /** A directory shaped like /sys/bus/pci/devices. */
  path: string;
  /** Devices found here are reported with `simulated: true`. */
  simulated: boolean;
}

export interface InventoryOptions {
  /**
   * A real device always wins over a simulated one with its address (which is refused, with an
   * error logged: it would shadow the real device); otherwise earlier roots win.
   */
  roots: SysfsRoot[];
  policy: DevicePolicy;
  /** Where warnings go (default: the JSON stderr log). */
  log?: Logger;
}

export interface InventoryChange {
  added: string[];
  removed: string[];
  /** Driver, BARs, MSI-X layout or management changed. */
  changed: string[];
}

export function isEmptyChange(change: InventoryChange): boolean {
  return change.added.length + change.removed.length + change.changed.length === 0;
}

/** The parts of a device whose change matters to whoever programs its BARs. */
function identityOfInterest(device: PciDevice): string {
  const msix = device.msix;
  return JSON.stringify({
    driver: device.driver,
    bars: device.bars,
    // Enable/mask flip whenever a guest starts using the device: not a change of layout.
    msix: msix && { size: msix.tableSize, table: msix.table, pba: msix.pba },
    managed: device.managed,
    unmanagedReason: device.unmanagedReason,
    // Another device at the same address (a real one replacing a refused simulated one).
    sysfsPath: device.sysfsPath,
    simulated: device.simulated,
  });
}

export class Inventory {
  readonly #roots: SysfsRoot[];
  readonly #policy: DevicePolicy;
  readonly #log: Logger;
  #devices = new Map<string, PciDevice>();
  #scanInFlight: Promise<InventoryChange> | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  // Bumped by start/stop so a tick of an earlier loop never reschedules itself.
  #generation = 0;
  // Warn once per condition, not on every periodic scan.
  readonly #warned = new Set<string>();

  constructor(options: InventoryOptions) {
    this.#roots = options.roots.map((r) => ({ path: r.path, simulated: r.simulated }));
    this.#policy = options.policy;
    this.#log = options.log ?? stderrLogger;
  }

  /** Re-reads every root. Concurrent calls share one read. */
  scan(): Promise<InventoryChange> {
    this.#scanInFlight ??= this.#scan().finally(() => {
      this.#scanInFlight = null;
    });
    return this.#scanInFlight;
  }

  /** All devices, sorted by address. */
  list(): PciDevice[] {
    return [...this.#devices.values()];
  }

  /** Accepts any case, and "bb:dd.f" for domain 0000. */
  get(address: string): PciDevice | undefined {
    const canonical = normalizePciAddress(address);
    return canonical === null ? undefined : this.#devices.get(canonical);
  }

  /**
   * Scans every `intervalMs` after the previous scan ends, the first one `intervalMs` from
   * now (the agent has just scanned at start); calls `onChange` only when something was
   * added, removed or changed.
   */
  startPeriodic(intervalMs: number, onChange: (change: InventoryChange) => void): void {
    this.#stopTimer();
    const generation = ++this.#generation;
    const active = () => generation === this.#generation;
    const tick = async () => {
      this.#timer = null;
      try {
        const change = await this.scan();
        if (active() && !isEmptyChange(change)) onChange(change);
      } catch (error) {
        this.#log.log("warn", "periodic device scan failed", { error: String(error) });
      }
      if (active()) this.#timer = setTimeout(tick, intervalMs);
    };
    this.#timer = setTimeout(tick, intervalMs);
  }

  /** Stops periodic scanning; resolves once a scan already under way has finished. */
  async stop(): Promise<void> {
    this.#generation++;
    this.#stopTimer();
    await this.#scanInFlight?.catch(() => {});
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #readAll(): Promise<Map<string, PciDevice>> {
    const found = new Map<string, PciDevice>();
    // Real roots first: a simulated device never hides a real one.
    const roots = [
      ...this.#roots.filter((r) => !r.simulated),
      ...this.#roots.filter((r) => r.simulated),
    ];
    for (const root of roots) {
      let entries;
      try {
        entries = await listSysfsDevices(root.path);
      } catch (error) {
        // Deno 2.9 opens /sys only under --allow-all (the narrow `deno task start` flags
        // skip the real devices; the deployment files grant it): say so plainly.
        const why = error instanceof Deno.errors.NotCapable
          ? "Deno reads /sys only with --allow-all; real devices are not listed " +
            "(the simulated host is unaffected)"
          : String(error);
        this.#warnOnce(`root:${root.path}`, "warn", "cannot read a sysfs root", {
          root: root.path,
          error: why,
        });
        continue;
      }
      const devices = await Promise.all(entries.map((e) => readSysfsDevice(e, root.simulated)));
      for (const facts of devices) {
        if (facts === null) continue;
        const first = found.get(facts.address);
        if (first !== undefined) {
          if (facts.simulated && !first.simulated) {
            this.#warnOnce(
              `shadow:${facts.sysfsPath}`,
              "error",
              "simulated device refused: a real device has its address",
              {
                address: facts.address,
                simulated: facts.sysfsPath,
                real: first.sysfsPath,
                fix: "give the simulated device an address no real device has",
              },
            );
          } else {
            this.#warnOnce(`dup:${facts.sysfsPath}`, "warn", "device ignored; already found", {
              address: facts.address,
              ignored: facts.sysfsPath,
              found: first.sysfsPath,
            });
          }
          continue;
        }
        found.set(facts.address, this.#policy.apply(facts));
      }
    }
    return new Map([...found.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  async #scan(): Promise<InventoryChange> {
    const next = await this.#readAll();
    const previous = this.#devices;
    const change: InventoryChange = { added: [], removed: [], changed: [] };
    for (const [address, device] of next) {
      const before = previous.get(address);
      if (before === undefined) change.added.push(address);
      else if (identityOfInterest(before) !== identityOfInterest(device)) {
        change.changed.push(address);
      }
    }
    for (const address of previous.keys()) {
      if (!next.has(address)) change.removed.push(address);
    }
    change.removed.sort();
    this.#devices = next;
    return change;
  }

  #warnOnce(key: string, level: Level, msg: string, fields: Fields): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#log.log(level, msg, fields);
  }
}
