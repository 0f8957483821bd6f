// What the guest-doorbells bench reads outside the guest: where the scheduler put the vCPU
// and the consumer threads (/proc), their preemptions, the machine's load, the agent's
// counters of a registration, and whether the final doorbell's write reached the BAR file.
import type { AgentClient } from "../../service/cli/client.ts";
import { readBar } from "../../test/support/bar_file.ts";
import type { Vmm } from "../../test/kvm/vmm.ts";

interface ThreadState {
  comm: string;
  state: string;
  ticks: number;
  cpu: number;
}

/** Every thread of `pid`: state, CPU ticks (user + system), the CPU it last ran on. */
function threads(pid: number): Map<string, ThreadState> {
  const out = new Map<string, ThreadState>();
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const stat = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`);
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // f[0] is field 3
        out.set(`${pid}/${t.name}`, {
          comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
          state: f[0],
          ticks: Number(f[11]) + Number(f[12]),
          cpu: Number(f[36]),
        });
      } catch { /* the thread ended */ }
    }
  } catch { /* the process ended */ }
  return out;
}

/** Involuntary context switches of every thread of these processes (preemptions). */
export function preemptions(pids: number[]): number {
  let n = 0;
  for (const pid of pids) {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const st = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/status`);
        n += Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0);
      } catch { /* the thread ended */ }
    }
  }
  return n;
}

/**
 * Samples, every millisecond while `during` runs, where the vCPU thread (the VMM's busiest)
 * and the consumer (the agent's busiest thread, or the VMM's second busiest for bare) are:
 * the share of samples in which both were runnable on the same CPU, i.e. one waited for the
 * other to get off it. A cause of slow doorbells on a small machine, measured.
 */
export async function colocation<T>(
  vmmPid: number,
  agentPid: number | undefined,
  during: Promise<T>,
) {
  const samples: Map<string, ThreadState>[] = [];
  const take = () => {
    const m = threads(vmmPid);
    if (agentPid !== undefined) { for (const [k, v] of threads(agentPid)) m.set(k, v); }
    samples.push(m);
  };
  take();
  const timer = setInterval(take, 1);
  try {
    return { result: await during, share: () => share() };
  } finally {
    clearInterval(timer);
    take();
  }
  function share(): number {
    // The vCPU thread is "vcpu0"; the consumer the bare thread or the agent's worker 0.
    const consumerName = agentPid !== undefined ? /^iov\d+w0$/ : /^bare-consumer$/;
    let both = 0;
    for (const m of samples) {
      const all = [...m.values()];
      const a = all.find((t) => t.comm === "vcpu0");
      const b = all.find((t) => consumerName.test(t.comm));
      if (a && b && a.state === "R" && b.state === "R" && a.cpu === b.cpu) both++;
    }
    return samples.length > 0 ? both / samples.length : 0;
  }
}

export function loadavg(): string {
  return Deno.readTextFileSync("/proc/loadavg").trim().split(" ").slice(0, 3).join(" ");
}

/** The agent's triggers and signals of one registration, once they stop moving. */
export async function settledCounters(client: AgentClient, id: string, signals: number) {
  const deadline = Date.now() + 3000;
  for (;;) {
    const got = await client.get(id);
    if (Number(got.signals) >= signals || Date.now() > deadline) {
      return { triggers: Number(got.triggers), signals: Number(got.signals) };
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function finalLanded(bar0: string, vmm: Vmm): Promise<boolean> {
  const fin = vmm.doorbell("final");
  const deadline = Date.now() + 1000;
  while (Date.now() < deadline) {
    if (readBar(bar0, fin.bar_offset, 4) === BigInt(fin.value)) return true;
    await new Promise((r) => setTimeout(r, 2));
  }
  return false;
}

export function clearFinal(bar0: string, vmm: Vmm): void {
  const fin = vmm.doorbell("final");
  const f = Deno.openSync(bar0, { read: true, write: true });
  try {
    f.seekSync(fin.bar_offset, Deno.SeekMode.Start);
    f.writeSync(new Uint8Array(4));
  } finally {
    f.close();
  }
}
