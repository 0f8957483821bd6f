// ioeventd: the agent's entry point. Configuration in service/config.ts; see README.md.
import type { Agent } from "./agent.ts";
import { type AgentConfig, ConfigError } from "./config.ts";
import { parseCommandLine } from "./config_loader.ts";
import { usage } from "./settings.ts";
import { consoleInto, stderrLogger as log } from "./log.ts";
import { rearmFromJournal } from "./rearm.ts";
import { spawnSuccessor } from "./upgrade/spawn.ts";

let config: AgentConfig;
try {
  const line = parseCommandLine(Deno.args);
  if (line.help) {
    console.log(usage());
    Deno.exit(0);
  }
  config = line.config;
} catch (err) {
  // One line naming the setting; 2, as for any other usage error.
  if (!(err instanceof ConfigError)) throw err;
  log.log("error", `ioeventd: ${err.message}`);
  Deno.exit(2);
}

// SIGTERM/SIGINT: graceful stop; exit 0 so supervisors see a clean shutdown. Listening from
// the start: a signal during start-up stops the agent once it is up, instead of killing it
// half-started.
let agent: Agent | null = null;
let stopRequested = false;
async function stop(): Promise<never> {
  await agent!.stop();
  Deno.exit(0);
}
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, () => {
    log.log("info", "stopping", { signal });
    stopRequested = true;
    if (agent) void stop();
  });
}

try {
  // Re-armed first, with only what that needs loaded; the gRPC server, metrics, security
  // and tracing are imported after (a restart's doorbells do not wait for them).
  const rearmed = await rearmFromJournal(config, log);
  const [{ Agent }, grpc] = await Promise.all([
    import("./agent.ts"),
    import("@grpc/grpc-js"),
  ]);
  // One format on stderr: grpc-js's own messages become JSON lines of the log too.
  grpc.setLogger(consoleInto(log, "grpc-js"));
  agent = await Agent.start(config, log, rearmed);
} catch (err) {
  log.log("error", "ioeventd failed to start", {
    error: err instanceof Error ? err.message : String(err),
  });
  Deno.exit(1);
}
if (stopRequested) await stop();
// Handed over to a successor (README "Upgrades"): drain the calls in flight and leave, or,
// under Kubernetes, retire and stay until the pod is deleted (SIGTERM then exits).
void agent.handedOver.then(async () => {
  if (config.afterHandOver === "linger") {
    log.log("info", "retiring: handed over to a successor; staying until stopped", {});
    await agent!.retire();
    return;
  }
  log.log("info", "stopping", { reason: "handed over to a successor" });
  return stop();
});
// SIGUSR2 (systemd: `systemctl kill --kill-whom=main -s SIGUSR2 ioeventd`): start the
// successor from the files on disk now; it takes over and becomes the main process.
Deno.addSignalListener("SIGUSR2", () => {
  try {
    const pid = spawnSuccessor();
    log.log("info", "started a successor to take over", { successor_pid: pid });
  } catch (err) {
    log.log("error", "could not start a successor", { error: String(err) });
  }
});
