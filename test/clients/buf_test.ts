// buf (npm, pinned) on the API: lint, breaking changes against the released images
// (proto/released/README.md), and `deno task clients` reproducing exactly the committed stubs.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { BUF, generate, GENERATED, REPO } from "../../clients/gen.ts";
import { removeDir, tempDir } from "../support/agent.ts";

function buf(args: string[]): { code: number; output: string } {
  const r = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", BUF, ...args],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, output: `${text(r.stdout)}${text(r.stderr)}` };
}

/** The buf messages of a run, without Deno's banners. */
function findings(output: string): string[] {
  return output.split("\n").filter((l) => l.startsWith("proto/"));
}

Deno.test("buf lint accepts proto/ (buf.yaml: STANDARD, minus v1's released names)", () => {
  const r = buf(["lint"]);
  assert.equal(r.code, 0, r.output);
});

Deno.test("buf breaking: nothing breaks against the released image v1.binpb", () => {
  const r = buf(["breaking", "--against", "proto/released/v1.binpb"]);
  assert.equal(r.code, 0, r.output);
});

Deno.test("buf breaking against the first release (6180d75): the wire is unchanged", () => {
  const wire = buf([
    "breaking",
    "--against",
    "proto/released/v1-6180d75.binpb",
    "--config",
    JSON.stringify({
      version: "v2",
      modules: [{ path: "proto" }],
      breaking: { use: ["WIRE"], ignore: ["proto/google"] },
    }),
  ]);
  assert.equal(wire.code, 0, wire.output);
  // Source and JSON: exactly the changes proto/released/README.md names.
  const file = buf(["breaking", "--against", "proto/released/v1-6180d75.binpb"]);
  assert.notEqual(file.code, 0);
  const found = findings(file.output).map((l) => l.replace(/^proto\/[^:]+:\d+:\d+:/, ""));
  assert.deepEqual(found.sort(), [
    'Field "8" on message "Ioeventfd" changed name from "source_inode" to "source_eventfd_id".',
    'Field "8" with name "source_eventfd_id" on message "Ioeventfd" changed option "json_name" from "sourceInode" to "sourceEventfdId".',
    'File option "go_package" changed from "" to "ioeventd.io/clients/go/ioeventd/v1;ioeventdv1".',
  ]);
});

function files(dir: string): string[] {
  try {
    return readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? files(path) : [path];
    });
  } catch {
    return [];
  }
}

Deno.test("deno task clients reproduces the committed stubs byte for byte", () => {
  const out = tempDir("ioeventd-clients-");
  try {
    generate(out);
    const dirs = [...GENERATED, "clients/go/example/service_config.json"];
    const listed = (root: string) =>
      dirs.flatMap((d) => {
        const p = join(root, d);
        return statSync(p, { throwIfNoEntry: false })?.isFile() ? [p] : files(p);
      }).map((f) => relative(root, f)).sort();
    const made = listed(out);
    assert.ok(made.length >= 12, made.join(" "));
    assert.deepEqual(made, listed(REPO), "generated files differ from clients/");
    for (const f of made) {
      assert.ok(
        readFileSync(join(out, f)).equals(readFileSync(join(REPO, f))),
        `${f} differs: run deno task clients and commit`,
      );
    }
  } finally {
    removeDir(out);
  }
});
