// `ioeventctl list`: ioeventfds, filtered by device, owner and labels.
import { EXIT } from "../errors.ts";
import { filterOptions, labelOption, labelsOf } from "../options.ts";
import { ioeventfdRows, print } from "../output.ts";
import { renderTable } from "../table.ts";
import type { CliCommand } from "./context.ts";

export const list: CliCommand<{ device?: string; owner?: string; label?: string[] }> = {
  define: (program) =>
    labelOption(
      filterOptions(program.command("list").description("ioeventfds, with their counters")),
      "only those with this label (k=v, repeatable: every pair must match)",
    ),
  async run(ctx) {
    const f = ctx.flags;
    const items = await ctx.client().listAll({
      device: f.device ?? "",
      owner: f.owner ?? "",
      labels: labelsOf(f.label),
    });
    print(ctx.out, renderTable(ioeventfdRows(items)), items);
    return EXIT.OK;
  },
};
