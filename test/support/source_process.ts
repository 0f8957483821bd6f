// A real child process that owns eventfds (native/src/bin/ioeventd-test-source.rs), driven
// line by line over stdin/stdout: the stand-in for a VMM such as QEMU.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";

export const NATIVE_BIN = fileURLToPath(new URL("../../native/target/release/", import.meta.url));

export class SourceProcess {
  readonly pid: number;
  readonly fds: number[];
  #child: ChildProcess;
  #lines: Interface;
  #pending: ((line: string) => void)[] = [];
  #exited: Promise<number | null>;

  private constructor(child: ChildProcess, lines: Interface, pid: number, fds: number[]) {
    this.#child = child;
    this.#lines = lines;
    this.pid = pid;
    this.fds = fds;
    this.#exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    lines.on("line", (line) => this.#pending.shift()?.(line));
  }

  /** Starts a process owning `count` eventfds (`nonblocking`: EFD_NONBLOCK, as QEMU's). */
  static start(count: number, options: { nonblocking?: boolean } = {}): Promise<SourceProcess> {
    const args = [String(count), ...(options.nonblocking ? ["nonblock"] : [])];
    const child = spawn(NATIVE_BIN + "ioeventd-test-source", args, {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const lines = createInterface({ input: child.stdout! });
    return new Promise((resolve, reject) => {
      child.once("error", reject);
      lines.once("line", (first) => {
        const hello = JSON.parse(first) as { pid: number; fds: number[] };
        resolve(new SourceProcess(child, lines, hello.pid, hello.fds));
      });
    });
  }

  /** Sends one command; resolves with the text after "ok", rejects on "err". */
  command(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#pending.push((answer) =>
        answer.startsWith("ok") ? resolve(answer.slice(2).trim()) : reject(new Error(answer))
      );
      this.#child.stdin!.write(line + "\n");
    });
  }

  signal(index: number, times = 1): Promise<string> {
    return this.command(`signal ${index} ${times}`);
  }

  /** Ends the process (SIGKILL) and waits for it. */
  async kill(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGKILL");
    }
    await this.#exited;
    this.#lines.close();
  }

  /** Asks the process to exit by itself and waits for it. */
  async exit(): Promise<void> {
    this.#child.stdin!.write("exit\n");
    await this.#exited;
    this.#lines.close();
  }
}
