// `ioeventctl delete`: disarm one ioeventfd by id or by its key.
import { EXIT } from "../options.ts";
import { print } from "../output.ts";
import type { CommandContext } from "./context.ts";

export async function deleteCommand(ctx: CommandContext): Promise<number> {
  const { values, args } = ctx;
  const req = args[0] ? { id: args[0] } : {
    key: {
      device: values.device,
      bar: Number(values.bar ?? 0),
      offset: values.offset ?? "0",
      width: Number(values.width ?? 0),
      data: values.data ?? "0",
    },
  };
  const { deleted } = await ctx.client().delete(req);
  print(ctx.out, `deleted ${deleted?.id}`, deleted);
  return EXIT.OK;
}
