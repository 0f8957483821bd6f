// `ioeventctl devices`: the PCI devices the agent sees.
import { EXIT } from "../options.ts";
import { deviceRows, print } from "../output.ts";
import { renderTable } from "../table.ts";
import type { CommandContext } from "./context.ts";

export async function devices(ctx: CommandContext): Promise<number> {
  const { managed, rescan } = ctx.values;
  const list = await ctx.client().listDevices(managed ?? false, rescan ?? false);
  print(ctx.out, renderTable(deviceRows(list)), list);
  return EXIT.OK;
}
