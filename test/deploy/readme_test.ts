// deploy/README.md (the "Run a fleet" section of the README) names files, commands and flags
// that exist: a renamed dashboard or option fails here, not in an operator's terminal.
import assert from "node:assert/strict";
import { FLAGS } from "../../service/settings.ts";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FLEET_COMMANDS, FLEET_USAGE } from "../../service/cli/fleet_options.ts";
import { DEPLOY, REPO } from "./files.ts";

const text = readFileSync(join(DEPLOY, "README.md"), "utf8");

Deno.test("deploy README: every repository path it names exists", () => {
  const paths = [...text.matchAll(/`((?:deploy|service|test|native)\/[\w./-]*)`/g)].map((m) =>
    m[1]
  );
  assert.ok(paths.length >= 10);
  for (const p of paths) assert.ok(existsSync(join(REPO, p)), `${p} does not exist`);
  // The Kubernetes table names the files of deploy/kubernetes.
  for (const m of text.matchAll(/^\| `([\w-]+\.yaml)`/gm)) {
    assert.ok(existsSync(join(DEPLOY, "kubernetes", m[1])), m[1]);
  }
});

Deno.test("deploy README: the fleet commands and flags it shows are the CLI's", () => {
  const shown = [...text.matchAll(/^\| `([a-z-]+)[ `]/gm)].map((m) => m[1]);
  assert.deepEqual(shown.sort(), [...FLEET_COMMANDS].sort());
  const agentFlag = (name: string) => Object.hasOwn(FLAGS, name);
  // deno, cargo, git, systemctl and podman flags in the install and build commands.
  const tools = ["--allow-all", "--cached-only", "--frozen", "--entrypoint", "--build-arg"]
    .concat(["--short", "--manifest-path", "--release", "--now", "--kill-whom", "--signal"]);
  for (const flag of new Set([...text.matchAll(/(?<![\w-])(--[a-z][\w-]+)/g)].map((m) => m[1]))) {
    const known = FLEET_USAGE.includes(flag) || agentFlag(flag.slice(2)) || tools.includes(flag);
    assert.ok(known, `${flag} is neither a fleet flag, an agent flag nor a build flag`);
  }
});
