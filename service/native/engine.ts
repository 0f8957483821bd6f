// The binding to the native data plane (native/README.md, ABI v3). This is the only module
// that knows the C ABI; everything per trigger stays on the native side, and TypeScript only
// makes control calls and reads statistics as snapshots. NativeEngine implements the
// registry's port (service/registry/data_plane.ts).
import type {
  AcquiredSource,
  ArmedRegistration,
  Backend,
  DataPlane,
  RegisterOutcome,
  RegistrationRequest,
  RegistrationStats,
  SourceIdentity,
  UnregisterOutcome,
  VfioMode,
  VfioRegistrationRequest,
} from "../registry/data_plane.ts";
import { BACKENDS } from "../registry/data_plane.ts";
import { LAYOUT } from "./abi_layout.ts";
import { Errno, NativeError } from "./errno.ts";
import { acquireVfioDevice, closeFd, kernelIoeventfd, processStartTime } from "./host.ts";
import { check, cString, lib } from "./plugin.ts";
import {
  backendOf,
  decodeRegisterBatch,
  encodeRegisterBatch,
  type NativeRegisterOutcome,
  VFIO_MODES,
} from "./register_batch.ts";

// The port's types, for the modules that still import them from here.
export type {
  AcquiredSource,
  Backend,
  RegisterOutcome,
  RegistrationRequest,
  RegistrationStats,
  UnregisterOutcome,
  VfioMode,
  VfioRegistrationRequest,
};
export { BACKENDS };
export {
  acquireVfioDevice,
  closeFd,
  createEventfd,
  detectBackends,
  histogramBoundsNs,
  type HostBackends,
  kernelIoeventfd,
  openVfioDevice,
  processStartTime,
  type ProcessStats,
  processStats,
  signalEventfd,
  type VfioRegion,
  vfioRegionInfo,
} from "./host.ts";
export { nativeLibraryPath, pluginLayoutTable } from "./plugin.ts";
export type { NativeRegisterOutcome } from "./register_batch.ts";

/** An UnregisterOutcome whose error is the plugin's errno (what unregisterMany returns). */
export type NativeUnregisterOutcome =
  | Extract<UnregisterOutcome, { ok: true }>
  | { ok: false; error: NativeError };

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
  shard: ShardMode;
  /** Length of the CPU list the workers are pinned to (0: not pinned). */
  pinnedCpus: number;
  /** Distinct eventfds the workers watch (registrations sharing one count once). */
  watchedEventfds: number;
  /** Reads fall back to poll-then-read (the kernel refused RWF_NOWAIT for eventfds). */
  readFallback: boolean;
}

export type EngineEvent = { kind: "source-exited"; pid: number; startTime: bigint };

/** The port's counters from three words of the `counters` layout, starting at `at`. */
function countersAt(words: BigUint64Array, at: number): RegistrationStats {
  const c = LAYOUT.counters;
  return {
    triggers: words[at + c.triggers],
    signals: words[at + c.signals],
    lastTriggerNs: words[at + c.last_trigger_unix_ns],
  };
}

export class NativeEngine implements DataPlane {
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
    const handle = check(
      "engine_open",
      lib().ioeventd_engine_open(
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

  /** The plugin's handle of this engine (the hand-over calls, service/native/succession.ts). */
  get handle(): bigint {
    return this.#handle;
  }

  acquireSource(pid: number, fd: number, expect?: SourceIdentity): AcquiredSource {
    const w = LAYOUT.source;
    const out = new BigUint64Array(w.len);
    const local = check(
      "source_acquire",
      lib().ioeventd_source_acquire(pid, fd, expect?.startTime ?? 0n, expect?.eventfdId ?? 0n, out),
    );
    return { fd: local, startTime: out[w.start_time], eventfdId: out[w.eventfd_id] };
  }

  acquireSources(
    pid: number,
    wanted: readonly { fd: number; eventfdId: bigint }[],
    expectStart: bigint,
  ): ({ ok: true; source: AcquiredSource } | { ok: false; error: NativeError })[] {
    const w = LAYOUT.acquire;
    const recs = new BigUint64Array(wanted.length * w.len);
    wanted.forEach((x, i) => {
      recs[i * w.len + w.fd] = BigInt.asUintN(64, BigInt(x.fd));
      recs[i * w.len + w.expect_eventfd_id] = x.eventfdId;
    });
    const start = new BigUint64Array(1);
    check(
      "source_acquire_many",
      lib().ioeventd_source_acquire_many(pid, expectStart, recs, BigInt(wanted.length), start),
    );
    return wanted.map((_, i) => {
      const r = BigInt.asIntN(64, recs[i * w.len + w.result]);
      if (r < 0n) return { ok: false, error: new NativeError("source_acquire", Number(-r)) };
      return {
        ok: true,
        source: { fd: Number(r), startTime: start[0], eventfdId: recs[i * w.len + w.eventfd_id] },
      };
    });
  }

  releaseSource(fd: number): void {
    closeFd(fd);
  }

  acquireVfioDevice(pid: number, fd: number): number {
    return acquireVfioDevice(pid, fd);
  }

  releaseVfioDevice(fd: number): void {
    closeFd(fd);
  }

  kernelIoeventfd(
    vfioFd: number,
    bar: number,
    offset: bigint,
    width: number,
    data: bigint,
    fd: number,
  ): void {
    kernelIoeventfd(vfioFd, bar, offset, width, data, fd);
  }

  processStartTime(pid: number): bigint | null {
    return processStartTime(pid);
  }

  register(r: RegistrationRequest): ArmedRegistration {
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
    return { id: BigInt(id), backend: "user-mmap" };
  }

  registerVfio(r: VfioRegistrationRequest): ArmedRegistration {
    const mode = VFIO_MODES[r.mode];
    if (mode === undefined) throw new Error(`unknown VFIO mode ${r.mode}`);
    const id = BigInt(check(
      "register_vfio",
      lib().ioeventd_register_vfio(
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
    ));
    return { id, backend: this.backend(id) };
  }

  /** Which backend serves registration `id`. */
  backend(id: bigint): Backend {
    return backendOf(
      check("registration_backend", lib().ioeventd_registration_backend(this.#handle, id)),
    );
  }

  registerMany(
    requests: readonly (RegistrationRequest | VfioRegistrationRequest)[],
  ): NativeRegisterOutcome[] {
    const batch = encodeRegisterBatch(requests);
    check(
      "register_batch",
      lib().ioeventd_register_batch(
        this.#handle,
        batch.recs,
        BigInt(requests.length),
        batch.strings,
        BigInt(batch.strings.length),
      ),
    );
    return decodeRegisterBatch(batch.recs, requests.length);
  }

  unregister(id: bigint): RegistrationStats {
    const out = new BigUint64Array(LAYOUT.counters.len);
    check("unregister", lib().ioeventd_unregister(this.#handle, id, out));
    return countersAt(out, 0);
  }

  unregisterMany(ids: readonly bigint[]): NativeUnregisterOutcome[] {
    const w = LAYOUT.unregister;
    const recs = new BigUint64Array(ids.length * w.len);
    ids.forEach((id, i) => (recs[i * w.len + w.id] = id));
    check(
      "unregister_batch",
      lib().ioeventd_unregister_batch(this.#handle, recs, BigInt(ids.length)),
    );
    return ids.map((_, i): NativeUnregisterOutcome => {
      const r = BigInt.asIntN(64, recs[i * w.len + w.result]);
      if (r < 0n) return { ok: false, error: new NativeError("unregister", Number(-r)) };
      return { ok: true, final: countersAt(recs, i * w.len + w.triggers) };
    });
  }

  /** Index of the worker serving `id`; null when the kernel serves it (no worker). */
  registrationWorker(id: bigint): number | null {
    const w = lib().ioeventd_registration_worker(this.#handle, id);
    if (w === -Errno.EOPNOTSUPP) return null; // kernel-served
    return check("registration_worker", w);
  }

  registrationStats(ids?: readonly bigint[]): Map<bigint, RegistrationStats> {
    const w = LAYOUT.stats;
    if (ids !== undefined) {
      // Just these: O(ids), not a snapshot of every registration.
      const buf = new BigUint64Array(Math.max(1, ids.length) * w.len);
      ids.forEach((id, i) => (buf[i * w.len + w.id] = id));
      check("stats_of", lib().ioeventd_stats_of(this.#handle, buf, BigInt(ids.length)));
      const stats = new Map<bigint, RegistrationStats>();
      for (let i = 0; i < ids.length; i++) {
        if (buf[i * w.len + w.id] !== 0n) {
          stats.set(ids[i], countersAt(buf, i * w.len + w.triggers));
        }
      }
      return stats;
    }
    let cap = 1024;
    for (;;) {
      const buf = new BigUint64Array(cap * w.len);
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
        stats.set(buf[i * w.len + w.id], countersAt(buf, i * w.len + w.triggers));
      }
      return stats;
    }
  }

  workerStats(): WorkerStats[] {
    const w = LAYOUT.worker;
    const h = LAYOUT.histogram;
    const buckets = h.len - h.buckets;
    const buf = new BigUint64Array(w.len * Math.max(1, this.options.workers));
    const needed = check(
      "stats_workers",
      lib().ioeventd_stats_workers(this.#handle, buf, BigInt(buf.length)),
    );
    if (needed > buf.length) throw new Error(`stats_workers needs ${needed} words`);
    const histogram = (from: number): Histogram => ({
      count: buf[from + h.count],
      sumNs: buf[from + h.sum_ns],
      buckets: Array.from(buf.subarray(from + h.buckets, from + h.buckets + buckets)),
    });
    const workers: WorkerStats[] = [];
    for (let at = 0; at + w.len <= needed; at += w.len) {
      workers.push({
        wakeups: buf[at + w.wakeups],
        service: histogram(at + w.service),
        dispatch: histogram(at + w.dispatch),
      });
    }
    return workers;
  }

  info(): EngineInfo {
    const w = LAYOUT.info;
    const buf = new BigUint64Array(w.len);
    check("engine_info", lib().ioeventd_engine_info(this.#handle, buf, BigInt(buf.length)));
    const at = (i: number) => Number(buf[i]);
    return {
      workers: at(w.workers),
      registrations: at(w.registrations),
      barMappings: at(w.bar_mappings),
      watchedPids: at(w.watched_pids),
      pollMode: POLL_MODES[at(w.poll_mode)] ?? "block",
      canaryPeriodUs: at(w.canary_period_us),
      alive: buf[w.alive] === 1n,
      shard: SHARD_MODES[at(w.shard)] ?? "round-robin",
      pinnedCpus: at(w.pinned_cpus),
      watchedEventfds: at(w.watched_eventfds),
      readFallback: buf[w.read_fallback] === 1n,
    };
  }

  /** Engine events (source processes exiting) until the engine is closed. */
  async *events(): AsyncGenerator<EngineEvent> {
    const w = LAYOUT.event;
    const cap = 64;
    const buf = new BigUint64Array(cap * w.len);
    while (!this.#closed) {
      const n = Number(await lib().ioeventd_events_wait(this.#handle, buf, BigInt(cap), 250));
      if (n < 0) return; // closed
      for (let i = 0; i < n; i++) {
        const at = i * w.len;
        if (buf[at + w.kind] === 1n) {
          yield {
            kind: "source-exited",
            pid: Number(buf[at + w.pid]),
            startTime: buf[at + w.start_time],
          };
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
