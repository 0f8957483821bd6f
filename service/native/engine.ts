// The binding to the native data plane (native/README.md, ABI v1). This is the only module
// that knows the C ABI; everything per trigger stays on the native side, and TypeScript only
// makes control calls and reads statistics as snapshots.
import { fileURLToPath } from "node:url";
import { NativeError } from "./errno.ts";

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

export type PollMode = "block" | "busy" | "adaptive";
export const POLL_MODES: readonly PollMode[] = ["block", "busy", "adaptive"];

export interface EngineOptions {
  workers: number;
  /** 0 disables the canary that feeds the dispatch-latency histogram. */
  canaryPeriodUs: number;
  pollMode: PollMode;
  /** Adaptive mode: how long a worker spins after activity before it blocks. */
  spinBudgetUs: number;
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
}

export type EngineEvent = { kind: "source-exited"; pid: number; startTime: bigint };

/** Bucket upper bounds in ns shared by every native histogram (the +Inf bucket excluded). */
export function histogramBoundsNs(): bigint[] {
  const buf = new BigUint64Array(64);
  const n = check("histogram_bounds", lib().ioeventd_histogram_bounds(buf, BigInt(buf.length)));
  return Array.from(buf.subarray(0, n));
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
    const handle = check(
      "engine_open",
      lib().ioeventd_engine_open(
        options.workers,
        options.canaryPeriodUs,
        mode,
        options.spinBudgetUs,
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
    check("engine_info", lib().ioeventd_engine_info(this.#handle, buf, BigInt(buf.length)));
    return {
      workers: Number(buf[0]),
      registrations: Number(buf[1]),
      barMappings: Number(buf[2]),
      watchedPids: Number(buf[3]),
      pollMode: POLL_MODES[Number(buf[4])] ?? "block",
      canaryPeriodUs: Number(buf[5]),
      alive: buf[6] === 1n,
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
