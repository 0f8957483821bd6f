// The agent's configuration: defaults, then a JSON file (--config or $IOEVENTD_CONFIG), then
// environment variables, then flags. With nothing set the agent manages the host's real
// devices only; a simulated host is asked for (--simulate, `simulate: true`,
// IOEVENTD_SIMULATE=1), as `deno task start` does, so that a fresh clone shows a working agent.
// FLAGS, ENV and KEYS below are the one list of settings: parsing, --help and the README's
// configuration table (test/config/readme_table_test.ts) all come from them.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { POLL_MODES, type PollMode, SHARD_MODES, type ShardMode } from "./native/engine.ts";

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
const OPTIONS = {
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

/** Edit distance with transpositions (optimal string alignment), case-insensitive. */
function distance(a: string, b: string): number {
  [a, b] = [a.toLowerCase(), b.toLowerCase()];
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** ` (did you mean "x"?)` for the closest candidate within a typo's reach, else "". */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const reach = Math.max(2, Math.floor(word.length / 4));
  const best = candidates
    .map((c) => ({ c, d: distance(word, c) }))
    .filter(({ d }) => d <= reach)
    .sort((x, y) => x.d - y.d)[0];
  return best ? ` (did you mean "${best.c}"?)` : "";
}

type Kind = "string" | "number" | "boolean" | "strings" | "numbers";

function kindOf(key: SettingKey): Kind {
  if (key === "cpus") return "numbers";
  if (key.startsWith("tls.")) return "string";
  const value = defaultConfig(".")[key as keyof AgentConfig];
  if (Array.isArray(value)) return "strings";
  return typeof value as "string" | "number" | "boolean";
}

function hasKind(value: unknown, kind: Kind): boolean {
  switch (kind) {
    case "strings":
      return Array.isArray(value) && value.every((v) => typeof v === "string");
    case "numbers":
      return Array.isArray(value) && value.every((v) => typeof v === "number");
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number";
    case "boolean":
      return typeof value === "boolean";
  }
}

const KIND_NAMES: Record<Kind, string> = {
  string: "a string",
  number: "a number",
  boolean: "true or false",
  strings: "a list of strings",
  numbers: "a list of numbers",
};

/** A text (env var or flag) as the key's value; throws ConfigError naming `source`. */
function fromText(key: SettingKey, text: string, source: string): unknown {
  switch (kindOf(key)) {
    case "numbers":
      return parseCpuList(text);
    case "strings":
      return text.split(",").map((s) => s.trim()).filter(Boolean);
    case "number":
      return text.trim() === "" ? NaN : Number(text);
    case "boolean":
      if (/^(1|true)$/i.test(text)) return true;
      if (/^(0|false|)$/i.test(text)) return false;
      throw new ConfigError(`${source} must be 1, 0, true or false (got "${text}")`);
    default:
      return text;
  }
}

/** The settings of a config file, every key and type checked: a typo is refused, not ignored. */
export function readConfigFile(file: string): Partial<Record<SettingKey, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${err instanceof Error ? err.message : err}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file}: must hold a JSON object`);
  }
  const known = Object.keys(KEYS) as SettingKey[];
  const topLevel = [...new Set(known.map((k) => k.split(".")[0]))];
  const errors: string[] = [];
  const out: Partial<Record<SettingKey, unknown>> = {};
  const take = (key: string, value: unknown) => {
    if (!(key in KEYS)) {
      const candidates = key.includes(".") ? known : topLevel;
      errors.push(`unknown key "${key}"${didYouMean(key, candidates)}`);
      return;
    }
    const kind = kindOf(key as SettingKey);
    if (!hasKind(value, kind)) {
      errors.push(`"${key}" must be ${KIND_NAMES[kind]} (got ${JSON.stringify(value)})`);
      return;
    }
    out[key as SettingKey] = value;
  };
  for (const [key, value] of Object.entries(parsed)) {
    if (key === "tls" && value === null) continue;
    if (key === "tls") {
      if (typeof value !== "object" || Array.isArray(value)) {
        errors.push(`"tls" must be an object with cert, key and ca, or null`);
        continue;
      }
      for (const [sub, v] of Object.entries(value)) take(`tls.${sub}`, v);
      continue;
    }
    take(key, value);
  }
  if (errors.length > 0) throw new ConfigError(`config file ${file}: ${errors.join("; ")}`);
  return out;
}

/** What a command line asks for: the usage, or an agent with this configuration. */
export type CommandLine = { help: true } | { help: false; config: AgentConfig };

export function parseCommandLine(
  args: string[],
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): CommandLine {
  let values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  try {
    ({ values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const flag = /option '(--[^'=]+)/.exec(message)?.[1];
    const hint = flag ? didYouMean(flag, Object.keys(FLAGS).map((f) => `--${f}`)) : "";
    throw new ConfigError(hint ? `${message}${hint}` : `${message} (--help lists the flags)`);
  }
  if (values.help) return { help: true };
  if (values.simulate && values["no-simulate"]) {
    throw new ConfigError("--simulate and --no-simulate exclude each other");
  }

  // Layers, later wins: file, environment, flags.
  const set = new Map<SettingKey, unknown>();
  const file = (values.config as string | undefined) ?? env("IOEVENTD_CONFIG");
  if (file) {
    for (const [k, v] of Object.entries(readConfigFile(file))) {
      set.set(k as SettingKey, v);
    }
  }
  for (const [name, key] of Object.entries(ENV)) {
    const text = env(name);
    if (text !== undefined) set.set(key, fromText(key, text, `$${name}`));
  }
  for (const [name, spec] of Object.entries(FLAGS)) {
    const value = values[name];
    if (value === undefined || spec.key === undefined) continue;
    if (spec.type === "boolean") {
      if (value) set.set(spec.key, spec.value);
    } else if (spec.multiple) {
      set.set(spec.key, value);
    } else {
      set.set(spec.key, fromText(spec.key, value as string, `--${name}`));
    }
  }

  const stateDir = (set.get("stateDir") as string | undefined) ?? ".state";
  const config: AgentConfig = defaultConfig(stateDir);
  const fields = config as unknown as Record<string, unknown>;
  for (const [key, value] of set) {
    if (key === "stateDir") continue; // resolved by defaultConfig, which derives listen from it
    if (key.startsWith("tls.")) {
      config.tls ??= { cert: "", key: "", ca: "" };
      config.tls[key.slice(4) as "cert" | "key" | "ca"] = value as string;
    } else {
      fields[key] = value;
    }
  }
  try {
    return { help: false, config: checkConfig(config) };
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
}

/** The configuration a command line (with the environment and config file) gives. */
export function loadConfig(args: string[]): AgentConfig {
  const line = parseCommandLine(args);
  if (line.help) throw new ConfigError("--help asks for the usage, not a configuration");
  return line.config;
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
