// Regenerates service/api/generated/ from proto/ with proto-loader-gen-types, then adds the
// `.ts` extensions Deno requires on relative imports (the generator writes Node-style ones).
// The loader options here must match service/api/proto.ts. Then protoc compiles the same files
// into ioeventd.binpb, the descriptors server reflection serves (service/api/reflection.ts).
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DESCRIBED_FILES, DESCRIPTOR_SET_PATH } from "../service/api/reflection.ts";

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
  ...DESCRIBED_FILES.map((file) => join("proto", file)),
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

// No source info: the set is what a reflection client needs, and stays byte-stable.
const protoc = spawnSync("protoc", [
  "-Iproto",
  "--include_imports",
  `--descriptor_set_out=${DESCRIPTOR_SET_PATH}`,
  ...DESCRIBED_FILES,
], { stdio: "inherit" });
if (protoc.error) {
  console.error(`protoc: ${protoc.error.message} (Debian: apt-get install protobuf-compiler)`);
  Deno.exit(1);
}
if (protoc.status !== 0) Deno.exit(protoc.status ?? 1);
console.log(`generated ${walk(out).length} files in ${out}`);
