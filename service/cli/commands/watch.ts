// `ioeventctl watch`: the agent's changes, one line per event.
import { EXIT } from "../options.ts";
import { eventLine, reportError } from "../output.ts";
import type { CommandContext } from "./context.ts";

export function watch(ctx: CommandContext): Promise<number> {
  const { values, out } = ctx;
  return new Promise<number>((resolve) => {
    const call = ctx.client().watch(
      { device: values.device ?? "", owner: values.owner ?? "" },
      (e) => out.write(out.json ? JSON.stringify(e) : eventLine(e)),
      (err) => resolve(reportError(err, out)),
    );
    call.on("end", () => resolve(EXIT.OK));
  });
}
