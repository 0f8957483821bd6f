// `ioeventctl devices`: the PCI devices the agent sees.
import { EXIT } from "../errors.ts";
import { deviceRows, print } from "../output.ts";
import { renderTable } from "../table.ts";
import type { CliCommand } from "./context.ts";

export const devices: CliCommand<{ managed?: boolean; rescan?: boolean }> = {
  define: (program) =>
    program.command("devices")
      .description("PCI devices the agent sees")
      .option("--managed", "only the devices ioeventd manages")
      .option("--rescan", "re-read sysfs first"),
  async run(ctx) {
    const { managed, rescan } = ctx.flags;
    const list = await ctx.client().listDevices(managed ?? false, rescan ?? false);
    print(ctx.out, renderTable(deviceRows(list)), list);
    return EXIT.OK;
  },
};
