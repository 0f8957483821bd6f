// ioeventctl's command line (fleet aside: fleet_options.ts), on commander: the global
// flags, the flags commands share (defined once here, composed by each command), and
// the help. Commander gives each command its own --help and says "did you mean …" for an
// unknown command or flag; values stay text here and are read by numbers.ts and
// spec_input.ts, so every problem of a spec is reported at once.
import type { Command } from "commander";
import { defaultAddress } from "./client.ts";
import { UsageError } from "./errors.ts";
import type { Fields } from "./spec_input.ts";

export { EXIT, UsageError } from "./errors.ts";

/** Flags every command takes, before or after its name. */
export interface GlobalFlags {
  address?: string;
  json?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
}

export const GLOBAL_HELP = `
The agent address comes from --address, else $IOEVENTD_ADDRESS, else
${defaultAddress()}. Numbers are decimal or 0x-hex, nothing else.

TCP agents use mutual TLS: --tls-ca F --tls-cert F --tls-key F (else $IOEVENTD_TLS_CA,
$IOEVENTD_TLS_CERT, $IOEVENTD_TLS_KEY); --tls-server-name N when the address is an IP.

Exit codes: 0 done; 2 usage (also local validation with the agent's own rules); 3 agent
unreachable; 4 rejected by the agent (the reason is on stderr); 1 anything else.`;

export function globalOptions(program: Command): Command {
  return program
    .option("--address <address>", "the agent (unix:///path or host:port)")
    .option("--json", "JSON for pipelines instead of tables")
    .option("--tls-ca <file>", "CA bundle that signed the agent's certificate (TLS on)")
    .option("--tls-cert <file>", "client certificate (mutual TLS)")
    .option("--tls-key <file>", "client key (mutual TLS)")
    .option("--tls-server-name <name>", "the name in the agent's certificate, for an IP");
}

const collect = (value: string, previous: string[]) => [...previous, value];

export interface KeyFlags {
  device?: string;
  bar?: string;
  offset?: string;
  width?: string;
  data?: string;
}

/** --device --bar --offset --width --data: the kernel's key of an ioeventfd. */
export function keyOptions(cmd: Command, required: string): Command {
  return cmd
    .option("--device <address>", `PCI address, e.g. 0000:65:00.0 (${required})`)
    .option("--bar <n>", `BAR index 0..5 (${required})`)
    .option("--offset <n>", `byte offset in the BAR (${required})`)
    .option("--width <n>", `write width: 1, 2, 4 or 8 bytes (${required})`)
    .option("--data <n>", `the value written (${required})`);
}

export function keyFields(f: KeyFlags): Fields {
  return { device: f.device, bar: f.bar, offset: f.offset, width: f.width, data: f.data };
}

/** --label k=v, repeatable. */
export function labelOption(cmd: Command, what: string): Command {
  return cmd.option("--label <key=value>", what, collect, [] as string[]);
}

/** --device and --owner as filters (list, watch). */
export function filterOptions(cmd: Command): Command {
  return cmd
    .option("--device <address>", "only this device")
    .option("--owner <owner>", "only this owner");
}

export function labelsOf(values: string[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const kv of values ?? []) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new UsageError(`--label: wants key=value, got ${kv}`);
    labels[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return labels;
}
