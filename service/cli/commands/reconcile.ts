// `ioeventctl reconcile -f desired.json`: make an owner's set equal to a file. The file is
// checked whole before any call: JSON, its shape, and every entry with the rules of
// `create`, each problem named by its place (`desired[1].bar`).
import { readFileSync } from "node:fs";
import type { IoeventfdSpec } from "../../api/generated/ioeventd/v1/IoeventfdSpec.ts";
import { EXIT, UsageError } from "../errors.ts";
import { print } from "../output.ts";
import { checkedSpec, fieldsOfEntry, fileName } from "../spec_input.ts";
import type { CliCommand } from "./context.ts";

interface ReconcileFlags {
  file?: string;
  owner?: string;
  dryRun?: boolean;
}

interface Desired {
  owner: string | undefined;
  desired: IoeventfdSpec[];
}

/** The file, read and checked; every problem is a UsageError naming the file. */
export function readDesired(file: string): Desired {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`${file}: cannot read: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new UsageError(`${file}: must be an object {"owner": "...", "desired": [spec, ...]}`);
  }
  const { owner, desired } = doc as { owner?: unknown; desired?: unknown };
  if (owner !== undefined && typeof owner !== "string") {
    throw new UsageError(`${file}: owner: must be a string`);
  }
  if (!Array.isArray(desired)) {
    throw new UsageError(`${file}: desired: must be a list of specs (may be empty: [])`);
  }
  const problems: string[] = [];
  const specs: IoeventfdSpec[] = [];
  desired.forEach((entry, i) => {
    const at = `desired[${i}]`;
    try {
      specs.push(checkedSpec(fieldsOfEntry(entry, at), fileName(at)));
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      problems.push(err.message);
    }
  });
  if (problems.length > 0) throw new UsageError(problems.map((p) => `${file}: ${p}`).join("\n"));
  return { owner, desired: specs };
}

export const reconcile: CliCommand<ReconcileFlags> = {
  define: (program) =>
    program.command("reconcile")
      .summary("make an owner's set equal to a file (-f desired.json)")
      .description(
        'Make an owner\'s set equal to a file: {"owner": "...", "desired": [spec, ...]}, each\n' +
          "spec {device, bar, offset, width, data, source: {pid, fd}[, vfioDevice, labels]}\n" +
          "with every key and source field (numbers: JSON numbers, or decimal or 0x-hex text).",
      )
      .option("-f, --file <file>", "the desired set (required)")
      .option("--owner <owner>", "the owner, when the file does not name it")
      .option("--dry-run", "say what would change, change nothing"),
  async run(ctx) {
    const f = ctx.flags;
    if (!f.file) throw new UsageError("reconcile: -f/--file is required");
    const doc = readDesired(f.file);
    const owner = f.owner ?? doc.owner;
    if (!owner) throw new UsageError("reconcile: the file or --owner must name the owner");
    const dryRun = f.dryRun ?? false;
    const r = await ctx.client().reconcile({ owner, desired: doc.desired, dryRun });
    print(
      ctx.out,
      `added ${r.added.length}, kept ${r.kept.length}, removed ${r.removed.length}` +
        (dryRun ? " (dry run: nothing changed)" : ""),
      r,
    );
    return EXIT.OK;
  },
};
