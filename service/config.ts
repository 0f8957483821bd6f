// The agent's configuration: defaults, then a JSON file (--config or $IOEVENTD_CONFIG), then
// environment variables, then flags. With nothing set the agent manages the host's real
// devices only; a simulated host is asked for (--simulate, `simulate: true`,
// IOEVENTD_SIMULATE=1), as `deno task start` does, so that a fresh clone shows a working agent.
// What each setting means and how it is spelt is in settings.ts (the one list behind parsing,
// --help and the README's table); reading a command line, the environment and a file is in
// config_loader.ts.
import { join, resolve } from "node:path";
import { POLL_MODES, type PollMode, SHARD_MODES, type ShardMode } from "./native/engine.ts";
import { TAKE_OVER_MODES, type TakeOverMode } from "./upgrade/successor.ts";

export interface AgentConfig {
  /** Journal, simulated host and the default socket live here. */
  stateDir: string;
  /** gRPC listeners: "unix:///path.sock" or "host:port" (TLS when `tls` is set). */
  listen: string[];
  /** Plaintext TCP is refused unless this is set; it is then reported as a warning. */
  allowInsecureTcp: boolean;
  /** PEM files for TCP listeners: mutual TLS, clients need a certificate from `ca`. */
  tls: { cert: string; key: string; ca: string } | null;
  /** JSON file mapping identities to roles (service/security/README.md); "": built-in. */
  policyFile: string;
  /** JSON-lines audit of every mutation; "": <stateDir>/audit.jsonl. */
  auditLog: string;
  /** Requests per second per identity (token bucket), and the burst; 0 disables. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  /** Concurrent streaming calls (watches) per identity; 0 disables. */
  maxStreamsPerIdentity: number;
  /** Identities the two limits above do not apply to (the host's own tooling: "local"). */
  unlimitedIdentities: string[];
  /** Largest request message accepted, in bytes. */
  maxMessageBytes: number;
  /**
   * The hand-over intake's Unix socket (SOCK_SEQPACKET, SCM_RIGHTS; native/README.md):
   * processes hand their eventfds over instead of letting the agent take them. "": none.
   * Default <stateDir>/run/handover.sock.
   */
  handoverSocket: string;
  /** Its file mode: 0o666 lets any local process hand over its own descriptors. */
  handoverSocketMode: number;
  /** How long a handle lives unused, in ms. */
  handoverTtlMs: number;
  /** Most unused handles held (each holds a descriptor); also the per-sender-uid bound. */
  handoverMaxHandles: number;
  /**
   * Taking over from an agent running on the same state directory (README "Upgrades"):
   * "auto" when one answers on <stateDir>/run/upgrade.sock, "require" (fail if none),
   * "never".
   */
  takeOver: TakeOverMode;
  /**
   * What an agent does once it has handed over: "exit" (systemd: the successor is the main
   * process now) or "linger" (Kubernetes: stay, not ready, until the pod is deleted, so the
   * kubelet does not restart the container and take the node back).
   */
  afterHandOver: "exit" | "linger";
  /** HTTP address of /metrics and the health endpoints ("host:port"; "" disables). */
  metricsListen: string;
  /** Directories shaped like /sys/bus/pci/devices; the real one is read-only for the agent. */
  sysfsRoots: string[];
  /**
   * Create and manage a simulated host (a GPU and a NIC) under stateDir/sim. Off unless asked
   * for: a simulated device beside real ones is a device nobody meant to program.
   */
  simulate: boolean;
  /** Devices managed although not bound to vfio-pci ("0000:65:00.0" or "10de:2330"). */
  allow: string[];
  /** Devices never managed; overrides everything. */
  deny: string[];
  maxPerDevice: number;
  maxPerOwner: number;
  workers: number;
  pollMode: PollMode;
  spinBudgetUs: number;
  /**
   * Which worker watches a new eventfd: "round-robin" (default), or "device" — by a hash of
   * its BAR's device, so that every write to one device is made by one worker, in order
   * (--shard, $IOEVENTD_SHARD).
   */
  shard: ShardMode;
  /**
   * CPU ids the workers are pinned to: worker i runs on cpus[i % cpus.length] only; [] (the
   * default) pins nothing (--cpus 0,1, $IOEVENTD_CPUS). Nothing is chosen automatically:
   * to keep a device's writes on its NUMA node (ListDevices reports a device's numaNode),
   * list CPUs of that node here (/sys/devices/system/node/node<N>/cpulist), and with
   * shard "device" its writes stay on one of them.
   */
  cpus: number[];
  /** Period of the canary that measures dispatch latency; 0 disables it. */
  canaryPeriodUs: number;
  rescanIntervalMs: number;
  reflection: boolean;
  /** How long in-flight calls may run after SIGTERM. */
  shutdownGraceMs: number;
  /** Opt-in per-ioeventfd metric series (cardinality grows with registrations). */
  perIoeventfdMetrics: boolean;
}

export const REAL_SYSFS = "/sys/bus/pci/devices";

export function defaultConfig(
  stateDir = Deno.env.get("IOEVENTD_STATE_DIR") ?? ".state",
): AgentConfig {
  const dir = resolve(stateDir);
  return {
    stateDir: dir,
    listen: [`unix://${join(dir, "run", "ioeventd.sock")}`],
    allowInsecureTcp: false,
    tls: null,
    policyFile: "",
    auditLog: "",
    rateLimitPerSecond: 1000,
    rateLimitBurst: 5000,
    maxStreamsPerIdentity: 64,
    unlimitedIdentities: ["local"],
    maxMessageBytes: 4 * 1024 * 1024,
    handoverSocket: join(dir, "run", "handover.sock"),
    handoverSocketMode: 0o666,
    handoverTtlMs: 60_000,
    handoverMaxHandles: 16_384,
    takeOver: "auto",
    afterHandOver: "exit",
    metricsListen: "127.0.0.1:9464",
    sysfsRoots: [REAL_SYSFS],
    simulate: false,
    allow: [],
    deny: [],
    maxPerDevice: 1000,
    maxPerOwner: 10000,
    workers: 1,
    pollMode: "block",
    spinBudgetUs: 50,
    shard: "round-robin",
    cpus: [],
    canaryPeriodUs: 10_000,
    rescanIntervalMs: 5_000,
    reflection: true,
    shutdownGraceMs: 5_000,
    perIoeventfdMetrics: false,
  };
}

/** The simulated host's sysfs root inside the state directory. */
export function simulatedSysfsRoot(config: AgentConfig): string {
  return join(config.stateDir, "sim", "sys", "bus", "pci", "devices");
}

export function journalPath(config: AgentConfig): string {
  return join(config.stateDir, "journal.sqlite");
}

/** Where a running agent listens for its successor (README "Upgrades"). */
export function upgradeSocketPath(config: AgentConfig): string {
  return join(config.stateDir, "run", "upgrade.sock");
}

export function auditLogPath(config: AgentConfig): string {
  return config.auditLog ? resolve(config.auditLog) : join(config.stateDir, "audit.jsonl");
}

/** "0,1,4-7" → [0, 1, 4, 5, 6, 7]; anything else in the list becomes NaN (refused later). */
export function parseCpuList(value: string): number[] {
  return value.split(",").map((s) => s.trim()).filter(Boolean).flatMap((part) => {
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (!range) return [/^\d+$/.test(part) ? Number(part) : NaN];
    const [from, to] = [Number(range[1]), Number(range[2])];
    if (to < from || to - from > 1023) return [NaN];
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
}

/** Checks values a typo could break; throws one message naming every bad setting. */
export function checkConfig(c: AgentConfig): AgentConfig {
  const errors: string[] = [];
  if (!POLL_MODES.includes(c.pollMode)) errors.push(`pollMode must be one of ${POLL_MODES}`);
  if (!SHARD_MODES.includes(c.shard)) errors.push(`shard must be one of ${SHARD_MODES}`);
  if (!TAKE_OVER_MODES.includes(c.takeOver)) {
    errors.push(`takeOver must be one of ${TAKE_OVER_MODES}`);
  }
  if (c.afterHandOver !== "exit" && c.afterHandOver !== "linger") {
    errors.push("afterHandOver must be exit or linger");
  }
  if (
    !Array.isArray(c.cpus) || c.cpus.length > 1024 ||
    c.cpus.some((n) => !Number.isInteger(n) || n < 0 || n > 1023)
  ) {
    errors.push("cpus must be a list of CPU ids (0..1023), e.g. --cpus 0,1 or 2-5");
  }
  for (const [k, min] of [["workers", 1], ["maxPerDevice", 1], ["maxPerOwner", 1]] as const) {
    if (!Number.isInteger(c[k]) || c[k] < min) errors.push(`${k} must be an integer >= ${min}`);
  }
  for (
    const [k, min] of [
      ["rateLimitPerSecond", 0],
      ["rateLimitBurst", 1],
      ["maxStreamsPerIdentity", 0],
      ["maxMessageBytes", 1024],
      ["handoverTtlMs", 1],
      ["handoverMaxHandles", 1],
    ] as const
  ) {
    if (!Number.isInteger(c[k]) || c[k] < min) errors.push(`${k} must be an integer >= ${min}`);
  }
  for (const address of c.listen) {
    if (!address.startsWith("unix:") && !c.tls && !c.allowInsecureTcp) {
      errors.push(
        `listener ${address} is plaintext TCP: configure tls (--tls-cert, --tls-key, --tls-ca) or set allowInsecureTcp (--allow-insecure-tcp) to accept that`,
      );
    }
  }
  if (
    !Array.isArray(c.unlimitedIdentities) ||
    c.unlimitedIdentities.some((n) => typeof n !== "string")
  ) {
    errors.push("unlimitedIdentities must be a list of identity names");
  }
  if (c.tls) {
    for (const k of ["cert", "key", "ca"] as const) {
      if (typeof c.tls[k] !== "string" || !c.tls[k]) errors.push(`tls.${k} must be a file path`);
    }
    // Never both: with TLS configured, a plaintext TCP listener must not appear silently.
    if (c.allowInsecureTcp) errors.push("tls and allowInsecureTcp exclude each other");
    if (!c.policyFile) errors.push("tls needs a policyFile: without one no certificate has a role");
  }
  if (
    !Number.isInteger(c.handoverSocketMode) || c.handoverSocketMode < 0 ||
    c.handoverSocketMode > 0o777
  ) {
    errors.push("handoverSocketMode must be a file mode (0..0o777)");
  }
  if (c.metricsListen && !/^(\[[^\]]+\]|[^:]*):\d{1,5}$/.test(c.metricsListen)) {
    errors.push(`metricsListen must be "host:port" (port 0: any free one) or "" (disabled)`);
  }
  if (errors.length > 0) throw new Error(`invalid configuration: ${errors.join("; ")}`);
  return c;
}

/** A setting that is wrong as given: one line naming it, exit status 2 (usage). */
export class ConfigError extends Error {
  override name = "ConfigError";
}
