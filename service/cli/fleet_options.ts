// The command line of `ioeventctl fleet`: its own options, parsed strictly so a typo in a
// rollout pipeline fails as a usage error (exit 2) instead of gating on the wrong thing.
import { parseArgs } from "node:util";
import type { TlsFiles } from "./fleet_connect.ts";
import { DEFAULT_GRPC_PORT } from "./fleet_hosts.ts";
import { parseSmallNumber } from "./numbers.ts";
import { didYouMean } from "../did_you_mean.ts";

export const FLEET_COMMANDS = ["info", "health", "list", "watch", "rollout-gate"] as const;
export type FleetCommand = typeof FLEET_COMMANDS[number];

export const FLEET_USAGE = `ioeventctl fleet — one command against many agents, in parallel

Usage: ioeventctl fleet <command> --hosts <file|list|-> [options]

Commands:
  info                        version, build, readiness and uptime of every agent
  health                      grpc.health.v1 status of every agent (fails unless SERVING)
  list [--owner O] [--device D] [--label k=v ...]
                              ioeventfds per agent (counts; every item with --json)
  watch [--owner O] [--device D] [--duration 30s]
                              every agent's changes, one line per event, prefixed with
                              the host; until --duration, Ctrl-C, or every stream ended
  rollout-gate --version V    succeed only when every host runs V, is SERVING and ready
                              (every journaled ioeventfd re-armed) and came up by a
                              hand-over, not a restart (UPGRADE_GAP): the step a rollout
                              pipeline runs between batches

Options:
  --hosts H           a file (one [name=]host[:port] a line, # comments), - for stdin,
                      or a comma-separated list; repeatable. The port defaults to ${DEFAULT_GRPC_PORT}.
  --concurrency N     hosts asked at once (default 16)
  --timeout T         per host, e.g. 2s or 500ms (default 5s)
  --json              one JSON document (watch: one JSON object a line)
  --progress, --no-progress
                      the progress line on stderr (default: when stderr is a terminal)
  --tls-ca F, --tls-cert F, --tls-key F
                      TLS to the agents, mTLS with a client certificate (default plaintext)
  --tls-server-name N the name in the agents' certificates, when hosts are IP addresses

Exit codes: 0 every host passed; 1 at least one host failed (each is named); 2 usage.`;

export class FleetUsageError extends Error {}

export interface FleetOptions {
  command: FleetCommand;
  hosts: string[];
  concurrency: number;
  timeoutMs: number;
  json: boolean;
  /** null: decide from whether stderr is a terminal. */
  progress: boolean | null;
  version: string;
  owner: string;
  device: string;
  labels: Record<string, string>;
  durationMs: number | null;
  tls: TlsFiles;
}

/** "2s", "500ms", "1m", or a bare number of seconds. */
export function parseDuration(text: string, flag: string): number {
  const m = text.trim().match(/^(\d+(?:\.\d+)?)(ms|s|m|h)?$/);
  if (!m) throw new FleetUsageError(`${flag} wants a duration like 2s or 500ms, got ${text}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"]!;
  const ms = Number(m[1]) * unit;
  if (ms <= 0) throw new FleetUsageError(`${flag} must be positive`);
  return ms;
}

function labelsOf(values: string[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const kv of values ?? []) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new FleetUsageError(`--label wants key=value, got ${kv}`);
    labels[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return labels;
}

/** A count, read like every number of the CLI (numbers.ts), refused as a fleet usage error. */
function fleetNumber(flag: string, text: string, min: number, max: number): number {
  try {
    return parseSmallNumber(flag, text, min, max);
  } catch (err) {
    throw new FleetUsageError((err as Error).message);
  }
}

const FLEET_OPTIONS = {
  hosts: { type: "string", multiple: true },
  concurrency: { type: "string" },
  timeout: { type: "string" },
  json: { type: "boolean" },
  progress: { type: "boolean" },
  "no-progress": { type: "boolean" },
  version: { type: "string" },
  owner: { type: "string" },
  device: { type: "string" },
  label: { type: "string", multiple: true },
  duration: { type: "string" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-server-name": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** null when help was asked for. */
export function parseFleetArgs(args: string[]): FleetOptions | null {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: FLEET_OPTIONS });
  } catch (err) {
    const unknown = (err as Error).message.match(/^Unknown option '([^']+)'/);
    if (unknown) {
      const flags = Object.keys(FLEET_OPTIONS).map((o) => `--${o}`);
      throw new FleetUsageError(`unknown option ${unknown[1]}${didYouMean(unknown[1], flags)}`);
    }
    throw new FleetUsageError((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) return null;
  const [command, ...extra] = positionals;
  if (!command) throw new FleetUsageError("missing command");
  if (!(FLEET_COMMANDS as readonly string[]).includes(command)) {
    throw new FleetUsageError(
      `unknown fleet command ${command}${didYouMean(command, FLEET_COMMANDS)} (${
        FLEET_COMMANDS.join(", ")
      })`,
    );
  }
  if (extra.length > 0) throw new FleetUsageError(`unexpected argument ${extra[0]}`);
  if (!v.hosts?.length) throw new FleetUsageError("--hosts is required");
  const concurrency = fleetNumber("--concurrency", v.concurrency ?? "16", 1, 100_000);
  if (command === "rollout-gate" && !v.version) {
    throw new FleetUsageError("rollout-gate needs --version V");
  }
  if (v.version && command !== "rollout-gate") {
    throw new FleetUsageError("--version applies to rollout-gate only");
  }
  if (v.duration && command !== "watch") throw new FleetUsageError("--duration is for watch");
  if (v.progress && v["no-progress"]) {
    throw new FleetUsageError("--progress and --no-progress contradict");
  }
  return {
    command: command as FleetCommand,
    hosts: v.hosts,
    concurrency,
    timeoutMs: parseDuration(v.timeout ?? "5s", "--timeout"),
    json: v.json ?? false,
    progress: v.progress ? true : v["no-progress"] ? false : null,
    version: v.version ?? "",
    owner: v.owner ?? "",
    device: v.device ?? "",
    labels: labelsOf(v.label),
    durationMs: v.duration ? parseDuration(v.duration, "--duration") : null,
    tls: {
      ca: v["tls-ca"],
      cert: v["tls-cert"],
      key: v["tls-key"],
      serverName: v["tls-server-name"],
    },
  };
}
