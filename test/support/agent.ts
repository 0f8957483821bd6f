// Starts real agents for tests: in this process (fast; most API tests) or as a separate
// `deno run service/main.ts` process (restart, SIGKILL and SIGTERM tests).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent } from "../../service/agent.ts";
import { AgentClient } from "../../service/cli/client.ts";
import { type AgentConfig, defaultConfig, simulatedSysfsRoot } from "../../service/config.ts";
import { silentLogger } from "../../service/log.ts";
import { followAgentLogs } from "./agent_logs.ts";

export const GPU = "0000:65:00.0";
export const NIC = "0000:66:00.0";

export function tempDir(prefix = "ioeventd-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A config for a test: a simulated host only, a private socket, no metrics port. */
export function testConfig(stateDir: string, overrides: Partial<AgentConfig> = {}): AgentConfig {
  return {
    ...defaultConfig(stateDir),
    simulate: true,
    sysfsRoots: [],
    metricsListen: "",
    rescanIntervalMs: 200,
    shutdownGraceMs: 2000,
    ...overrides,
  };
}

export function barPath(config: AgentConfig, device: string, bar: number): string {
  return join(simulatedSysfsRoot(config), device, `resource${bar}`);
}

export interface TestAgent {
  agent: Agent;
  client: AgentClient;
  config: AgentConfig;
  stop(): Promise<void>;
}

export async function startAgent(
  overrides: Partial<AgentConfig> = {},
  stateDir = tempDir(),
): Promise<TestAgent> {
  const config = testConfig(stateDir, overrides);
  const agent = await Agent.start(config, silentLogger);
  const client = new AgentClient(agent.server.bound[0]);
  return {
    agent,
    client,
    config,
    async stop() {
      client.close();
      await agent.stop();
    },
  };
}

const MAIN = fileURLToPath(new URL("../../service/main.ts", import.meta.url));

export interface AgentProcess {
  child: Deno.ChildProcess;
  client: AgentClient;
  stateDir: string;
  address: string;
  /** The real exit status (node:child_process in Deno misreports a handled SIGTERM). */
  exited: Promise<{ code: number; signal: Deno.Signal | null }>;
  logs: string[];
  kill(signal: Deno.Signal): void;
  /** SIGKILL (a crash, not a stop), then wait for the exit and close the client. */
  crash(): Promise<void>;
}

/**
 * The environment every launcher gives the agent (deno.json's start task, the systemd unit, the
 * container image; test/deploy/runtime_env_test.ts holds them to it): a 2 MiB semi-space
 * (young generation) and 2 malloc arenas, for the RSS measured in the README's Benchmarks.
 */
export const AGENT_RUNTIME_ENV = {
  DENO_V8_FLAGS: "--max-semi-space-size=2",
  MALLOC_ARENA_MAX: "2",
};

/** Runs the agent as its own process, exactly as `deno task start` does, and waits for it. */
export async function spawnAgent(stateDir: string, args: string[] = []): Promise<AgentProcess> {
  const address = `unix://${join(stateDir, "run", "ioeventd.sock")}`;
  // IOEVENTD_TEST_CPU_PROF=<dir>: a V8 CPU profile (and its markdown summary) of each agent.
  const profileDir = Deno.env.get("IOEVENTD_TEST_CPU_PROF");
  const profile = profileDir ? [`--cpu-prof-dir=${profileDir}`, "--cpu-prof-md"] : [];
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      ...profile,
      MAIN,
      "--state-dir",
      stateDir,
      "--metrics-listen",
      "",
      "--simulate",
      ...args,
    ],
    env: { IOEVENTD_SYSFS_ROOTS: "", ...AGENT_RUNTIME_ENV },
    stdin: "null",
    stdout: "inherit",
    stderr: "piped",
  }).spawn();
  const { lines: logs, serving } = followAgentLogs(child);
  const exited = child.status.then((s) => ({ code: s.code, signal: s.signal }));
  await serving;
  const client = new AgentClient(address);
  // Deno.kill, not child.kill: the latter delivers only the first signal sent.
  const kill = (signal: Deno.Signal) => {
    try {
      Deno.kill(child.pid, signal);
    } catch { /* already gone */ }
  };
  return {
    child,
    client,
    stateDir,
    address,
    exited,
    logs,
    kill,
    async crash() {
      kill("SIGKILL");
      await exited;
      client.close();
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
