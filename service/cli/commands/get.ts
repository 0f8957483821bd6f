// `ioeventctl get <id>`: one ioeventfd with its counters.
import { EXIT, UsageError } from "../options.ts";
import { ioeventfdRows, print } from "../output.ts";
import { renderTable } from "../table.ts";
import type { CommandContext } from "./context.ts";

export async function get(ctx: CommandContext): Promise<number> {
  if (!ctx.args[0]) throw new UsageError("usage: get <id>");
  const i = await ctx.client().get(ctx.args[0]);
  print(ctx.out, renderTable(ioeventfdRows([i])), i);
  return EXIT.OK;
}
