// The agent's version, and the source revision it was built from.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const VERSION = "0.1.0";
export const API_VERSIONS = ["ioeventd.v1"];

let build: string | null = null;

/** $IOEVENTD_BUILD (set by image builds), else the git revision of this tree, else "unknown". */
export function buildRevision(): string {
  if (build === null) {
    build = Deno.env.get("IOEVENTD_BUILD") ?? "";
    if (!build) {
      const git = spawnSync("git", ["rev-parse", "--short=12", "HEAD"], {
        cwd: fileURLToPath(new URL(".", import.meta.url)),
        encoding: "utf8",
      });
      build = git.status === 0 ? git.stdout.trim() : "unknown";
    }
  }
  return build;
}
