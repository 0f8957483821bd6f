// ioeventctl: the agent's command line, for people (tables) and pipelines (--json).
// This file only dispatches: each command is a module of ./commands/, the shared flags are
// in ./options.ts, the printing in ./output.ts, and `fleet` has its own (./fleet.ts).
//
// Exit codes: 0 success; 2 usage error; 3 agent unreachable; 4 request rejected by the agent
// (the reason is printed on stderr); 1 anything else.
import type * as grpc from "@grpc/grpc-js";
import { Command, CommanderError } from "commander";
import { AgentClient, channelSettings, defaultAddress } from "./client.ts";
import type { CliCommand } from "./commands/context.ts";
import { create } from "./commands/create.ts";
import { deleteCommand } from "./commands/delete.ts";
import { device } from "./commands/device.ts";
import { devices } from "./commands/devices.ts";
import { get } from "./commands/get.ts";
import { info } from "./commands/info.ts";
import { list } from "./commands/list.ts";
import { reconcile } from "./commands/reconcile.ts";
import { sim } from "./commands/sim.ts";
import { watch } from "./commands/watch.ts";
import { EXIT, UsageError } from "./errors.ts";
import { runFleet } from "./fleet.ts";
import { GLOBAL_HELP, type GlobalFlags, globalOptions } from "./options.ts";
import { type Out, reportError } from "./output.ts";

export { EXIT } from "./errors.ts";

const COMMANDS: CliCommand[] = [
  info,
  devices,
  device,
  create,
  deleteCommand,
  get,
  list,
  watch,
  reconcile,
  sim,
] as CliCommand[];

function connect(flags: GlobalFlags): AgentClient {
  return new AgentClient(
    flags.address ?? defaultAddress(),
    ...channelSettings({
      ca: flags.tlsCa,
      cert: flags.tlsCert,
      key: flags.tlsKey,
      serverName: flags.tlsServerName,
    }),
  );
}

/** Runs one command; usage errors propagate, a failed call becomes its exit code. */
async function execute(command: CliCommand, cmd: Command, out: Out): Promise<number> {
  const flags = cmd.optsWithGlobals() as GlobalFlags;
  out.json = flags.json ?? false;
  let client: AgentClient | undefined;
  try {
    return await command.run({
      flags,
      args: cmd.processedArgs as (string | undefined)[],
      out,
      client: () => client ??= connect(flags),
    });
  } catch (err) {
    if (typeof (err as grpc.ServiceError)?.code === "number") {
      return reportError(err as grpc.ServiceError, out);
    }
    throw err;
  } finally {
    client?.close();
  }
}

function program(out: Out, exit: { code: number }): Command {
  const root = new Command("ioeventctl")
    .description("control an ioeventd agent")
    .usage("[--address A] [--json] <command> [options]")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => out.write(s.trimEnd()),
      writeErr: (s) => out.error(s.trimEnd()),
      outputError: (s, write) => write(`ioeventctl: ${s}`),
    })
    .showHelpAfterError("(ioeventctl <command> --help for usage)")
    .addHelpText("after", GLOBAL_HELP);
  globalOptions(root);
  for (const command of COMMANDS) {
    command.define(root).action(async (...args: unknown[]) => {
      exit.code = await execute(command, args.at(-1) as Command, out);
    });
  }
  // Never run from here (run() hands `fleet` over first); listed so the help names it.
  root.command("fleet")
    .summary("the same against many agents in parallel (ioeventctl fleet --help)")
    .argument("<command>", "info, health, list, watch or rollout-gate");
  return root;
}

/** Where the command's name is: the first argument that is neither a flag nor a flag's value. */
function commandIndex(args: string[]): number {
  const valued = new Set(
    ["address", "tls-ca", "tls-cert", "tls-key", "tls-server-name"].map((f) => `--${f}`),
  );
  for (let i = 0; i < args.length; i++) {
    if (valued.has(args[i])) i++;
    else if (!args[i].startsWith("-")) return i;
  }
  return -1;
}

async function run(args: string[], out: Out): Promise<number> {
  // `fleet` has options of its own (service/cli/fleet.ts); flags before it (--json) go along.
  const first = commandIndex(args);
  if (args[first] === "fleet") {
    return await runFleet(args.filter((_, i) => i !== first), { write: out.write });
  }
  const exit = { code: EXIT.OK as number };
  try {
    await program(out, exit).parseAsync(args, { from: "user" });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    // --help and --version are done; anything else commander refused (an unknown command
    // or flag, a missing argument, no command at all) has been said on stderr.
    return err.code === "commander.helpDisplayed" || err.code === "commander.version"
      ? EXIT.OK
      : EXIT.USAGE;
  }
  return exit.code;
}

export async function main(args: string[]): Promise<number> {
  const out: Out = {
    json: false,
    write: (s) => console.log(s),
    error: (s) => console.error(s),
  };
  try {
    return await run(args, out);
  } catch (err) {
    if (err instanceof UsageError) {
      for (const line of err.message.split("\n")) console.error(`ioeventctl: ${line}`);
      return EXIT.USAGE;
    }
    console.error(`ioeventctl: ${err}`);
    return EXIT.FAILURE;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
