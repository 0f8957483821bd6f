// What the plugin offers besides an engine: VFIO device descriptors and regions, the raw
// kernel ioeventfd, host detection, process start times, eventfds for tests and benchmarks,
// the histogram bounds. engine.ts re-exports all of it.
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
