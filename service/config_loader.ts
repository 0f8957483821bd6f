// Reads the agent's configuration: defaults, then a JSON file (--config or $IOEVENTD_CONFIG),
// then IOEVENTD_* environment variables, then flags. Anything unknown or of the wrong type is
// refused naming it (with a "did you mean"), so a typo never runs a host on defaults.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  type AgentConfig,
  checkConfig,
  ConfigError,
  defaultConfig,
  parseCpuList,
} from "./config.ts";
import { didYouMean } from "./did_you_mean.ts";
import { ENV, FLAGS, KEYS, OPTIONS, type SettingKey } from "./settings.ts";

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
