// `ioeventctl fleet`: info, health, list, watch and rollout-gate against many agents at
// once, with a concurrency bound and a per-host timeout, a per-host table and a summary
// (or --json), and a non-zero exit when any host fails. See FLEET_USAGE for the interface.
import {
  type FleetCheck,
  healthCheck,
  infoCheck,
  listCheck,
  rolloutGateCheck,
} from "./fleet_checks.ts";
import {
  channelCredentials,
  channelOptions,
  describeFailure,
  HostConnection,
} from "./fleet_connect.ts";
import { type Host, HostListError, loadHosts } from "./fleet_hosts.ts";
import {
  FLEET_USAGE,
  type FleetOptions,
  FleetUsageError,
  parseFleetArgs,
} from "./fleet_options.ts";
import { mapBounded } from "./fleet_pool.ts";
import { Progress, type ProgressSink, stderrSink } from "./fleet_progress.ts";
import {
  type HostResult,
  hostResult,
  renderResults,
  renderSummary,
  resultsJson,
  summarize,
} from "./fleet_report.ts";
import { watchFleet } from "./fleet_watch.ts";

export const FLEET_EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const;

export interface FleetIo {
  /** One chunk of standard output (a line or a block; a newline is added). */
  write(text: string): void;
  /** Where the progress line goes; stderr by default. */
  progress?: ProgressSink;
}

function checkFor(o: FleetOptions): FleetCheck {
  switch (o.command) {
    case "info":
      return infoCheck;
    case "health":
      return healthCheck;
    case "list":
      return listCheck({ device: o.device, owner: o.owner, labels: o.labels });
    case "rollout-gate":
      return rolloutGateCheck(o.version);
    default:
      throw new FleetUsageError(`${o.command} is not a one-shot check`);
  }
}

async function runCheck(
  check: FleetCheck,
  hosts: Host[],
  conns: HostConnection[],
  o: FleetOptions,
  progress: Progress,
): Promise<HostResult[]> {
  const indexes = hosts.map((_, i) => i);
  const settled = await mapBounded(
    indexes,
    o,
    (i, deadline) => check.run(conns[i], deadline),
    (i, r) => progress.settle(hosts[i].name, r.ok && r.value.ok),
  );
  progress.end();
  return settled.map((r, i) => {
    if (r.ok) {
      const { ok, errors, message, data, extra } = r.value;
      return hostResult(hosts[i], { ok, errors, message, ms: r.ms, data, extra });
    }
    const f = describeFailure(r.error, r.timedOut);
    return hostResult(hosts[i], {
      ok: false,
      errors: [f.error],
      message: f.message,
      ms: r.ms,
      data: {},
    });
  });
}

/** Runs `ioeventctl fleet …` (args after "fleet"); returns the exit code. */
export async function runFleet(args: string[], io: FleetIo): Promise<number> {
  let o: FleetOptions | null;
  let hosts: Host[];
  try {
    o = parseFleetArgs(args);
    if (o === null) {
      io.write(FLEET_USAGE);
      return FLEET_EXIT.OK;
    }
    hosts = loadHosts(o.hosts);
  } catch (err) {
    if (err instanceof FleetUsageError || err instanceof HostListError) {
      console.error(`ioeventctl fleet: ${err.message}\n(ioeventctl fleet --help for usage)`);
      return FLEET_EXIT.USAGE;
    }
    throw err;
  }
  let credentials;
  try {
    credentials = channelCredentials(o.tls);
  } catch (err) {
    console.error(`ioeventctl fleet: ${(err as Error).message}`);
    return FLEET_EXIT.USAGE;
  }
  const useProgress = o.progress ?? (!o.json && (io.progress ?? stderrSink).terminal);
  const progress = new Progress(
    `fleet ${o.command}`,
    hosts.length,
    useProgress ? io.progress ?? stderrSink : null,
  );
  const conns = hosts.map((h) => new HostConnection(h.address, credentials, channelOptions(o.tls)));
  let results: HostResult[];
  let columns: [string, string][];
  try {
    if (o.command === "watch") {
      columns = [["SNAPSHOT", "snapshot"], ["EVENTS", "events"]];
      results = await watchFleet(hosts, conns, {
        ...o,
        filter: { device: o.device, owner: o.owner },
        write: (line) => io.write(line),
        progress,
      });
    } else {
      const check = checkFor(o);
      columns = check.columns;
      results = await runCheck(check, hosts, conns, o, progress);
    }
  } finally {
    for (const c of conns) c.close();
  }

  const summary = summarize(results);
  if (o.json) {
    const doc = resultsJson(o.command, results, o.version ? { version: o.version } : {});
    // watch already printed one object a line: the results close the stream as one line.
    io.write(o.command === "watch" ? JSON.stringify(doc) : JSON.stringify(doc, null, 2));
  } else {
    if (o.command === "watch") io.write(""); // the table after the event lines
    io.write(renderResults(columns, results));
    io.write(renderSummary(o.command, summary));
  }
  return summary.failed === 0 ? FLEET_EXIT.OK : FLEET_EXIT.FAILED;
}
