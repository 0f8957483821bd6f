// `ioeventctl watch`: the agent's changes, one line per event, until Ctrl-C (exit 0). The
// stream ending any other way is a failure, as in `fleet watch`: an agent that stops or
// restarts ends it (exit 1), one that cannot be reached or breaks it is reported (3, 4).
import { EXIT } from "../errors.ts";
import { parseNumber } from "../numbers.ts";
import { filterOptions } from "../options.ts";
import { eventLine, reportError } from "../output.ts";
import type { CliCommand } from "./context.ts";

export const watch: CliCommand<{ device?: string; owner?: string; sinceRevision?: string }> = {
  define: (program) =>
    filterOptions(
      program.command("watch")
        .summary("stream changes (one line per event)")
        .description(
          "Stream changes, one line per event (SNAPSHOT, then ADDED / REMOVED cause=… /\n" +
            "UPDATED) until Ctrl-C (exit 0). The agent ending the stream is a failure (exit 1).\n" +
            "--since-revision N resumes after the last revision seen (RESUMED, then the changes).",
        ).option("--since-revision <n>", "resume after this revision instead of a snapshot"),
    ),
  run(ctx) {
    const { flags, out } = ctx;
    return new Promise<number>((resolve) => {
      let done = false;
      const finish = (code: number) => {
        if (done) return;
        done = true;
        Deno.removeSignalListener("SIGINT", interrupted);
        resolve(code);
      };
      const interrupted = () => {
        finish(EXIT.OK);
        call.cancel();
      };
      const call = ctx.client().watch(
        {
          device: flags.device ?? "",
          owner: flags.owner ?? "",
          sinceRevision: flags.sinceRevision === undefined
            ? "0"
            : parseNumber("--since-revision", flags.sinceRevision).toString(),
        },
        (e) => out.write(out.json ? JSON.stringify(e) : eventLine(e)),
        (err) => finish(reportError(err, out)),
      );
      call.on("end", () => {
        if (done) return;
        if (out.json) {
          out.write(
            JSON.stringify({ error: "STREAM_ENDED", message: "the agent ended the stream" }),
          );
        } else out.error("error: STREAM_ENDED: the agent ended the stream (stopped or restarted)");
        finish(EXIT.FAILURE);
      });
      Deno.addSignalListener("SIGINT", interrupted);
    });
  },
};
