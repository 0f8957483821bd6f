// `ioeventctl reconcile -f desired.json`: make an owner's set equal to a file.
import { readFileSync } from "node:fs";
import type { RawSpec } from "../../registry/validation.ts";
import { EXIT, UsageError } from "../options.ts";
import { print } from "../output.ts";
import { shapeChecked } from "../spec_flags.ts";
import type { CommandContext } from "./context.ts";

export async function reconcile(ctx: CommandContext): Promise<number> {
  const { values } = ctx;
  if (!values.file) throw new UsageError("usage: reconcile -f desired.json");
  const doc = JSON.parse(readFileSync(values.file, "utf8")) as {
    owner?: string;
    desired?: RawSpec[];
  };
  const owner = values.owner ?? doc.owner;
  if (!owner) throw new UsageError("the file or --owner must name the owner");
  const desired = (doc.desired ?? []).map((d) => shapeChecked(d));
  const dryRun = values["dry-run"] ?? false;
  const r = await ctx.client().reconcile({ owner, desired, dryRun });
  print(
    ctx.out,
    `added ${r.added.length}, kept ${r.kept.length}, removed ${r.removed.length}` +
      (dryRun ? " (dry run: nothing changed)" : ""),
    r,
  );
  return EXIT.OK;
}
