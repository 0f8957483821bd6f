// What every command gets: its flags, its positional arguments, where output goes, and the
// agent (connected on first use; the entry closes it).
import type { AgentClient } from "../client.ts";
import type { CliValues } from "../options.ts";
import type { Out } from "../output.ts";

export interface CommandContext {
  values: CliValues;
  /** Positional arguments after the command's name. */
  args: string[];
  out: Out;
  client(): AgentClient;
}

export type Command = (ctx: CommandContext) => Promise<number>;
