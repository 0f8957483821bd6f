// What the plugin offers besides an engine: VFIO device descriptors and regions, the raw
// kernel ioeventfd, host detection, process start times, the agent's own process figures,
// eventfds for tests and benchmarks, the histogram bounds. engine.ts re-exports all of it.
import type { Backend } from "../registry/data_plane.ts";
import { LAYOUT } from "./abi_layout.ts";
import { Errno, NativeError } from "./errno.ts";
import { check, cString, lib } from "./plugin.ts";

export interface VfioRegion {
  size: bigint;
  /** Offset of the region within the device fd. */
  offset: bigint;
  flags: number;
  mmap: boolean;
}

/** Opens the vfio-pci device at `pciAddress` (container + group): its device fd. */
export function openVfioDevice(pciAddress: string): number {
  return check("vfio_open", lib().ioeventd_vfio_open(cString(pciAddress)));
}

/** Duplicates the VFIO device fd `fd` of process `pid` (the VMM) into this process. */
export function acquireVfioDevice(pid: number, fd: number): number {
  return check("vfio_acquire", lib().ioeventd_vfio_acquire(pid, fd));
}

export function vfioRegionInfo(vfioFd: number, region: number): VfioRegion {
  const w = LAYOUT.region;
  const out = new BigUint64Array(w.len);
  check("vfio_region_info", lib().ioeventd_vfio_region_info(vfioFd, region, out));
  const flags = out[w.flags];
  return {
    size: out[w.size],
    offset: out[w.offset],
    flags: Number(flags),
    mmap: (flags & 4n) !== 0n,
  };
}

/** The raw VFIO_DEVICE_IOEVENTFD (fd -1 de-assigns): the kernel's rules, unfiltered. */
export function kernelIoeventfd(
  vfioFd: number,
  region: number,
  offset: bigint,
  width: number,
  data: bigint,
  fd: number,
): void {
  check(
    "kernel_ioeventfd",
    lib().ioeventd_kernel_ioeventfd(vfioFd, region, offset, width, data, fd),
  );
}

export interface HostBackends {
  /** The backends this host can serve, detected (not assumed). */
  backends: Backend[];
  /** /dev/vfio/vfio opens with API 0 and a type1 IOMMU. */
  vfioContainer: boolean;
  /** The vfio-pci driver is registered. */
  vfioPci: boolean;
}

/**
 * What this host can serve: "user-mmap" whenever the plugin loads (it maps resourceN
 * files); "vfio-mmap" and "kernel" when a VFIO container with a type1 IOMMU opens and
 * vfio-pci is registered (VFIO_DEVICE_IOEVENTFD is part of vfio-pci since Linux 4.17).
 */
export function detectBackends(): HostBackends {
  const bits = lib().ioeventd_vfio_probe();
  const vfioContainer = (bits & 1) !== 0;
  const vfioPci = (bits & 2) !== 0;
  const backends: Backend[] = ["user-mmap"];
  if (vfioContainer && vfioPci) backends.push("vfio-mmap", "kernel");
  return { backends, vfioContainer, vfioPci };
}

/** Bucket upper bounds in ns shared by every native histogram (the +Inf bucket excluded). */
export function histogramBoundsNs(): bigint[] {
  const buf = new BigUint64Array(64);
  const n = check("histogram_bounds", lib().ioeventd_histogram_bounds(buf, BigInt(buf.length)));
  return Array.from(buf.subarray(0, n));
}

/**
 * Start time of process `pid` (clock ticks since boot), as `acquireSource` records it; null
 * when there is no such process. Read natively: Deno lets TypeScript read /proc only under
 * --allow-all.
 */
export function processStartTime(pid: number): bigint | null {
  const n = BigInt(lib().ioeventd_process_start_time(pid));
  if (n === -BigInt(Errno.ESRCH)) return null;
  if (n < 0n) throw new NativeError("process_start_time", Number(-n));
  return n;
}

/** This process's figures from /proc/self; null for what the kernel did not give. */
export interface ProcessStats {
  openFds: number | null;
  maxFds: number | null;
  threads: number | null;
  virtualBytes: number | null;
  /** Clock ticks since boot. */
  startTicks: number | null;
  /** Seconds since the Unix epoch. */
  bootTime: number | null;
}

/**
 * The agent's own process figures, read by the plugin: Deno lets TypeScript read /proc only
 * under --allow-all, which `deno task start` does not grant.
 */
export function processStats(): ProcessStats {
  const p = LAYOUT.process;
  const out = new BigUint64Array(p.len);
  check("process_stats", lib().ioeventd_process_stats(out));
  const at = (i: number) => (out[i] === 0xffff_ffff_ffff_ffffn ? null : Number(out[i]));
  return {
    openFds: at(p.open_fds),
    maxFds: at(p.max_fds),
    threads: at(p.threads),
    virtualBytes: at(p.virtual_bytes),
    startTicks: at(p.start_ticks),
    bootTime: at(p.boot_time),
  };
}

/** Creates an eventfd in this process (tests and benchmarks). */
export function createEventfd(initial = 0): number {
  return check("eventfd_create", lib().ioeventd_eventfd_create(initial));
}

/** Signals an eventfd of this process; Deno has no other way to write one. */
export function signalEventfd(fd: number, value = 1n): void {
  check("eventfd_signal", lib().ioeventd_eventfd_signal(fd, value));
}

export function closeFd(fd: number): void {
  check("source_close", lib().ioeventd_source_close(fd));
}
