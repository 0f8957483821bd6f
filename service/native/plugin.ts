// Loading the native plugin (native/README.md, ABI v3): its symbols, the version and
// record-layout checks made once when it is opened, and the two conversions every call
// uses. Only service/native/ imports this module.
import { fileURLToPath } from "node:url";
import { layoutDifferences } from "./abi_layout.ts";
import { NativeError } from "./errno.ts";

const ABI_VERSION = 3;

const symbols = {
  ioeventd_abi_version: { parameters: [], result: "u32" },
  ioeventd_abi_layout: { parameters: ["buffer", "u64"], result: "i64" },
  ioeventd_engine_open: {
    parameters: ["u32", "u32", "u32", "u32", "u32", "buffer", "u64"],
    result: "i64",
  },
  ioeventd_engine_close: { parameters: ["u64"], result: "i32" },
  ioeventd_source_acquire: { parameters: ["i32", "i32", "u64", "u64", "buffer"], result: "i64" },
  ioeventd_source_acquire_many: {
    parameters: ["i32", "u64", "buffer", "u64", "buffer"],
    result: "i64",
  },
  ioeventd_source_close: { parameters: ["i32"], result: "i32" },
  ioeventd_register: {
    parameters: ["u64", "buffer", "u64", "u32", "u64", "i32", "i32", "u64"],
    result: "i64",
  },
  ioeventd_unregister: { parameters: ["u64", "u64", "buffer"], result: "i32" },
  ioeventd_register_batch: {
    parameters: ["u64", "buffer", "u64", "buffer", "u64"],
    result: "i64",
  },
  ioeventd_unregister_batch: { parameters: ["u64", "buffer", "u64"], result: "i64" },
  ioeventd_registration_worker: { parameters: ["u64", "u64"], result: "i32" },
  ioeventd_registration_backend: { parameters: ["u64", "u64"], result: "i32" },
  ioeventd_stats_registrations: { parameters: ["u64", "buffer", "u64"], result: "i64" },
  ioeventd_stats_of: { parameters: ["u64", "buffer", "u64"], result: "i64" },
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
  ioeventd_vfio_open: { parameters: ["buffer"], result: "i32" },
  ioeventd_vfio_acquire: { parameters: ["i32", "i32"], result: "i32" },
  ioeventd_vfio_region_info: { parameters: ["i32", "u32", "buffer"], result: "i32" },
  ioeventd_kernel_ioeventfd: {
    parameters: ["i32", "u32", "u64", "u32", "u64", "i32"],
    result: "i32",
  },
  ioeventd_register_vfio: {
    parameters: ["u64", "i32", "u32", "u64", "u32", "u64", "i32", "i32", "u64", "u32"],
    result: "i64",
  },
  ioeventd_vfio_probe: { parameters: [], result: "u32" },
  ioeventd_process_start_time: { parameters: ["i32"], result: "i64" },
  ioeventd_process_stats: { parameters: ["buffer"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

export type Library = Deno.DynamicLibrary<typeof symbols>["symbols"];

/** Where the plugin is: $IOEVENTD_NATIVE_LIB, else the cargo release build of this tree. */
export function nativeLibraryPath(): string {
  return Deno.env.get("IOEVENTD_NATIVE_LIB") ??
    fileURLToPath(
      new URL("../../native/target/release/libioeventd_native.so", import.meta.url),
    );
}

let library: Library | null = null;

/** The plugin's record layout table (`ioeventd_abi_layout`), as text. */
function nativeLayout(l: Library): string {
  const len = check("abi_layout", l.ioeventd_abi_layout(null, 0n));
  const buf = new Uint8Array(len);
  check("abi_layout", l.ioeventd_abi_layout(buf, BigInt(len)));
  return new TextDecoder().decode(buf);
}

export function lib(): Library {
  if (library === null) {
    const opened = Deno.dlopen(nativeLibraryPath(), symbols).symbols;
    const abi = opened.ioeventd_abi_version();
    if (abi !== ABI_VERSION) {
      throw new Error(`native plugin ABI ${abi}, this agent speaks ${ABI_VERSION}`);
    }
    const differences = layoutDifferences(nativeLayout(opened));
    if (differences.length > 0) {
      throw new Error(`native plugin record layout differs:\n${differences.join("\n")}`);
    }
    library = opened;
  }
  return library;
}

/** The loaded plugin's record layout table (test/native asserts it equals abi_layout.ts). */
export function pluginLayoutTable(): string {
  const l = library ?? Deno.dlopen(nativeLibraryPath(), symbols).symbols;
  return nativeLayout(l);
}

/** Turns a native return value into a number, throwing the errno of a negative one. */
export function check(op: string, value: number | bigint): number {
  const n = Number(value);
  if (n < 0) throw new NativeError(op, -n);
  return n;
}

export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
