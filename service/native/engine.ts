// The binding to the native data plane (native/README.md, ABI v1). This is the only module
// that knows the C ABI; everything per trigger stays on the native side, and TypeScript only
// makes control calls and reads statistics as snapshots.
import { fileURLToPath } from "node:url";
import { Errno, NativeError } from "./errno.ts";

const ABI_VERSION = 1;

const symbols = {
  ioeventd_abi_version: { parameters: [], result: "u32" },
  ioeventd_engine_open: { parameters: ["u32", "u32", "u32", "u32"], result: "i64" },
  ioeventd_engine_close: { parameters: ["u64"], result: "i32" },
  ioeventd_source_acquire: { parameters: ["i32", "i32", "u64", "u64", "buffer"], result: "i64" },
  ioeventd_source_close: { parameters: ["i32"], result: "i32" },
  ioeventd_register: {
    parameters: ["u64", "buffer", "u64", "u32", "u64", "i32", "i32", "u64"],
    result: "i64",
  },
  ioeventd_unregister: { parameters: ["u64", "u64"], result: "i32" },
  ioeventd_stats_registrations: { parameters: ["u64", "buffer", "u64"], result: "i64" },
  ioeventd_histogram_bounds: { parameters: ["buffer", "u64"], result: "i64" },
  ioeventd_stats_workers: { parameters: ["u64", "buffer", "u64"], result: "i64" },
  ioeventd_engine_info: { parameters: ["u64", "buffer", "u64"], result: "i64" },
  ioeventd_events_wait: {
    parameters: ["u64", "buffer", "u64", "i32"],
    result: "i64",
    nonblocking: true,
  },
  ioeventd_eventfd_create: { parameters: ["u32"], result: "i32" },
  ioeventd_eventfd_signal: { parameters: ["i32", "u64"], result: "i32" },
  // VFIO additions to ABI v1 (optional: an older plugin without them still loads).
  ioeventd_vfio_open: { parameters: ["buffer"], result: "i32", optional: true },
  ioeventd_vfio_acquire: { parameters: ["i32", "i32"], result: "i32", optional: true },
  ioeventd_vfio_region_info: {
    parameters: ["i32", "u32", "buffer"],
    result: "i32",
    optional: true,
  },
  ioeventd_kernel_ioeventfd: {
    parameters: ["i32", "u32", "u64", "u32", "u64", "i32"],
    result: "i32",
    optional: true,
  },
  ioeventd_register_vfio: {
    parameters: ["u64", "i32", "u32", "u64", "u32", "u64", "i32", "i32", "u64", "u32"],
    result: "i64",
    optional: true,
  },
  ioeventd_registration_backend: { parameters: ["u64", "u64"], result: "i32", optional: true },
  ioeventd_vfio_probe: { parameters: [], result: "u32", optional: true },
  ioeventd_process_start_time: { parameters: ["i32"], result: "i64", optional: true },
  // Sharding, pinning, batches (optional too: native/README.md, "ABI v1 additions").
  ioeventd_engine_open2: {
    parameters: ["u32", "u32", "u32", "u32", "u32", "buffer", "u64"],
    result: "i64",
    optional: true,
  },
  ioeventd_register_batch: {
    parameters: ["u64", "buffer", "u64", "buffer", "u64"],
    result: "i64",
    optional: true,
  },
  ioeventd_unregister_batch: {
    parameters: ["u64", "buffer", "u64"],
    result: "i64",
    optional: true,
  },
  ioeventd_registration_worker: { parameters: ["u64", "u64"], result: "i32", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;

type Library = Deno.DynamicLibrary<typeof symbols>["symbols"];

/** Where the plugin is: $IOEVENTD_NATIVE_LIB, else the cargo release build of this tree. */
export function nativeLibraryPath(): string {
  return Deno.env.get("IOEVENTD_NATIVE_LIB") ??
    fileURLToPath(
      new URL("../../native/target/release/libioeventd_native.so", import.meta.url),
    );
}

let library: Library | null = null;

function lib(): Library {
  if (library === null) {
    const opened = Deno.dlopen(nativeLibraryPath(), symbols).symbols;
    const abi = opened.ioeventd_abi_version();
    if (abi !== ABI_VERSION) {
      throw new Error(`native plugin ABI ${abi}, this agent speaks ${ABI_VERSION}`);
    }
    library = opened;
  }
  return library;
}

/** Turns a native return value into a number, throwing the errno of a negative one. */
function check(op: string, value: number | bigint): number {
  const n = Number(value);
  if (n < 0) throw new NativeError(op, -n);
  return n;
}

function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** A function the plugin may lack (an older build): ENOSYS when it does. */
function optional<T>(op: string, f: T | null | undefined): T {
  if (f === null || f === undefined) throw new NativeError(op, 38 /* ENOSYS */);
  return f;
}

/**
 * Who performs the write of an ioeventfd: the engine through an mmap of a sysfs
 * `resourceN` ("user-mmap") or of a VFIO BAR region ("vfio-mmap"), or the kernel itself
 * (VFIO_DEVICE_IOEVENTFD, "kernel"). Codes 1, 2, 3 in the ABI.
 */
export type Backend = "user-mmap" | "vfio-mmap" | "kernel";
export const BACKENDS: readonly Backend[] = ["user-mmap", "vfio-mmap", "kernel"];

/**
 * VFIO backend selection: "auto" asks the kernel first and falls back to "vfio-mmap" where
 * the kernel refuses for a reason the engine does not share (its 1000-per-device limit, its
 * 8-byte rule, no support); "user" is vfio-mmap only; "kernel" returns the kernel's refusal.
 */
export type VfioMode = "auto" | "user" | "kernel";
const VFIO_MODES: Record<VfioMode, number> = { auto: 0, user: 2, kernel: 3 };

export interface VfioRegistrationRequest {
  /** A VFIO device fd of this process (not taken over). */
  vfioFd: number;
  /** BAR index 0..5 (= the VFIO region index). */
  bar: number;
  offset: bigint;
  width: number;
  data: bigint;
  /** A local eventfd; the engine owns it once registerVfio succeeds. */
  fd: number;
  pid: number;
  pidStart: bigint;
  mode: VfioMode;
}

export interface VfioRegion {
  size: bigint;
  /** Offset of the region within the device fd. */
  offset: bigint;
  flags: number;
  mmap: boolean;
}

/** Opens the vfio-pci device at `pciAddress` (container + group): its device fd. */
export function openVfioDevice(pciAddress: string): number {
  const l = lib();
  return check("vfio_open", optional("vfio_open", l.ioeventd_vfio_open)(cString(pciAddress)));
}

/** Duplicates the VFIO device fd `fd` of process `pid` (the VMM) into this process. */
export function acquireVfioDevice(pid: number, fd: number): number {
  const l = lib();
  return check("vfio_acquire", optional("vfio_acquire", l.ioeventd_vfio_acquire)(pid, fd));
}

export function vfioRegionInfo(vfioFd: number, region: number): VfioRegion {
  const out = new BigUint64Array(3);
  const l = lib();
  check(
    "vfio_region_info",
    optional("vfio_region_info", l.ioeventd_vfio_region_info)(vfioFd, region, out),
  );
  return { size: out[0], offset: out[1], flags: Number(out[2]), mmap: (out[2] & 4n) !== 0n };
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
  const l = lib();
  check(
    "kernel_ioeventfd",
    optional("kernel_ioeventfd", l.ioeventd_kernel_ioeventfd)(
      vfioFd,
      region,
      offset,
      width,
      data,
      fd,
    ),
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
  const probe = lib().ioeventd_vfio_probe;
  const bits = probe ? probe() : 0;
  const vfioContainer = (bits & 1) !== 0;
  const vfioPci = (bits & 2) !== 0;
  const backends: Backend[] = ["user-mmap"];
  if (vfioContainer && vfioPci) backends.push("vfio-mmap", "kernel");
  return { backends, vfioContainer, vfioPci };
}

export type PollMode = "block" | "busy" | "adaptive";
export const POLL_MODES: readonly PollMode[] = ["block", "busy", "adaptive"];

/**
 * How a newly watched eventfd picks its worker: "round-robin", or "device" — by a hash of
 * its BAR's device (the directory holding a resourceN file, a VFIO device's sysfs path), so
 * that all of one device's writes stay on one worker, in order.
 */
export type ShardMode = "round-robin" | "device";
export const SHARD_MODES: readonly ShardMode[] = ["round-robin", "device"];

export interface EngineOptions {
  workers: number;
  /** 0 disables the canary that feeds the dispatch-latency histogram. */
  canaryPeriodUs: number;
  pollMode: PollMode;
  /** Adaptive mode: how long a worker spins after activity before it blocks. */
  spinBudgetUs: number;
  /** Default "round-robin". */
  shard?: ShardMode;
  /**
   * CPU ids: worker i is pinned to cpus[i % cpus.length] (sched_setaffinity); empty or
   * absent: not pinned. To keep a device's writes on its NUMA node, list CPUs of that node.
   */
  cpus?: number[];
}

/** An eventfd duplicated into this process, and the identity of where it came from. */
export interface AcquiredSource {
  fd: number;
  /** Start time of the source process (clock ticks since boot): detects PID reuse. */
  startTime: bigint;
  /** The kernel's eventfd-id (+1): detects an fd number that now holds another eventfd. */
  eventfdId: bigint;
}

export interface RegistrationRequest {
  barPath: string;
  offset: bigint;
  width: number;
  data: bigint;
  /** A local fd from acquireSource; the engine owns it once register succeeds. */
  fd: number;
  /** Source process to watch for exit (0: none) and its start time. */
  pid: number;
  pidStart: bigint;
}

/** One outcome of registerMany, in the order of the requests. */
export type RegisterOutcome =
  | {
    ok: true;
    id: bigint;
    backend: Backend; /** null: served by the kernel */
    worker: number | null;
  }
  | { ok: false; error: NativeError };

/** u64 words per ioeventd_register_batch record (native/README.md). */
const BATCH_RECORD_U64S = 13;

export interface RegistrationStats {
  triggers: bigint;
  signals: bigint;
  /** Unix time in ns of the last write, 0n if none yet. */
  lastTriggerNs: bigint;
}

export interface Histogram {
  count: bigint;
  sumNs: bigint;
  /** Per-bucket counts (not cumulative); the last bucket is +Inf. */
  buckets: bigint[];
}

export interface WorkerStats {
  wakeups: bigint;
  service: Histogram;
  dispatch: Histogram;
}

export interface EngineInfo {
  workers: number;
  registrations: number;
  barMappings: number;
  watchedPids: number;
  pollMode: PollMode;
  canaryPeriodUs: number;
  alive: boolean;
  /** From here on: null with an older plugin that does not report it. */
  shard: ShardMode | null;
  /** Length of the CPU list the workers are pinned to (0: not pinned). */
  pinnedCpus: number | null;
  /** Distinct eventfds the workers watch (registrations sharing one count once). */
  watchedEventfds: number | null;
  /** Reads fall back to poll-then-read (the kernel refused RWF_NOWAIT for eventfds). */
  readFallback: boolean | null;
}

export type EngineEvent = { kind: "source-exited"; pid: number; startTime: bigint };

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
  const fn = lib().ioeventd_process_start_time;
  if (!fn) throw new NativeError("process_start_time", Errno.ENOSYS);
  const n = BigInt(fn(pid));
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

export class NativeEngine {
  #handle: bigint;
  #closed = false;
  readonly options: EngineOptions;

  private constructor(handle: bigint, options: EngineOptions) {
    this.#handle = handle;
    this.options = options;
  }

  static open(options: EngineOptions): NativeEngine {
    const mode = POLL_MODES.indexOf(options.pollMode);
    if (mode < 0) throw new Error(`unknown poll mode ${options.pollMode}`);
    const shard = SHARD_MODES.indexOf(options.shard ?? "round-robin");
    if (shard < 0) throw new Error(`unknown shard mode ${options.shard}`);
    const cpus = options.cpus ?? [];
    for (const c of cpus) {
      if (!Number.isInteger(c) || c < 0 || c > 0xffff_ffff) throw new Error(`bad CPU id ${c}`);
    }
    const l = lib();
    // The original entry point when nothing new is asked for: an older plugin still works.
    const handle = shard === 0 && cpus.length === 0
      ? check(
        "engine_open",
        l.ioeventd_engine_open(options.workers, options.canaryPeriodUs, mode, options.spinBudgetUs),
      )
      : check(
        "engine_open2",
        optional("engine_open2", l.ioeventd_engine_open2)(
          options.workers,
          options.canaryPeriodUs,
          mode,
          options.spinBudgetUs,
          shard,
          new Uint32Array(cpus),
          BigInt(cpus.length),
        ),
      );
    return new NativeEngine(BigInt(handle), options);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Duplicates fd `fd` of process `pid`; with `expect`, refuses a reused PID or fd. */
  acquireSource(
    pid: number,
    fd: number,
    expect?: { startTime: bigint; eventfdId: bigint },
  ): AcquiredSource {
    const out = new BigUint64Array(3);
    const local = check(
      "source_acquire",
      lib().ioeventd_source_acquire(pid, fd, expect?.startTime ?? 0n, expect?.eventfdId ?? 0n, out),
    );
    return { fd: local, startTime: out[0], eventfdId: out[1] };
  }

  /** Closes an acquired fd that was not handed to register. */
  releaseSource(fd: number): void {
    closeFd(fd);
  }

  /** Arms a write; returns the engine's registration id. */
  register(r: RegistrationRequest): bigint {
    const id = check(
      "register",
      lib().ioeventd_register(
        this.#handle,
        cString(r.barPath),
        r.offset,
        r.width,
        r.data,
        r.fd,
        r.pid,
        r.pidStart,
      ),
    );
    return BigInt(id);
  }

  /** Arms a write on a VFIO device's BAR; says which backend serves it. */
  registerVfio(r: VfioRegistrationRequest): { id: bigint; backend: Backend } {
    const mode = VFIO_MODES[r.mode];
    if (mode === undefined) throw new Error(`unknown VFIO mode ${r.mode}`);
    const l = lib();
    const id = check(
      "register_vfio",
      optional("register_vfio", l.ioeventd_register_vfio)(
        this.#handle,
        r.vfioFd,
        r.bar,
        r.offset,
        r.width,
        r.data,
        r.fd,
        r.pid,
        r.pidStart,
        mode,
      ),
    );
    return { id: BigInt(id), backend: this.backend(BigInt(id)) };
  }

  /** Which backend serves registration `id`. */
  backend(id: bigint): Backend {
    const l = lib();
    const code = check(
      "registration_backend",
      optional("registration_backend", l.ioeventd_registration_backend)(this.#handle, id),
    );
    return BACKENDS[code - 1] ?? "user-mmap";
  }

  /**
   * Registers many at once (journal replay, reconcile): each request as register /
   * registerVfio would (told apart by `vfioFd`), with one control operation per worker
   * instead of one per request. Outcomes in request order; a refusal affects only its own
   * request (its fd stays the caller's). ENOSYS (thrown) with a plugin without the batch.
   */
  registerMany(
    requests: readonly (RegistrationRequest | VfioRegistrationRequest)[],
  ): RegisterOutcome[] {
    const l = lib();
    const batch = optional("register_batch", l.ioeventd_register_batch);
    const recs = new BigUint64Array(requests.length * BATCH_RECORD_U64S);
    const encoder = new TextEncoder();
    const paths = new Map<string, number>();
    const chunks: Uint8Array[] = [];
    let stringsLen = 0;
    const u64 = (n: number) => BigInt.asUintN(64, BigInt(n));
    requests.forEach((r, i) => {
      const at = i * BATCH_RECORD_U64S;
      if ("vfioFd" in r) {
        const mode = VFIO_MODES[r.mode];
        if (mode === undefined) throw new Error(`unknown VFIO mode ${r.mode}`);
        recs[at] = 2n;
        recs[at + 1] = u64(r.vfioFd);
        recs[at + 2] = u64(r.bar);
        recs[at + 9] = BigInt(mode);
      } else {
        let offset = paths.get(r.barPath);
        if (offset === undefined) {
          const bytes = encoder.encode(r.barPath + "\0");
          offset = stringsLen;
          paths.set(r.barPath, offset);
          chunks.push(bytes);
          stringsLen += bytes.length;
        }
        recs[at] = 1n;
        recs[at + 1] = BigInt(offset);
      }
      recs[at + 3] = BigInt.asUintN(64, r.offset);
      recs[at + 4] = u64(r.width);
      recs[at + 5] = BigInt.asUintN(64, r.data);
      recs[at + 6] = u64(r.fd);
      recs[at + 7] = u64(r.pid);
      recs[at + 8] = BigInt.asUintN(64, r.pidStart);
    });
    const strings = new Uint8Array(stringsLen);
    let pos = 0;
    for (const c of chunks) {
      strings.set(c, pos);
      pos += c.length;
    }
    check(
      "register_batch",
      batch(this.#handle, recs, BigInt(requests.length), strings, BigInt(stringsLen)),
    );
    return requests.map((_, i): RegisterOutcome => {
      const at = i * BATCH_RECORD_U64S;
      const result = BigInt.asIntN(64, recs[at + 10]);
      if (result < 0n) return { ok: false, error: new NativeError("register", Number(-result)) };
      const worker = recs[at + 12];
      return {
        ok: true,
        id: result,
        backend: BACKENDS[Number(recs[at + 11]) - 1] ?? "user-mmap",
        worker: worker === 0xffff_ffff_ffff_ffffn ? null : Number(worker),
      };
    });
  }

  /**
   * Unregisters many at once (each a barrier, as unregister), one control operation per
   * worker: per id, null on success or its error (ENOENT unknown).
   */
  unregisterMany(ids: readonly bigint[]): (NativeError | null)[] {
    const l = lib();
    const batch = optional("unregister_batch", l.ioeventd_unregister_batch);
    const recs = new BigUint64Array(ids.length * 2);
    ids.forEach((id, i) => (recs[i * 2] = id));
    check("unregister_batch", batch(this.#handle, recs, BigInt(ids.length)));
    return ids.map((_, i) => {
      const r = BigInt.asIntN(64, recs[i * 2 + 1]);
      return r < 0n ? new NativeError("unregister", Number(-r)) : null;
    });
  }

  /** Index of the worker serving `id`; null when the kernel serves it (no worker). */
  registrationWorker(id: bigint): number | null {
    const l = lib();
    const w = Number(
      optional("registration_worker", l.ioeventd_registration_worker)(this.#handle, id),
    );
    if (w === -95 /* EOPNOTSUPP: kernel-served */) return null;
    return check("registration_worker", w);
  }

  /** Barrier: when it returns, no write for `id` is in flight and none will happen again. */
  unregister(id: bigint): void {
    check("unregister", lib().ioeventd_unregister(this.#handle, id));
  }

  registrationStats(): Map<bigint, RegistrationStats> {
    let cap = 1024;
    for (;;) {
      const buf = new BigUint64Array(cap * 4);
      const total = check(
        "stats_registrations",
        lib().ioeventd_stats_registrations(this.#handle, buf, BigInt(cap)),
      );
      if (total > cap) {
        cap = total + 64; // registrations were added between the calls
        continue;
      }
      const stats = new Map<bigint, RegistrationStats>();
      for (let i = 0; i < total; i++) {
        stats.set(buf[i * 4], {
          triggers: buf[i * 4 + 1],
          signals: buf[i * 4 + 2],
          lastTriggerNs: buf[i * 4 + 3],
        });
      }
      return stats;
    }
  }

  workerStats(): WorkerStats[] {
    const buckets = histogramBoundsNs().length + 1;
    const perWorker = 1 + 2 * (2 + buckets);
    const buf = new BigUint64Array(perWorker * Math.max(1, this.options.workers));
    const needed = check(
      "stats_workers",
      lib().ioeventd_stats_workers(this.#handle, buf, BigInt(buf.length)),
    );
    if (needed > buf.length) throw new Error(`stats_workers needs ${needed} words`);
    const workers: WorkerStats[] = [];
    for (let at = 0; at + perWorker <= needed; at += perWorker) {
      const histogram = (from: number): Histogram => ({
        count: buf[from],
        sumNs: buf[from + 1],
        buckets: Array.from(buf.subarray(from + 2, from + 2 + buckets)),
      });
      workers.push({
        wakeups: buf[at],
        service: histogram(at + 1),
        dispatch: histogram(at + 1 + 2 + buckets),
      });
    }
    return workers;
  }

  info(): EngineInfo {
    const buf = new BigUint64Array(16);
    const n = check(
      "engine_info",
      lib().ioeventd_engine_info(this.#handle, buf, BigInt(buf.length)),
    );
    const at = (i: number) => (i < n ? Number(buf[i]) : null);
    return {
      workers: Number(buf[0]),
      registrations: Number(buf[1]),
      barMappings: Number(buf[2]),
      watchedPids: Number(buf[3]),
      pollMode: POLL_MODES[Number(buf[4])] ?? "block",
      canaryPeriodUs: Number(buf[5]),
      alive: buf[6] === 1n,
      shard: n > 7 ? SHARD_MODES[Number(buf[7])] ?? null : null,
      pinnedCpus: at(8),
      watchedEventfds: at(9),
      readFallback: n > 10 ? buf[10] === 1n : null,
    };
  }

  /** Engine events (source processes exiting) until the engine is closed. */
  async *events(): AsyncGenerator<EngineEvent> {
    const buf = new BigUint64Array(64 * 4);
    while (!this.#closed) {
      const n = Number(
        await lib().ioeventd_events_wait(this.#handle, buf, BigInt(64), 250),
      );
      if (n < 0) return; // closed
      for (let i = 0; i < n; i++) {
        if (buf[i * 4] === 1n) {
          yield { kind: "source-exited", pid: Number(buf[i * 4 + 1]), startTime: buf[i * 4 + 2] };
        }
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    check("engine_close", lib().ioeventd_engine_close(this.#handle));
  }
}
