// Drives native/src/bin/ioeventd-kvm-vmm/: a minimal VMM with one vCPU whose real-mode guest
// rings doorbells. It reports its pid and its doorbell eventfds on its first line, as a VMM
// would report them to an orchestrator, and runs guest programs on command (one line each).
import { closeSync, existsSync, openSync } from "node:fs";
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface, type Interface } from "node:readline";
import { NATIVE_BIN } from "../support/source_process.ts";

export const VMM_BIN = NATIVE_BIN + "ioeventd-kvm-vmm";

/** Why KVM tests cannot run here ("" when they can): no /dev/kvm, no access, no binary. */
export function kvmUnavailable(): string {
  if (!existsSync("/dev/kvm")) return "/dev/kvm is missing";
  try {
    closeSync(openSync("/dev/kvm", "r+"));
  } catch (e) {
    return `/dev/kvm cannot be opened: ${(e as Error).message}`;
  }
  if (!existsSync(VMM_BIN)) return `${VMM_BIN} is not built (cargo build --release)`;
  return "";
}

export type VmmMode = "exit" | "ioeventd" | "bare" | "bare-spin" | "ram";
export type Program = "stores" | "latency" | "datamatch";

export interface Doorbell {
  name: "w1" | "w2" | "w4" | "w8" | "dm_a" | "dm_b" | "final";
  /** Guest-physical address of the doorbell (outside every memory slot: MMIO). */
  gpa: number;
  width: number;
  /** The value the guest stores, and the one to arm (decimal string: 64-bit safe). */
  value: string;
  /** Registered with KVM_IOEVENTFD_FLAG_DATAMATCH (only a store of `value` signals). */
  datamatch: boolean;
  /** Where in BAR0 the write belongs (the guest polls it through its BAR memory slot). */
  bar_offset: number;
  /** The eventfd's number in the VMM (what CreateIoeventfd's source.fd names). */
  fd: number;
}

export interface RunResult {
  program: Program;
  width: number;
  count: number;
  mode: VmmMode;
  /** Host CLOCK_MONOTONIC ns from the first KVM_RUN to the guest's hlt. */
  ns: number;
  exits: number;
  mmio_exits: number;
  unmatched_mmio: number;
  /** Writes this VMM performed itself on KVM_EXIT_MMIO (`exit` mode). */
  exit_writes: number;
  /** Doorbells the guest saw land (latency and datamatch programs). */
  progress: number;
  tsc_ticks: number;
  tsc_per_ns: number;
  /** Guest-measured doorbell → register-visible samples (latency program). */
  samples: number;
  p50_ns: number;
  p99_ns: number;
  max_ns: number;
  mean_ns: number;
  min_ns: number;
  /** The bare consumer's writes (= wake-ups that read a count) and signals, this run. */
  bare_writes: number;
  bare_signals: number;
  error: string | null;
}

export class Vmm {
  readonly pid: number;
  readonly doorbells: Map<Doorbell["name"], Doorbell>;
  #child: ChildProcess;
  #lines: Interface;
  #pending: ((line: string) => void)[] = [];
  #exited: Promise<number | null>;

  private constructor(
    child: ChildProcess,
    lines: Interface,
    hello: { pid: number; doorbells: Doorbell[] },
  ) {
    this.#child = child;
    this.#lines = lines;
    this.pid = hello.pid;
    this.doorbells = new Map(hello.doorbells.map((d) => [d.name, d]));
    this.#exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    lines.on("line", (line) => this.#pending.shift()?.(line));
  }

  /** Starts a VMM whose guest sees `barPath`'s first 64 KiB as memory at 0x100000. */
  static start(barPath: string, mode: VmmMode = "ioeventd"): Promise<Vmm> {
    const child = spawn(VMM_BIN, ["--bar", barPath, "--mode", mode], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const lines = createInterface({ input: child.stdout! });
    return new Promise((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`ioeventd-kvm-vmm exited (${code})`)));
      lines.once("line", (first) => resolve(new Vmm(child, lines, JSON.parse(first))));
    });
  }

  doorbell(name: Doorbell["name"]): Doorbell {
    return this.doorbells.get(name)!;
  }

  /** Sends one command; resolves with the text after "ok"; rejects on "err" or after `ms`. */
  command(line: string, ms = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`ioeventd-kvm-vmm: no answer to ${JSON.stringify(line)} in ${ms} ms`));
        this.kill(); // a guest polling for a write that never lands never halts
      }, ms);
      this.#pending.push((answer) => {
        clearTimeout(timer);
        if (answer.startsWith("ok")) resolve(answer.slice(2).trim());
        else reject(new Error(`ioeventd-kvm-vmm ${line}: ${answer}`));
      });
      this.#child.stdin!.write(line + "\n");
    });
  }

  async mode(mode: VmmMode): Promise<void> {
    await this.command(`mode ${mode}`);
  }

  /** Runs a guest program to its hlt and returns what the VMM measured. */
  async run(program: Program, width: number, count: number, ms?: number): Promise<RunResult> {
    const r = JSON.parse(await this.command(`run ${program} ${width} ${count}`, ms)) as RunResult;
    if (r.error) throw new Error(`guest ${program} ${width} ${count}: ${r.error}`);
    return r;
  }

  /** Starts a program with the vCPU in its own thread; `wait()` collects the result. */
  async start(program: Program, width: number, count: number): Promise<void> {
    await this.command(`start ${program} ${width} ${count}`);
  }

  async progress(): Promise<number> {
    return Number(await this.command("progress"));
  }

  /** Asks a running datamatch guest to leave its loop (then it rings the final doorbell). */
  async stop(): Promise<void> {
    await this.command("stop");
  }

  async wait(ms?: number): Promise<RunResult> {
    const r = JSON.parse(await this.command("wait", ms)) as RunResult;
    if (r.error) throw new Error(`guest: ${r.error}`);
    return r;
  }

  /** Exits by itself (the way a VM shuts down), and waits. */
  async exit(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.stdin!.write("exit\n");
    }
    await this.#exited;
    this.#lines.close();
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGKILL");
    }
  }

  async close(): Promise<void> {
    this.kill();
    await this.#exited;
    this.#lines.close();
  }
}
