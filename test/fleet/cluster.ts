// A small fleet for tests: real agent processes, each with its own state directory (and so
// its own simulated host), its own gRPC port on its own loopback address, and a real source
// process whose eventfds it arms. Plus `ioeventctl fleet` run as a person or a pipeline
// runs it: a separate process.
import { fileURLToPath } from "node:url";
import { type AgentProcess, GPU, removeDir, spawnAgent, tempDir } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";

export const CLI = fileURLToPath(new URL("../../service/cli/ioeventctl.ts", import.meta.url));

export interface FleetAgent {
  name: string;
  /** host:port of the TCP listener (the fleet's view). */
  tcp: string;
  owner: string;
  proc: AgentProcess;
  source: SourceProcess;
  ids: string[];
}

/** The TCP address the agent logged as bound (it was asked for port 0). */
function boundTcp(logs: string[]): string {
  for (const line of logs) {
    if (!line.includes('"ioeventd serving"')) continue;
    const listen = (JSON.parse(line) as { listen: string[] }).listen;
    const tcp = listen.find((a) => !a.startsWith("unix:"));
    if (tcp) return tcp;
  }
  throw new Error(`no TCP listener in the agent's log:\n${logs.join("\n")}`);
}

/** Starts an agent on `ip` and arms `count` ioeventfds on it for owner vm-<name>. */
export async function startFleetAgent(name: string, ip: string, count: number) {
  const stateDir = tempDir(`ioeventd-fleet-${name}-`);
  const proc = await spawnAgent(stateDir, [
    "--listen",
    `unix://${stateDir}/run/ioeventd.sock`,
    "--listen",
    `${ip}:0`,
    "--allow-insecure-tcp",
  ]);
  const source = await SourceProcess.start(count + 1); // one spare, for the watch test
  const agent: FleetAgent = {
    name,
    tcp: boundTcp(proc.logs),
    owner: `vm-${name}`,
    proc,
    source,
    ids: [],
  };
  for (let i = 0; i < count; i++) agent.ids.push(await arm(agent, i));
  return agent;
}

/** Arms eventfd `i` of the agent's source at a BAR0 register of its own. */
export async function arm(agent: FleetAgent, i: number): Promise<string> {
  const created = await agent.proc.client.create({
    owner: agent.owner,
    spec: {
      device: GPU,
      bar: 0,
      offset: String(0x10000 + 4 * i),
      width: 4,
      data: String(i + 1),
      source: { pid: agent.source.pid, fd: agent.source.fds[i] },
    },
  });
  return created.id;
}

export async function stopFleetAgent(agent: FleetAgent): Promise<void> {
  agent.proc.client.close();
  agent.proc.kill("SIGTERM");
  await agent.proc.exited;
  await agent.source.kill();
  removeDir(agent.proc.stateDir);
}

export interface CliResult {
  code: number;
  out: string;
  err: string;
  ms: number;
}

/** `ioeventctl <args>` as its own process. Async: the test's own listeners keep serving. */
export async function ioeventctl(...args: string[]): Promise<CliResult> {
  const t0 = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CLI, ...args],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return {
    code: r.code,
    out: text.decode(r.stdout),
    err: text.decode(r.stderr),
    ms: performance.now() - t0,
  };
}

/** A TCP server that accepts and never answers: a host that hangs instead of refusing. */
export function blackhole(hostname: string): { address: string; close(): void } {
  const listener = Deno.listen({ hostname, port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch { /* closed */ }
  })();
  return {
    address: `${hostname}:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
    },
  };
}
