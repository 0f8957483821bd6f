// `ioeventctl device <address>`: one device, with its BARs and MSI-X layout.
import { EXIT } from "../errors.ts";
import { describeDevice, print } from "../output.ts";
import type { CliCommand } from "./context.ts";

export const device: CliCommand = {
  define: (program) =>
    program.command("device")
      .description("one device, with BARs and MSI-X layout")
      .argument("<address>", "PCI address, e.g. 0000:65:00.0"),
  async run(ctx) {
    const d = await ctx.client().getDevice(ctx.args[0]!);
    print(ctx.out, describeDevice(d), d);
    return EXIT.OK;
  },
};
