// Regenerates service/api/generated/ from proto/ with proto-loader-gen-types, then adds the
// `.ts` extensions Deno requires on relative imports (the generator writes Node-style ones).
// The loader options here must match service/api/proto.ts.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const out = "service/api/generated";
rmSync(out, { recursive: true, force: true });
const generator = spawnSync(Deno.execPath(), [
  "run",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "npm:@grpc/proto-loader@0.8.1/proto-loader-gen-types",
  "--longs=String",
  "--enums=String",
  "--defaults",
  "--oneofs",
  "--grpcLib=@grpc/grpc-js",
  "-I",
  "proto",
  "-O",
  out,
  "proto/ioeventd/v1/ioeventd.proto",
  "proto/google/rpc/status.proto",
  "proto/google/rpc/error_details.proto",
], { stdio: "inherit" });
if (generator.status !== 0) Deno.exit(generator.status ?? 1);

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}
for (const file of walk(out)) {
  const text = readFileSync(file, "utf8").replace(/from '(\.{1,2}\/[^']+)'/g, "from '$1.ts'");
  writeFileSync(file, "// deno-fmt-ignore-file\n// deno-lint-ignore-file\n" + text);
}
console.log(`generated ${walk(out).length} files in ${out}`);
