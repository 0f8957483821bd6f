// What every command gets: its flags (its own and the global ones), its positional
// arguments, where output goes, and the agent (connected on first use; the entry closes
// it). A command is a module that defines itself on the program and runs.
import type { Command } from "commander";
import type { AgentClient } from "../client.ts";
import type { GlobalFlags } from "../options.ts";
import type { Out } from "../output.ts";

export interface CommandContext<F = unknown> {
  flags: F & GlobalFlags;
  /** Positional arguments as the command declares them (absent optional ones undefined). */
  args: (string | undefined)[];
  out: Out;
  client(): AgentClient;
}

export interface CliCommand<F = unknown> {
  /** Adds the command, its arguments, flags and help to `program`; returns the one to run. */
  define(program: Command): Command;
  run(ctx: CommandContext<F>): Promise<number>;
}
