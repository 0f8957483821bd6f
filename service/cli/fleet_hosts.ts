// The host list of `ioeventctl fleet`: a file (one host a line), "-" for stdin, or a
// comma-separated list. A host is `[name=]address`; an address without a port gets the
// documented gRPC port, so a list of node names is enough.
import { existsSync, readFileSync, statSync } from "node:fs";
import { readNumber } from "./numbers.ts";

/** The agent's TCP port for remote orchestrators (deploy/ uses it; behind mTLS in production). */
export const DEFAULT_GRPC_PORT = 50051;

export interface Host {
  /** What the tables show: the name before "=", else the address as given. */
  name: string;
  /** A grpc-js target: "host:port", "[v6]:port" or "unix:///path". */
  address: string;
}

export class HostListError extends Error {}

/** Adds the default port where none is given; keeps unix: and dns: targets as they are. */
export function normalizeAddress(raw: string): string {
  const a = raw.trim();
  if (a === "") throw new HostListError("empty host address");
  if (/^(unix|unix-abstract|dns|ipv4|ipv6):/.test(a)) return a;
  const v6 = a.match(/^\[([0-9a-fA-F:.]+)\](?::(\w+))?$/);
  if (v6) return `[${v6[1]}]:${checkPort(v6[2] ?? String(DEFAULT_GRPC_PORT), raw)}`;
  if (a.includes("[") || a.includes("]")) throw new HostListError(`bad address ${raw}`);
  const colons = a.split(":").length - 1;
  // A bare IPv6 address has several colons and no brackets: it cannot carry a port.
  if (colons > 1) return `[${a}]:${DEFAULT_GRPC_PORT}`;
  if (colons === 0) return `${a}:${DEFAULT_GRPC_PORT}`;
  const [host, port] = a.split(":");
  if (!host) throw new HostListError(`bad address ${raw}: no host`);
  return `${host}:${checkPort(port, raw)}`;
}

function checkPort(port: string, raw: string): number {
  // Read like every number of the CLI (numbers.ts): decimal or 0x-hex.
  const n = readNumber(port);
  if (n === null || n < 1n || n > 65535n) {
    throw new HostListError(`bad address ${raw}: port must be 1..65535 (decimal or 0x-hex)`);
  }
  return Number(n);
}

/** Parses entries (already split); rejects duplicate names so no row of a table is ambiguous. */
export function parseHostEntries(entries: string[]): Host[] {
  const hosts: Host[] = [];
  const seen = new Set<string>();
  for (const entry of entries.map((e) => e.trim()).filter(Boolean)) {
    const eq = entry.indexOf("=");
    // "=" inside a unix path is part of the path, not a name.
    const named = eq > 0 && !entry.slice(0, eq).includes(":") && !entry.startsWith("unix:");
    const name = named ? entry.slice(0, eq).trim() : entry;
    const address = normalizeAddress(named ? entry.slice(eq + 1) : entry);
    if (seen.has(name)) throw new HostListError(`host ${name} is listed twice`);
    seen.add(name);
    hosts.push({ name, address });
  }
  return hosts;
}

/** The entries of a host file: one a line (commas also separate), "#" starts a comment. */
export function splitHostText(text: string): string[] {
  return text.split("\n").flatMap((line) =>
    line.replace(/#.*$/, "").replace(/\s*=\s*/g, "=").split(/[,\s]+/)
  );
}

/** Resolves each --hosts value: "-" (stdin), an existing file, or a comma-separated list. */
export function loadHosts(values: string[], readStdin: () => string = readAllStdin): Host[] {
  const entries: string[] = [];
  for (const value of values) {
    if (value === "-") entries.push(...splitHostText(readStdin()));
    else if (existsSync(value) && statSync(value).isFile()) {
      entries.push(...splitHostText(readFileSync(value, "utf8")));
    } else if (!value.startsWith("unix:") && value.includes("/")) {
      throw new HostListError(`no such hosts file: ${value}`);
    } else entries.push(...value.split(","));
  }
  const hosts = parseHostEntries(entries);
  if (hosts.length === 0) throw new HostListError("the host list is empty");
  return hosts;
}

function readAllStdin(): string {
  return readFileSync(0, "utf8");
}
