// `ioeventctl list`: ioeventfds, filtered by device, owner and labels.
import { EXIT, labelsOf } from "../options.ts";
import { ioeventfdRows, print } from "../output.ts";
import { renderTable } from "../table.ts";
import type { CommandContext } from "./context.ts";

export async function list(ctx: CommandContext): Promise<number> {
  const { values } = ctx;
  const items = await ctx.client().listAll({
    device: values.device ?? "",
    owner: values.owner ?? "",
    labels: labelsOf(values.label),
  });
  print(ctx.out, renderTable(ioeventfdRows(items)), items);
  return EXIT.OK;
}
