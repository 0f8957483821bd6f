// The records of ioeventd_register_batch (layout `register`, native/src/abi_layout.rs):
// encoding a batch of registration requests into them (paths deduplicated into one string
// buffer), and reading each record's outcome back.
import type {
  Backend,
  RegisterOutcome,
  RegistrationRequest,
  VfioMode,
  VfioRegistrationRequest,
} from "../registry/data_plane.ts";
import { BACKENDS } from "../registry/data_plane.ts";
import { LAYOUT } from "./abi_layout.ts";
import { NativeError } from "./errno.ts";

/** A RegisterOutcome whose error is the plugin's errno (what registerMany returns). */
export type NativeRegisterOutcome =
  | Extract<RegisterOutcome, { ok: true }>
  | { ok: false; error: NativeError };

/** The ABI's VFIO mode numbers (= the backend codes; auto is 0). */
export const VFIO_MODES: Record<VfioMode, number> = { auto: 0, "vfio-mmap": 2, kernel: 3 };

/** The backend of an ABI backend code (1, 2, 3). */
export function backendOf(code: number | bigint): Backend {
  const b = BACKENDS[Number(code) - 1];
  if (b === undefined) throw new Error(`unknown backend code ${code}`);
  return b;
}

/** A batch ready for ioeventd_register_batch: the records and the NUL-terminated paths. */
export interface RegisterBatch {
  recs: BigUint64Array;
  strings: Uint8Array;
}

/** Encodes `requests` as `register` records; each distinct BAR path is stored once. */
export function encodeRegisterBatch(
  requests: readonly (RegistrationRequest | VfioRegistrationRequest)[],
): RegisterBatch {
  const w = LAYOUT.register;
  const recs = new BigUint64Array(requests.length * w.len);
  const encoder = new TextEncoder();
  const paths = new Map<string, number>();
  const chunks: Uint8Array[] = [];
  let stringsLen = 0;
  const u64 = (n: number) => BigInt.asUintN(64, BigInt(n));
  requests.forEach((r, i) => {
    const at = i * w.len;
    if ("vfioFd" in r) {
      const mode = VFIO_MODES[r.mode];
      if (mode === undefined) throw new Error(`unknown VFIO mode ${r.mode}`);
      recs[at + w.kind] = 2n;
      recs[at + w.path_or_device] = u64(r.vfioFd);
      recs[at + w.region] = u64(r.bar);
      recs[at + w.mode] = BigInt(mode);
    } else {
      let offset = paths.get(r.barPath);
      if (offset === undefined) {
        const bytes = encoder.encode(r.barPath + "\0");
        offset = stringsLen;
        paths.set(r.barPath, offset);
        chunks.push(bytes);
        stringsLen += bytes.length;
      }
      recs[at + w.kind] = 1n;
      recs[at + w.path_or_device] = BigInt(offset);
    }
    recs[at + w.offset] = BigInt.asUintN(64, r.offset);
    recs[at + w.width] = u64(r.width);
    recs[at + w.data] = BigInt.asUintN(64, r.data);
    recs[at + w.efd] = u64(r.fd);
    recs[at + w.pid] = u64(r.pid);
    recs[at + w.pid_start] = BigInt.asUintN(64, r.pidStart);
  });
  const strings = new Uint8Array(stringsLen);
  let pos = 0;
  for (const c of chunks) {
    strings.set(c, pos);
    pos += c.length;
  }
  return { recs, strings };
}

/** The outcome of each of the `count` records, as the plugin wrote them back. */
export function decodeRegisterBatch(recs: BigUint64Array, count: number): NativeRegisterOutcome[] {
  const w = LAYOUT.register;
  return Array.from({ length: count }, (_, i): NativeRegisterOutcome => {
    const at = i * w.len;
    const result = BigInt.asIntN(64, recs[at + w.result]);
    if (result < 0n) return { ok: false, error: new NativeError("register", Number(-result)) };
    const worker = recs[at + w.worker];
    return {
      ok: true,
      id: result,
      backend: backendOf(recs[at + w.backend]),
      worker: worker === 0xffff_ffff_ffff_ffffn ? null : Number(worker),
    };
  });
}
