// The one list of the agent's settings: each config-file key with its meaning, the flags and
// environment variables that set it. Parsing (config_loader.ts), --help and the README's
// configuration table (test/config/config_test.ts checks it) all come from here.
import { type AgentConfig, defaultConfig } from "./config.ts";

/** The keys of a config file: AgentConfig's, and tls's three as "tls.cert", "tls.key", "tls.ca". */
export type SettingKey = Exclude<keyof AgentConfig, "tls"> | "tls.cert" | "tls.key" | "tls.ca";

interface KeyDoc {
  /** The README's default column, where the value alone would not say it. */
  shownDefault?: string;
  help: string;
}

/** Every key of the config file, in the README's order, with what it means. */
export const KEYS: Record<SettingKey, KeyDoc> = {
  stateDir: { shownDefault: "`./.state`", help: "journal, simulated host, default socket" },
  listen: {
    shownDefault: "`unix://<stateDir>/run/ioeventd.sock`",
    help: "gRPC listeners; `host:port` is plaintext TCP unless TLS is configured",
  },
  allowInsecureTcp: {
    help: "plaintext TCP is refused without it, and reported as a warning when on",
  },
  "tls.cert": { shownDefault: "off", help: "PEM certificate of TCP listeners (mutual TLS)" },
  "tls.key": { shownDefault: "off", help: "its PEM private key" },
  "tls.ca": { shownDefault: "off", help: "PEM CA that client certificates must chain to" },
  policyFile: {
    shownDefault: "built-in",
    help: "identities → roles (see [Security](#security)); needed with TLS",
  },
  auditLog: { shownDefault: "`<stateDir>/audit.jsonl`", help: "JSON lines, one per mutation" },
  rateLimitPerSecond: { help: "requests per second per identity; 0 disables" },
  rateLimitBurst: { help: "burst of that token bucket" },
  maxStreamsPerIdentity: { help: "concurrent watches per identity; 0 disables" },
  unlimitedIdentities: { help: "identities the two limits above spare" },
  maxMessageBytes: { help: "largest request accepted" },
  handoverSocket: {
    shownDefault: "`<stateDir>/run/handover.sock`",
    help: 'hand-over intake (SCM_RIGHTS): processes hand their eventfds over; `""` disables',
  },
  handoverSocketMode: { shownDefault: "`0o666`", help: "its file mode" },
  handoverTtlMs: { help: "how long an unused handle lives" },
  handoverMaxHandles: { help: "unused handles held, in all and per sender uid" },
  takeOver: {
    help: "`auto` takes over from an agent running on the same state directory (no pause " +
      "in the doorbells, README [Upgrades](#upgrades)), `require` fails without one, `never`",
  },
  afterHandOver: {
    help: "`exit` once handed over (systemd), or `linger` not ready until stopped " +
      "(Kubernetes: the old pod stays until deleted)",
  },
  metricsListen: { help: '`/metrics`, `/healthz`, `/readyz`; `""` disables' },
  sysfsRoots: { help: "PCI trees to scan (the real one is only read)" },
  simulate: {
    help: "create and manage a simulated GPU + NIC under `<stateDir>/sim`; a simulated " +
      "device whose address a real device has is refused",
  },
  allow: {
    help: "manage devices not bound to vfio-pci (`0000:65:00.0` or `10de:2330`); deny wins",
  },
  deny: { help: "never manage these devices" },
  maxPerDevice: { help: "the kernel's limit, configurable" },
  maxPerOwner: { help: "per VM/tenant" },
  workers: { help: "epoll worker threads" },
  pollMode: { help: "`block`, `busy` (spin) or `adaptive` (spin `spinBudgetUs` after activity)" },
  spinBudgetUs: { help: "how long `adaptive` spins after activity" },
  shard: {
    help: "`device` keeps every ioeventfd of a device on one worker (its writes on one core, " +
      "in order)",
  },
  cpus: {
    help: "pin worker _i_ to `cpus[i % n]` (`--cpus 0,1` or `2-5`); pick CPUs of the device's " +
      "NUMA node (`ioeventctl device` shows it)",
  },
  canaryPeriodUs: { help: "period of the canary that measures dispatch latency; 0 disables" },
  rescanIntervalMs: { help: "device re-scan (hot-unplug, driver changes)" },
  reflection: { help: "gRPC server reflection (grpcurl, grpcui)" },
  shutdownGraceMs: { help: "how long in-flight calls may run after SIGTERM" },
  perIoeventfdMetrics: { help: "opt-in per-ioeventfd metric series" },
};

/** Every flag as parseArgs takes it, in the usage's order. */
export const OPTIONS = {
  help: { type: "boolean", short: "h" },
  config: { type: "string" },
  "state-dir": { type: "string" },
  listen: { type: "string", multiple: true },
  "allow-insecure-tcp": { type: "boolean" },
  "metrics-listen": { type: "string" },
  "per-ioeventfd-metrics": { type: "boolean" },
  "sysfs-root": { type: "string", multiple: true },
  simulate: { type: "boolean" },
  "no-simulate": { type: "boolean" },
  allow: { type: "string", multiple: true },
  deny: { type: "string", multiple: true },
  workers: { type: "string" },
  "poll-mode": { type: "string" },
  shard: { type: "string" },
  cpus: { type: "string" },
  "max-per-device": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-ca": { type: "string" },
  policy: { type: "string" },
  "audit-log": { type: "string" },
  "rate-limit": { type: "string" },
  "handover-socket": { type: "string" },
  "take-over": { type: "string" },
  "after-hand-over": { type: "string" },
} as const;

interface FlagDoc {
  /** The value's name in the usage. */
  arg?: string;
  /** The key it sets; a boolean flag sets `value`. */
  key?: SettingKey;
  value?: boolean;
  help: string;
}

/** What each flag sets and means (every flag has an entry: the type says so). */
const FLAG_DOCS: Record<keyof typeof OPTIONS, FlagDoc> = {
  help: { help: "print this usage and exit" },
  config: { arg: "FILE", help: "JSON config file (keys as in README.md)" },
  "state-dir": { arg: "DIR", key: "stateDir", help: KEYS.stateDir.help },
  listen: { arg: "ADDR", key: "listen", help: "gRPC listener, unix:///path.sock or host:port" },
  "allow-insecure-tcp": {
    key: "allowInsecureTcp",
    value: true,
    help: "accept a plaintext TCP listener",
  },
  "metrics-listen": {
    arg: "HOST:PORT",
    key: "metricsListen",
    help: '/metrics, /healthz, /readyz; "" disables',
  },
  "per-ioeventfd-metrics": {
    key: "perIoeventfdMetrics",
    value: true,
    help: KEYS.perIoeventfdMetrics.help,
  },
  "sysfs-root": {
    arg: "DIR",
    key: "sysfsRoots",
    help: "PCI tree to scan, like /sys/bus/pci/devices",
  },
  simulate: {
    key: "simulate",
    value: true,
    help: "create and manage a simulated GPU + NIC under <state-dir>/sim",
  },
  "no-simulate": { key: "simulate", value: false, help: "real devices only (the default)" },
  allow: {
    arg: "DEV",
    key: "allow",
    help: "manage a device not bound to vfio-pci (address or vendor:device)",
  },
  deny: { arg: "DEV", key: "deny", help: "never manage this device" },
  workers: { arg: "N", key: "workers", help: KEYS.workers.help },
  "poll-mode": { arg: "MODE", key: "pollMode", help: "block, busy or adaptive" },
  shard: { arg: "MODE", key: "shard", help: "round-robin or device" },
  cpus: { arg: "LIST", key: "cpus", help: "pin workers to these CPUs (0,1 or 2-5)" },
  "max-per-device": { arg: "N", key: "maxPerDevice", help: "ioeventfds per device" },
  "tls-cert": { arg: "FILE", key: "tls.cert", help: KEYS["tls.cert"].help },
  "tls-key": { arg: "FILE", key: "tls.key", help: KEYS["tls.key"].help },
  "tls-ca": { arg: "FILE", key: "tls.ca", help: KEYS["tls.ca"].help },
  policy: { arg: "FILE", key: "policyFile", help: "identities → roles" },
  "audit-log": { arg: "FILE", key: "auditLog", help: KEYS.auditLog.help },
  "rate-limit": { arg: "N", key: "rateLimitPerSecond", help: KEYS.rateLimitPerSecond.help },
  "handover-socket": { arg: "PATH", key: "handoverSocket", help: "hand-over intake socket" },
  "take-over": {
    arg: "MODE",
    key: "takeOver",
    help: "auto, require or never: take over from the agent running here",
  },
  "after-hand-over": {
    arg: "WHAT",
    key: "afterHandOver",
    help: "exit (systemd) or linger until stopped (Kubernetes)",
  },
};

type FlagSpec = FlagDoc & { type: "string" | "boolean"; multiple?: boolean };

/** Every flag: its parseArgs option and its doc, in the usage's order. */
export const FLAGS: Record<string, FlagSpec> = Object.fromEntries(
  Object.entries(OPTIONS).map(([name, option]) => [
    name,
    { ...option, ...FLAG_DOCS[name as keyof typeof OPTIONS] },
  ]),
);

/** Environment variables, each setting one key (IOEVENTD_CONFIG names the file). */
export const ENV: Record<string, SettingKey> = {
  IOEVENTD_STATE_DIR: "stateDir",
  IOEVENTD_LISTEN: "listen",
  IOEVENTD_METRICS_LISTEN: "metricsListen",
  IOEVENTD_PER_IOEVENTFD_METRICS: "perIoeventfdMetrics",
  IOEVENTD_SYSFS_ROOTS: "sysfsRoots",
  IOEVENTD_SIMULATE: "simulate",
  IOEVENTD_ALLOW: "allow",
  IOEVENTD_DENY: "deny",
  IOEVENTD_WORKERS: "workers",
  IOEVENTD_POLL_MODE: "pollMode",
  IOEVENTD_SHARD: "shard",
  IOEVENTD_CPUS: "cpus",
  IOEVENTD_MAX_PER_DEVICE: "maxPerDevice",
  IOEVENTD_MAX_PER_OWNER: "maxPerOwner",
  IOEVENTD_ALLOW_INSECURE_TCP: "allowInsecureTcp",
  IOEVENTD_POLICY_FILE: "policyFile",
  IOEVENTD_AUDIT_LOG: "auditLog",
  IOEVENTD_RATE_LIMIT_PER_SECOND: "rateLimitPerSecond",
  IOEVENTD_HANDOVER_SOCKET: "handoverSocket",
  IOEVENTD_TAKE_OVER: "takeOver",
  IOEVENTD_AFTER_HAND_OVER: "afterHandOver",
};

/** The flags that set `key`, as written on a command line. */
export function flagsOf(key: SettingKey): string[] {
  return Object.entries(FLAGS)
    .filter(([, f]) => f.key === key).map(([name]) => `--${name}`);
}

export function envOf(key: SettingKey): string[] {
  return Object.entries(ENV).filter(([, k]) => k === key).map(([name]) => name);
}

/** `--help`: every flag, one line each. */
export function usage(): string {
  const flags = Object.entries(FLAGS).map(([name, f]) => [
    `--${name}${f.arg ? ` ${f.arg}` : ""}`,
    f.help.replaceAll("`", "") + (f.multiple ? " (repeat)" : ""),
  ]);
  const width = Math.max(...flags.map(([f]) => f.length)) + 2;
  return [
    "usage: deno run --allow-all service/main.ts [flags]",
    "",
    "The per-host ioeventfd agent. Settings: defaults, then a JSON file (--config or",
    "$IOEVENTD_CONFIG), then IOEVENTD_* environment variables, then these flags (README.md,",
    '"Configuration"). Without --simulate it manages the host\'s real devices only.',
    "",
    ...flags.map(([f, help]) => `  ${f.padEnd(width)}${help}`),
  ].join("\n");
}

function shown(value: unknown): string {
  if (Array.isArray(value)) return value.length ? value.map((v) => `\`${v}\``).join(", ") : "`[]`";
  if (typeof value === "string") return value === "" ? '`""`' : `\`${value}\``;
  return String(value);
}

/** The README's configuration table (header first): key, flags, env, default, meaning. */
export function configTableRows(): string[][] {
  const defaults = defaultConfig(".state") as unknown as Record<string, unknown>;
  return [
    ["key", "flag", "env", "default", "meaning"],
    ...(Object.entries(KEYS) as [SettingKey, KeyDoc][]).map(([key, doc]) => {
      const flags = flagsOf(key);
      const repeat = flags.some((f) => FLAGS[f.slice(2)].multiple);
      return [
        `\`${key}\``,
        flags.map((f) => `\`${f}\``).join(", ") + (repeat ? " (repeat)" : ""),
        envOf(key).map((e) => `\`${e}\``).join(", "),
        doc.shownDefault ?? shown(defaults[key]),
        doc.help,
      ];
    }),
  ];
}
