// ioeventd: the agent's entry point. Configuration in service/config.ts; see README.md.
import { Agent } from "./agent.ts";
import { loadConfig } from "./config.ts";
import { stderrLogger as log } from "./log.ts";

let agent: Agent;
try {
  agent = await Agent.start(loadConfig(Deno.args), log);
} catch (err) {
  log.log("error", "ioeventd failed to start", { error: String(err) });
  Deno.exit(1);
}

// SIGTERM/SIGINT: graceful stop; exit 0 so supervisors see a clean shutdown.
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, async () => {
    log.log("info", "stopping", { signal });
    await agent.stop();
    Deno.exit(0);
  });
}
