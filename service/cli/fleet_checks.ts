// What each one-shot fleet command asks one host, and when that host passes: info (reachable),
// health (grpc.health.v1 says SERVING), list (the listing succeeded) and rollout-gate (runs
// the wanted version, SERVING, and every journaled ioeventfd re-armed).
import type { AgentInfo__Output } from "../api/generated/ioeventd/v1/AgentInfo.ts";
import type { Ioeventfd__Output } from "../api/generated/ioeventd/v1/Ioeventfd.ts";
import { type HostConnection, remaining } from "./fleet_connect.ts";

export type Cell = string | number | boolean;

export interface CheckOutcome {
  ok: boolean;
  /** Short reasons, e.g. ["VERSION_MISMATCH", "NOT_READY"]; empty when ok. */
  errors: string[];
  message: string;
  /** Fields for the table and --json (only `extra` is left out of the table). */
  data: Record<string, Cell>;
  extra?: Record<string, unknown>;
}

export interface FleetCheck {
  name: string;
  /** Table columns after HOST and RESULT: header and the data field shown. */
  columns: [header: string, field: string][];
  run(conn: HostConnection, deadline: number): Promise<CheckOutcome>;
}

function uptime(info: AgentInfo__Output): string {
  const started = Number(info.startedAt?.seconds ?? 0) * 1000;
  if (!started) return "";
  const s = Math.max(0, Math.round((Date.now() - started) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return s < 172800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`;
}

function infoData(info: AgentInfo__Output): Record<string, Cell> {
  return {
    version: info.version,
    build: info.build,
    hostname: info.hostname,
    ready: info.ready,
    uptime: uptime(info),
    warnings: info.warnings.length,
  };
}

const pass = (data: Record<string, Cell>, extra?: Record<string, unknown>): CheckOutcome => ({
  ok: true,
  errors: [],
  message: "",
  data,
  extra,
});

export const infoCheck: FleetCheck = {
  name: "info",
  columns: [
    ["VERSION", "version"],
    ["BUILD", "build"],
    ["HOSTNAME", "hostname"],
    ["READY", "ready"],
    ["UPTIME", "uptime"],
    ["WARNINGS", "warnings"],
  ],
  async run(conn, deadline) {
    const info = await conn.agent.info({ deadlineMs: remaining(deadline) });
    return pass(infoData(info), { warnings: info.warnings, apiVersions: info.apiVersions });
  },
};

export const healthCheck: FleetCheck = {
  name: "health",
  columns: [["HEALTH", "health"]],
  async run(conn, deadline) {
    const health = await conn.health(deadline);
    const ok = health === "SERVING";
    return {
      ok,
      errors: ok ? [] : [health],
      message: ok ? "" : `health service says ${health}`,
      data: { health },
    };
  },
};

export interface ListFilter {
  device: string;
  owner: string;
  labels: Record<string, string>;
}

export function listCheck(filter: ListFilter): FleetCheck {
  return {
    name: "list",
    columns: [
      ["IOEVENTFDS", "ioeventfds"],
      ["ARMED", "armed"],
      ["ORPHANED", "orphaned"],
      ["OWNERS", "owners"],
      ["TRIGGERS", "triggers"],
    ],
    async run(conn, deadline) {
      const items: Ioeventfd__Output[] = await conn.agent.listAll(filter, {
        deadlineMs: remaining(deadline),
      });
      return pass({
        ioeventfds: items.length,
        armed: items.filter((i) => i.state === "ARMED").length,
        orphaned: items.filter((i) => i.state === "ORPHANED").length,
        owners: new Set(items.map((i) => i.owner)).size,
        // uint64 counters arrive as decimal strings: add them exactly.
        triggers: items.reduce((sum, i) => sum + BigInt(i.triggers), 0n).toString(),
      }, { items });
    },
  };
}

/** The step a rollout pipeline runs between batches: all three conditions, on every host. */
export function rolloutGateCheck(version: string): FleetCheck {
  return {
    name: "rollout-gate",
    columns: [["VERSION", "version"], ["HEALTH", "health"], ["READY", "ready"]],
    async run(conn, deadline) {
      const [health, info] = await Promise.all([
        conn.health(deadline),
        conn.agent.info({ deadlineMs: remaining(deadline) }),
      ]);
      const errors: string[] = [];
      const why: string[] = [];
      if (info.version !== version) {
        errors.push("VERSION_MISMATCH");
        why.push(`runs ${info.version}, want ${version}`);
      }
      if (health !== "SERVING") {
        errors.push("NOT_SERVING");
        why.push(`health ${health}`);
      }
      if (!info.ready) {
        errors.push("NOT_READY");
        why.push("journaled ioeventfds not all re-armed");
      }
      // A host upgraded by a restart (not a hand-over) paused its VMs' doorbells meanwhile.
      if (info.capabilities?.features?.includes("start:gap")) {
        errors.push("UPGRADE_GAP");
        why.push("came up by a restart, not a hand-over: doorbells paused while it re-armed");
      }
      return {
        ok: errors.length === 0,
        errors,
        message: why.join("; "),
        data: { version: info.version, health, ready: info.ready, build: info.build },
      };
    },
  };
}
