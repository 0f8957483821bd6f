// `ioeventctl get <id>`: one ioeventfd with its counters.
import { EXIT } from "../errors.ts";
import { ioeventfdRows, print } from "../output.ts";
import { renderTable } from "../table.ts";
import type { CliCommand } from "./context.ts";

export const get: CliCommand = {
  define: (program) =>
    program.command("get")
      .description("one ioeventfd with its counters")
      .argument("<id>", "the ioeventfd's id (ioe-…)"),
  async run(ctx) {
    const i = await ctx.client().get(ctx.args[0]!);
    print(ctx.out, renderTable(ioeventfdRows([i])), i);
    return EXIT.OK;
  },
};
