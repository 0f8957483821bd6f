// Runs a real agent with the command line a deployment file declares, changed only where a
// test machine must differ (host paths to temporary ones, all-interfaces to one loopback
// address; the ports stay), and probes it over HTTP as kubelet or Docker would.
import { followAgentLogs } from "../support/agent_logs.ts";

export interface Rewrite {
  from: string;
  to: string;
}

/** Applies each rewrite to every argument; a rewrite that matches nothing is an error (the
 *  file changed, and the test would silently stop testing what it claims). */
export function rewriteArgs(args: string[], rewrites: Rewrite[]): string[] {
  let out = args;
  for (const { from, to } of rewrites) {
    if (!out.some((a) => a.includes(from))) {
      throw new Error(`nothing to rewrite: no argument contains ${from} in ${args.join(" ")}`);
    }
    out = out.map((a) => a.split(from).join(to));
  }
  return out;
}

export interface DeployedAgent {
  logs: string[];
  exited: Promise<Deno.CommandStatus>;
  /** SIGTERM, then the exit status. */
  stop(): Promise<Deno.CommandStatus>;
}

/** Starts `argv` and resolves once the agent logs that it serves (rejects if it exits). */
export async function startDeployed(
  argv: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<DeployedAgent> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const { lines: logs, serving } = followAgentLogs(child);
  const exited = child.status;
  await serving;
  return {
    logs,
    exited,
    stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      return exited;
    },
  };
}

/** The HTTP status of a GET, or null when nothing answers. */
export async function httpStatus(url: string): Promise<number | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return response.status;
  } catch {
    return null;
  }
}

export async function httpText(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, text: await response.text() };
}
