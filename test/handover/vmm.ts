// A VMM stand-in that hands its eventfds over (native/src/bin/ioeventd-handover-client.rs),
// driven line by line over stdin/stdout like SourceProcess.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface, type Interface } from "node:readline";
import type * as grpc from "@grpc/grpc-js";
import { decodeStatus } from "../../service/api/status_details.ts";
import { NATIVE_BIN } from "../support/source_process.ts";

export class HandoverVmm {
  #child: ChildProcess;
  #lines: Interface;
  #pending: ((line: string) => void)[] = [];
  #exited: Promise<number | null>;

  private constructor(
    child: ChildProcess,
    lines: Interface,
    readonly pid: number,
    readonly fds: number[],
    readonly handles: string[],
    readonly error: string | null,
  ) {
    this.#child = child;
    this.#lines = lines;
    this.#exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    lines.on("line", (line) => this.#pending.shift()?.(line));
  }

  /** A process with `count` eventfds, handed over for `owner` to the intake at `socket`. */
  static start(
    socket: string,
    owner: string,
    count: number,
    wrap: string[] = [],
  ): Promise<HandoverVmm> {
    const bin = NATIVE_BIN + "ioeventd-handover-client";
    const [cmd, ...args] = [...wrap, bin, socket, owner, String(count)];
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
    const lines = createInterface({ input: child.stdout! });
    return new Promise((resolve, reject) => {
      child.once("error", reject);
      lines.once("line", (first) => {
        const hello = JSON.parse(first) as {
          pid: number;
          fds?: number[];
          handles?: string[];
          error?: string[];
        };
        resolve(
          new HandoverVmm(
            child,
            lines,
            hello.pid,
            hello.fds ?? [],
            hello.handles ?? [],
            hello.error?.[0] ?? null,
          ),
        );
      });
    });
  }

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

  /** Hands every eventfd over again (a VMM reconnecting): the new handles. */
  async resend(owner?: string): Promise<string[]> {
    return JSON.parse(await this.command(owner ? `resend ${owner}` : "resend"));
  }

  async kill(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGKILL");
    }
    await this.#exited;
    this.#lines.close();
  }
}

/** The rejection reason and field of a failed call. */
export function refusal(err: unknown): { reason: string; field: string; message: string } {
  const d = decodeStatus(err as grpc.ServiceError);
  return {
    reason: d?.reason ?? "",
    field: d?.violations?.[0]?.field ?? "",
    message: (err as Error).message,
  };
}

/** Open descriptors of this process. */
export function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

export async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("condition not met in time");
}
