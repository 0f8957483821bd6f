// `ioeventctl device <address>`: one device, with its BARs and MSI-X layout.
import { EXIT, UsageError } from "../options.ts";
import { describeDevice, print } from "../output.ts";
import type { CommandContext } from "./context.ts";

export async function device(ctx: CommandContext): Promise<number> {
  if (!ctx.args[0]) throw new UsageError("usage: device <address>");
  const d = await ctx.client().getDevice(ctx.args[0]);
  print(ctx.out, describeDevice(d), d);
  return EXIT.OK;
}
