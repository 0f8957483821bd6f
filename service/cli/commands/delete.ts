// `ioeventctl delete`: disarm one ioeventfd by id, or by its key with every key field
// given (a key is exact: it never matches another entry).
import { EXIT, UsageError } from "../errors.ts";
import { keyFields, type KeyFlags, keyOptions } from "../options.ts";
import { print } from "../output.ts";
import { anyKeyField, checkedKey, flagName } from "../spec_input.ts";
import type { CliCommand } from "./context.ts";

export const deleteCommand: CliCommand<KeyFlags> = {
  define(program) {
    const cmd = program.command("delete")
      .summary("disarm by id, or by key (--device --bar --offset --width --data)")
      .description(
        "Disarm one ioeventfd: by its id, or by its key with all five key flags. A key\n" +
          "matches exactly one entry or none (exit 4).",
      )
      .argument("[id]", "the ioeventfd's id (ioe-…)");
    return keyOptions(cmd, "for a key delete");
  },
  async run(ctx) {
    const id = ctx.args[0];
    const fields = keyFields(ctx.flags);
    if (id !== undefined && anyKeyField(fields)) {
      throw new UsageError("delete takes an id or a key, not both");
    }
    if (id === undefined && !anyKeyField(fields)) {
      throw new UsageError(
        "delete needs an id, or a key: --device --bar --offset --width --data",
      );
    }
    const req = id !== undefined ? { id } : { key: checkedKey(fields, flagName) };
    const { deleted } = await ctx.client().delete(req);
    print(ctx.out, `deleted ${deleted?.id}`, deleted);
    return EXIT.OK;
  },
};
