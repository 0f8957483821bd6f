// The outcome of a fleet command: one row per host (in the order of the host list), a
// summary line, and the same as one JSON document for pipelines.
import type { Cell } from "./fleet_checks.ts";
import type { Host } from "./fleet_hosts.ts";
import { renderTable } from "./table.ts";

export interface HostResult {
  name: string;
  address: string;
  ok: boolean;
  /** Short reasons (UNREACHABLE, TIMEOUT, NOT_SERVING, VERSION_MISMATCH, ...); empty when ok. */
  errors: string[];
  message: string;
  ms: number;
  data: Record<string, Cell>;
  /** Only in --json (e.g. every ioeventfd of `list`). */
  extra?: Record<string, unknown>;
}

export interface Summary {
  total: number;
  ok: number;
  failed: number;
  failedHosts: string[];
}

export function hostResult(host: Host, fields: Omit<HostResult, "name" | "address">): HostResult {
  return { name: host.name, address: host.address, ...fields, ms: Math.round(fields.ms) };
}

export function summarize(results: HostResult[]): Summary {
  const failedHosts = results.filter((r) => !r.ok).map((r) => r.name);
  return {
    total: results.length,
    ok: results.length - failedHosts.length,
    failed: failedHosts.length,
    failedHosts,
  };
}

function cell(value: Cell | undefined): string {
  if (value === undefined) return "-";
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

export function renderResults(columns: [string, string][], results: HostResult[]): string {
  // The address column only earns its width when some host was given a name.
  const named = results.some((r) => r.name !== r.address);
  const header = ["HOST", ...(named ? ["ADDRESS"] : []), "RESULT", ...columns.map((c) => c[0])];
  const rows = results.map((r) => [
    r.name,
    ...(named ? [r.address] : []),
    r.ok ? "ok" : "FAIL",
    ...columns.map(([, field]) => (r.ok || field in r.data ? cell(r.data[field]) : "-")),
    `${r.ms}ms`,
    r.ok ? "" : [r.errors.join(","), r.message].filter(Boolean).join(": "),
  ]);
  return renderTable([[...header, "TIME", "DETAIL"], ...rows]);
}

export function renderSummary(command: string, s: Summary): string {
  const line = `fleet ${command}: ${s.total} host${s.total === 1 ? "" : "s"}, ${s.ok} ok, ` +
    `${s.failed} failed`;
  return s.failed === 0 ? line : `${line} (${s.failedHosts.join(", ")})`;
}

export function resultsJson(command: string, results: HostResult[], extra = {}): unknown {
  return {
    command,
    ok: results.every((r) => r.ok),
    ...extra,
    summary: summarize(results),
    hosts: results.map(({ extra, ...r }) => ({ ...r, ...extra })),
  };
}
