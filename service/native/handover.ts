// The hand-over intake (native/src/handover/, native/README.md "Hand-over intake") and the
// process facts the source binding reads, over the C ABI. The plugin owns the socket: Deno
// has no SCM_RIGHTS. The symbols are opened beside plugin.ts's (the same library, after its
// version and layout checks); the record word orders are native/src/abi/handover.rs's.
import type {
  HandedOver,
  HandoverKind,
  IntakePort,
  ReceivedHandle,
} from "../registry/handover_port.ts";
import { Errno, NativeError } from "./errno.ts";
import { check, cString, lib, nativeLibraryPath } from "./plugin.ts";

const symbols = {
  ioeventd_handover_open: { parameters: ["buffer", "u32", "u32", "u32", "u32"], result: "i64" },
  ioeventd_handover_close: { parameters: ["u64"], result: "i32" },
  ioeventd_handover_take: {
    parameters: ["u64", "buffer", "buffer", "u32", "buffer"],
    result: "i64",
  },
  ioeventd_handover_consume: { parameters: ["u64", "buffer"], result: "i32" },
  ioeventd_handover_received: { parameters: ["u64", "buffer", "u64"], result: "i64" },
  ioeventd_handover_stats: { parameters: ["u64", "buffer"], result: "i32" },
  ioeventd_handover_send: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "u32", "buffer", "u64"],
    result: "i64",
  },
  ioeventd_process_info: { parameters: ["i32", "buffer", "buffer", "u64"], result: "i64" },
  ioeventd_peer_cred: { parameters: ["i32", "buffer"], result: "i32" },
  ioeventd_tcp_peer_uid: { parameters: ["u32", "u32"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

type Symbols = Deno.DynamicLibrary<typeof symbols>["symbols"];
let opened: Symbols | null = null;

function sym(): Symbols {
  if (opened === null) {
    lib(); // the version and layout checks, once
    opened = Deno.dlopen(nativeLibraryPath(), symbols).symbols;
  }
  return opened;
}

/** A process as the source binding sees it (native/src/handover/process.rs). */
export interface ProcessFacts {
  uid: number;
  euid: number;
  ppid: number;
  /** Thread-group id: differs from the pid for a thread. */
  tgid: number;
  startTime: bigint;
  /** cgroup v2 path ("/kubepods.slice/…"), "" when none. */
  cgroup: string;
}

/** The facts of `pid`, or null when there is no such process. */
export function processFacts(pid: number): ProcessFacts | null {
  const out = new BigUint64Array(5);
  const buf = new Uint8Array(4096);
  const n = Number(sym().ioeventd_process_info(pid, out, buf, BigInt(buf.length)));
  if (n === -Errno.ESRCH) return null;
  check("process_info", n);
  return {
    uid: Number(out[0]),
    euid: Number(out[1]),
    ppid: Number(out[2]),
    tgid: Number(out[3]),
    startTime: out[4],
    cgroup: new TextDecoder().decode(buf.subarray(0, Math.min(n, buf.length))),
  };
}

/** SO_PEERCRED of a connected Unix socket descriptor of this process; null if not one. */
export function peerCred(fd: number): { pid: number; uid: number; gid: number } | null {
  const out = new BigUint64Array(3);
  if (sym().ioeventd_peer_cred(fd, out) < 0) return null;
  return { pid: Number(out[0]), uid: Number(out[1]), gid: Number(out[2]) };
}

/** The uid of the local client of a loopback TCP connection; null when not loopback. */
export function loopbackTcpUid(clientPort: number, serverPort: number): number | null {
  const n = Number(sym().ioeventd_tcp_peer_uid(clientPort, serverPort));
  return n < 0 ? null : n;
}

export interface IntakeOptions {
  path: string;
  /** Socket file mode (e.g. 0o666: any local process may hand over its own descriptors). */
  mode: number;
  ttlMs: number;
  maxHandles: number;
  maxPerUid: number;
}

export interface IntakeStats {
  held: number;
  accepted: number;
  refused: number;
  expired: number;
  closedFds: number;
}

/** The plugin's intake: the intake part of the registry's HandoverPort. */
export class NativeHandover implements IntakePort {
  #handle: bigint;

  private constructor(handle: bigint, readonly options: IntakeOptions) {
    this.#handle = handle;
  }

  static open(options: IntakeOptions): NativeHandover {
    const h = sym().ioeventd_handover_open(
      cString(options.path),
      options.mode,
      options.ttlMs,
      options.maxHandles,
      options.maxPerUid,
    );
    return new NativeHandover(BigInt(check("handover_open", h)), options);
  }

  take(handle: string, owner: string, kind: HandoverKind): HandedOver {
    const out = new BigUint64Array(6);
    const fd = sym().ioeventd_handover_take(
      this.#handle,
      cString(handle),
      cString(owner),
      kind === "eventfd" ? 1 : 2,
      out,
    );
    return {
      fd: check("handover_take", fd),
      sender: { pid: Number(out[0]), uid: Number(out[1]), startTime: out[2] },
      eventfdId: out[3],
      batch: Number(out[4]),
    };
  }

  consume(handle: string): void {
    const r = sym().ioeventd_handover_consume(this.#handle, cString(handle));
    if (r < 0 && -r !== Errno.ENOENT) throw new NativeError("handover_consume", -r);
  }

  received(): ReceivedHandle[] {
    const buf = new Uint8Array(64 * 1024);
    const out: ReceivedHandle[] = [];
    for (;;) {
      const n = check(
        "handover_received",
        sym().ioeventd_handover_received(this.#handle, buf, BigInt(buf.length)),
      );
      if (n === 0) return out;
      for (const line of new TextDecoder().decode(buf.subarray(0, n)).split("\n")) {
        if (!line) continue;
        const [handle, owner, kind, pid, uid, start, eventfdId, batch] = line.split(" ");
        out.push({
          handle,
          owner,
          kind: kind === "e" ? "eventfd" : "vfio",
          sender: { pid: Number(pid), uid: Number(uid), startTime: BigInt(start) },
          eventfdId: BigInt(eventfdId),
          batch: Number(batch),
        });
      }
    }
  }

  stats(): IntakeStats {
    const out = new BigUint64Array(5);
    check("handover_stats", sym().ioeventd_handover_stats(this.#handle, out));
    return {
      held: Number(out[0]),
      accepted: Number(out[1]),
      refused: Number(out[2]),
      expired: Number(out[3]),
      closedFds: Number(out[4]),
    };
  }

  close(): void {
    if (this.#handle === 0n) return;
    sym().ioeventd_handover_close(this.#handle);
    this.#handle = 0n;
  }
}

/**
 * The client side (`ioeventd_handover_send`): hands `fds` of this process over for
 * `owner`; the handles, or a NativeError whose message carries the agent's reply.
 */
export function handoverSend(
  path: string,
  owner: string,
  fds: number[],
  kinds?: string,
): string[] {
  const out = new Uint8Array(4096);
  const n = Number(
    sym().ioeventd_handover_send(
      cString(path),
      cString(owner),
      new Uint8Array(new Int32Array(fds).buffer),
      kinds ? cString(kinds) : null,
      fds.length,
      out,
      BigInt(out.length),
    ),
  );
  const reply = new TextDecoder().decode(out.subarray(0, out.indexOf(0)));
  if (n < 0) throw Object.assign(new NativeError("handover_send", -n), { reply });
  return reply.split(" ").slice(1);
}
