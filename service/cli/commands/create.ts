// `ioeventctl create`: arm one ioeventfd, its spec checked locally first.
import { EXIT, UsageError } from "../options.ts";
import { ioeventfdRows, print } from "../output.ts";
import { shapeChecked, specFromFlags } from "../spec_flags.ts";
import { renderTable } from "../table.ts";
import type { CommandContext } from "./context.ts";

export async function create(ctx: CommandContext): Promise<number> {
  const { values } = ctx;
  if (!values.owner) throw new UsageError("--owner is required");
  const spec = shapeChecked(specFromFlags(values));
  const created = await ctx.client().create({
    spec,
    owner: values.owner,
    requestId: values["request-id"] ?? "",
  });
  print(ctx.out, renderTable(ioeventfdRows([created])), created);
  return EXIT.OK;
}
