// What the upgrade tests and the upgrade benchmark share: a simulated host with N
// registrations and a doorbell stream on one of them, a probe that opens a new connection
// to the agent's socket every few milliseconds, and how an agent's log reports a hand-over.
import { join } from "node:path";
import type { AgentProcess } from "../support/agent.ts";
import { GPU, NIC } from "../support/agent.ts";
import type { SourceProcess } from "../support/source_process.ts";

/** Registration i: device and BAR0 offset, each unique (offset i of the stream's too). */
export function target(i: number): { device: string; offset: number; data: number } {
  return i < 3000
    ? { device: GPU, offset: 0x10000 + 4 * i, data: 0x1000 + i }
    : { device: NIC, offset: 4 * (i - 3000), data: 0x2000 + i };
}

export function simulatedBar(stateDir: string, device: string): string {
  return join(stateDir, "sim", "sys", "bus", "pci", "devices", device, "resource0");
}

/** Arms `count` registrations from the source's eventfds, as reconciles of 1000. */
export async function armAll(agent: AgentProcess, src: SourceProcess, count: number) {
  for (let first = 0; first < count; first += 1000) {
    const desired = [];
    for (let i = first; i < Math.min(count, first + 1000); i++) {
      const t = target(i);
      desired.push({
        device: t.device,
        bar: 0,
        offset: String(t.offset),
        width: 4,
        data: String(t.data),
        source: { pid: src.pid, fd: src.fds[i] },
      });
    }
    await agent.client.reconcile({ owner: `vm-${first / 1000}`, desired });
  }
}

/** What a doorbell stream measured (ioeventd-test-source doorbells-stop). */
export interface StreamReport {
  count: number;
  p50_ns: number;
  p99_ns: number;
  max_ns: number;
  timeouts: number;
}

/** A 1 kHz doorbell stream on registration 0 (its eventfd, its BAR location). */
export async function startStream(src: SourceProcess, stateDir: string, intervalUs = 1000) {
  const t = target(0);
  await src.command(
    `doorbells-start 0 ${simulatedBar(stateDir, t.device)} ${t.offset} 4 ${t.data} ${intervalUs}`,
  );
  return async (): Promise<StreamReport> =>
    JSON.parse(await src.command("doorbells-stop")) as StreamReport;
}

/** Opens (and closes) a new connection to `path` every `everyMs`; counts the refused. */
export function probeConnections(path: string, everyMs = 2) {
  let stop = false;
  let attempts = 0;
  let refused = 0;
  const errors = new Set<string>();
  const done = (async () => {
    while (!stop) {
      attempts++;
      try {
        const c = await Deno.connect({ transport: "unix", path });
        c.close();
      } catch (err) {
        refused++;
        errors.add(err instanceof Error ? err.message : String(err));
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return async () => {
    stop = true;
    await done;
    return { attempts, refused, errors: [...errors] };
  };
}

/** A structured log line of the agent, by its message. */
export function logLine(agent: AgentProcess, msg: string): Record<string, unknown> | undefined {
  return agent.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === msg);
}
