// deno task clients: regenerates the client stubs of clients/ from proto/ with buf (npm,
// pinned) and local plugins only (buf.gen.yaml: TypeScript and Python; buf.gen.go.yaml: Go),
// then copies the service config next to the Go example (go:embed reads only its own
// directory). `--out DIR` writes the generated tree under DIR instead (the suite regenerates
// into a temporary directory and compares it with what is committed).
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const BUF = "npm:@bufbuild/buf@1.75.0";
export const REPO = fileURLToPath(new URL("../", import.meta.url));
/** The generated directories under clients/ (removed first: no stale file survives). */
export const GENERATED = [
  "clients/typescript/gen",
  "clients/python/ioeventd",
  "clients/python/google",
  "clients/go/ioeventd",
];

export function buf(args: string[]): void {
  const r = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", BUF, ...args],
    cwd: REPO,
    stdout: "inherit",
    stderr: "inherit",
  }).outputSync();
  if (r.code !== 0) throw new Error(`buf ${args.join(" ")} failed (exit ${r.code})`);
}

export function generate(out = REPO): void {
  for (const dir of GENERATED) rmSync(join(out, dir), { recursive: true, force: true });
  buf(["generate", "--template", "buf.gen.yaml", "-o", out]);
  buf(["generate", "--template", "buf.gen.go.yaml", "-o", out]);
  mkdirSync(join(out, "clients/go/example"), { recursive: true });
  copyFileSync(
    join(REPO, "clients/service_config.json"),
    join(out, "clients/go/example/service_config.json"),
  );
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--out");
  generate(i >= 0 ? Deno.args[i + 1] : REPO);
  console.log(`generated ${GENERATED.join(", ")}`);
}
