// The succession channel and the engine's hand-over calls (native/src/succession/,
// native/src/engine/succession.rs) over the C ABI: how a successor agent takes the data
// plane over from a running one (service/upgrade/). The plugin passes the descriptors
// (SCM_RIGHTS): Deno cannot. The symbols are opened beside plugin.ts's, after its checks.
import type { KernelAdoption } from "../registry/handover_port.ts";
import { Errno, NativeError } from "./errno.ts";
import { check, cString, lib, nativeLibraryPath } from "./plugin.ts";

const symbols = {
  ioeventd_succession_listen: { parameters: ["buffer", "u32"], result: "i32" },
  ioeventd_succession_accept: { parameters: ["i32", "i32"], result: "i32", nonblocking: true },
  ioeventd_succession_connect: { parameters: ["buffer", "u32"], result: "i32" },
  ioeventd_succession_send: {
    parameters: ["i32", "buffer", "u64", "buffer", "u64"],
    result: "i32",
  },
  ioeventd_succession_recv: {
    parameters: ["i32", "buffer", "u64", "buffer", "u64", "buffer", "i32"],
    result: "i64",
    nonblocking: true,
  },
  ioeventd_registration_fds: { parameters: ["u64", "u64", "buffer"], result: "i32" },
  ioeventd_engine_leave_kernel: { parameters: ["u64"], result: "i64" },
  ioeventd_adopt_kernel: {
    parameters: ["u64", "i32", "u32", "u64", "u32", "u64", "i32", "i32", "u64"],
    result: "i64",
  },
  ioeventd_source_close: { parameters: ["i32"], result: "i32" },
  ioeventd_sd_notify: { parameters: ["buffer"], result: "i32" },
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

/** Most descriptors one message carries (sys::MAX_FDS). */
export const MAX_FDS_PER_MESSAGE = 8;
const MAX_MESSAGE = 64 * 1024;

/** One message of the channel: its text and the descriptors that came with it (ours now). */
export interface ChannelMessage {
  text: string;
  fds: number[];
}

/** A connected end of the succession channel. */
export class SuccessionConnection {
  #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  static connect(path: string, timeoutMs: number): SuccessionConnection {
    const fd = check(
      "succession_connect",
      sym().ioeventd_succession_connect(cString(path), timeoutMs),
    );
    return new SuccessionConnection(fd);
  }

  send(text: string, fds: readonly number[] = []): void {
    const payload = new TextEncoder().encode(text);
    check(
      "succession_send",
      sym().ioeventd_succession_send(
        this.#fd,
        payload,
        BigInt(payload.length),
        new Uint32Array(fds),
        BigInt(fds.length),
      ),
    );
  }

  /** The next message, or null when the peer closed; NativeError EAGAIN past the timeout. */
  async recv(timeoutMs: number): Promise<ChannelMessage | null> {
    const buf = new Uint8Array(MAX_MESSAGE);
    const fds = new BigUint64Array(MAX_FDS_PER_MESSAGE);
    const count = new BigUint64Array(1);
    const n = Number(
      await sym().ioeventd_succession_recv(
        this.#fd,
        buf,
        BigInt(buf.length),
        fds,
        BigInt(fds.length),
        count,
        timeoutMs,
      ),
    );
    check("succession_recv", n);
    if (n === 0) return null;
    return {
      text: new TextDecoder().decode(buf.subarray(0, n)),
      fds: Array.from(fds.subarray(0, Number(count[0])), Number),
    };
  }

  close(): void {
    if (this.#fd < 0) return;
    sym().ioeventd_source_close(this.#fd);
    this.#fd = -1;
  }
}

/** The listening end, in the running agent's state directory. */
export class SuccessionListener {
  #fd: number;

  private constructor(fd: number, readonly path: string, readonly ino: number | null) {
    this.#fd = fd;
  }

  /** Listens at `path` (0600), renamed over whatever listener was there. */
  static listen(path: string): SuccessionListener {
    const fd = check("succession_listen", sym().ioeventd_succession_listen(cString(path), 0o600));
    return new SuccessionListener(fd, path, Deno.lstatSync(path).ino);
  }

  /** The next connection; null past the timeout or once closed. */
  async accept(timeoutMs: number): Promise<SuccessionConnection | null> {
    if (this.#fd < 0) return null;
    const r = await sym().ioeventd_succession_accept(this.#fd, timeoutMs);
    if (r === -Errno.EAGAIN || r === -Errno.EBADF) return null;
    if (r === -Errno.EPERM) return null; // another uid: closed, not served
    return new SuccessionConnection(check("succession_accept", r));
  }

  /** Stops listening; the path is removed only while it is still this listener's. */
  close(): void {
    if (this.#fd < 0) return;
    try {
      if (Deno.lstatSync(this.path).ino === this.ino) Deno.removeSync(this.path);
    } catch { /* gone already */ }
    sym().ioeventd_source_close(this.#fd);
    this.#fd = -1;
  }
}

/** Closes a descriptor received over the channel and not used. */
export function closeReceived(fd: number): void {
  if (fd >= 0) sym().ioeventd_source_close(fd);
}

/** Duplicates of what registration `id` is served with (a kernel-served one: the device too). */
export function registrationFds(
  engine: bigint,
  id: bigint,
): { eventfd: number; vfio: number | null } {
  const out = new BigUint64Array(2);
  check("registration_fds", sym().ioeventd_registration_fds(engine, id, out));
  const vfio = Number(BigInt.asIntN(64, out[1]));
  return { eventfd: Number(out[0]), vfio: vfio < 0 ? null : vfio };
}

/** From now on the engine's kernel entries stay assigned when dropped: how many. */
export function leaveKernelEntries(engine: bigint): number {
  return Number(check("engine_leave_kernel", sym().ioeventd_engine_leave_kernel(engine)));
}

/** Records such an entry as a kernel-served registration without an ioctl: its id. */
export function adoptKernel(engine: bigint, a: KernelAdoption): bigint {
  const id = sym().ioeventd_adopt_kernel(
    engine,
    a.vfioFd,
    a.bar,
    BigInt.asUintN(64, a.offset),
    a.width,
    BigInt.asUintN(64, a.data),
    a.fd,
    a.pid,
    a.pidStart,
  );
  return BigInt(check("adopt_kernel", id));
}

/**
 * sd_notify(3): `state` ("READY=1", "MAINPID=…") to $NOTIFY_SOCKET; false when there is
 * none (not under systemd). Throws when the socket is named but cannot be reached.
 */
export function sdNotify(state: string): boolean {
  if (!Deno.env.get("NOTIFY_SOCKET")) return false;
  const r = sym().ioeventd_sd_notify(cString(state));
  if (r < 0) throw new NativeError("sd_notify", -r);
  return true;
}
