// `ioeventctl create`: arm one ioeventfd. Every field of the key and the source is
// required, and the spec is checked locally with the agent's rules first.
import { EXIT, UsageError } from "../errors.ts";
import { keyFields, type KeyFlags, keyOptions, labelOption, labelsOf } from "../options.ts";
import { ioeventfdRows, print } from "../output.ts";
import { checkedSpec, flagName } from "../spec_input.ts";
import { renderTable } from "../table.ts";
import type { CliCommand } from "./context.ts";

interface CreateFlags extends KeyFlags {
  pid?: string;
  fd?: string;
  vfioPid?: string;
  vfioFd?: string;
  owner?: string;
  label?: string[];
  requestId?: string;
  dryRun?: boolean;
}

export const create: CliCommand<CreateFlags> = {
  define(program) {
    const cmd = program.command("create")
      .summary("arm an ioeventfd (every key and source flag is required)")
      .description(
        "Arm an ioeventfd: whenever the eventfd --fd of process --pid is signalled, --data\n" +
          "(--width bytes) is written to BAR --bar of --device at --offset. Every flag of the\n" +
          "key and the source is required: nothing defaults.",
      );
    keyOptions(cmd, "required");
    cmd
      .option("--pid <n>", "the process holding the eventfd, e.g. the VMM (required)")
      .option("--fd <n>", "the eventfd's descriptor in that process (required)")
      .option("--owner <owner>", "the VM or tenant it belongs to (required)")
      .option("--vfio-pid <n>", "the VMM holding the VFIO device fd (with --vfio-fd)")
      .option("--vfio-fd <n>", "its VFIO device fd: the kernel writes, else the VFIO BAR mmap")
      .option("--request-id <id>", "makes a retried create idempotent")
      .option("--dry-run", "check every rule on the agent (the source too); arm nothing");
    return labelOption(cmd, "k=v, repeatable");
  },
  async run(ctx) {
    const f = ctx.flags;
    // The spec's problems and a missing --owner, all in one message.
    let spec;
    const problems: string[] = [];
    try {
      spec = checkedSpec({
        ...keyFields(f),
        "source.pid": f.pid,
        "source.fd": f.fd,
        "vfio_device.pid": f.vfioPid,
        "vfio_device.fd": f.vfioFd,
        labels: labelsOf(f.label),
      }, flagName);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      problems.push(err.message);
    }
    if (f.owner === undefined) problems.push("--owner: required");
    if (problems.length > 0 || !spec) throw new UsageError(problems.join("\n"));
    const created = await ctx.client().create({
      spec,
      owner: f.owner!,
      requestId: f.requestId ?? "",
      validateOnly: f.dryRun ?? false,
    });
    const table = renderTable(ioeventfdRows([created]));
    print(ctx.out, f.dryRun ? `${table}\n(dry run: accepted, nothing armed)` : table, created);
    return EXIT.OK;
  },
};
