// ioeventctl: the agent's command line, for people (tables) and pipelines (--json).
// This file only dispatches: each command is a module of ./commands/, the flags are in
// ./options.ts, the printing in ./output.ts, and `fleet` has its own (./fleet.ts).
//
// Exit codes: 0 success; 2 usage error; 3 agent unreachable; 4 request rejected by the agent
// (the reason is printed); 1 anything else.
import type * as grpc from "@grpc/grpc-js";
import { AgentClient, channelSettings, defaultAddress } from "./client.ts";
import type { Command, CommandContext } from "./commands/context.ts";
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
import { runFleet } from "./fleet.ts";
import { type CliValues, EXIT, parseCli, USAGE, UsageError } from "./options.ts";
import { type Out, reportError } from "./output.ts";

export { EXIT } from "./options.ts";

const COMMANDS: Record<string, Command> = {
  info,
  devices,
  device,
  create,
  delete: deleteCommand,
  get,
  list,
  watch,
  reconcile,
  sim,
};

function connect(values: CliValues): AgentClient {
  return new AgentClient(
    values.address ?? defaultAddress(),
    ...channelSettings({
      ca: values["tls-ca"],
      cert: values["tls-cert"],
      key: values["tls-key"],
      serverName: values["tls-server-name"],
    }),
  );
}

async function run(args: string[], out: Out): Promise<number> {
  // `fleet` has options of its own (service/cli/fleet.ts); flags before it (--json) go along.
  const first = args.findIndex((a) => !a.startsWith("-"));
  if (args[first] === "fleet") {
    return await runFleet(args.filter((_, i) => i !== first), { write: out.write });
  }
  const { values, positionals } = parseCli(args);
  out.json = values.json ?? false;
  const [name, ...rest] = positionals;
  if (values.help || !name) {
    out.write(USAGE);
    return values.help ? EXIT.OK : EXIT.USAGE;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UsageError(`unknown command ${name}\n\n${USAGE}`);

  let client: AgentClient | undefined;
  const ctx: CommandContext = { values, args: rest, out, client: () => client ??= connect(values) };
  try {
    return await command(ctx);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if (typeof (err as grpc.ServiceError)?.code === "number") {
      return reportError(err as grpc.ServiceError, out);
    }
    throw err;
  } finally {
    client?.close();
  }
}

export async function main(args: string[]): Promise<number> {
  const out: Out = { json: false, write: (s) => console.log(s) };
  try {
    return await run(args, out);
  } catch (err) {
    if (err instanceof UsageError || (err as Error)?.name === "TypeError") {
      console.error(`ioeventctl: ${(err as Error).message}`);
      return EXIT.USAGE;
    }
    console.error(`ioeventctl: ${err}`);
    return EXIT.FAILURE;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
