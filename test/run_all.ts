// The whole test suite: installs what the tests need (test/setup.sh), runs the Rust crate's
// tests and the Deno tests, and ends with the plain line CI reads: "N passed, N failed",
// counted from what really ran (cargo's result lines and deno's JUnit report).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function run(cmd: string, args: string[]): { status: number; output: string } {
  const result = spawnSync(cmd, args, { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  Deno.stdout.writeSync(new TextEncoder().encode(result.stdout ?? ""));
  return { status: result.status ?? 1, output: result.stdout ?? "" };
}

const setup = spawnSync("bash", ["test/setup.sh"], { stdio: "inherit" });
if (setup.status !== 0) {
  console.error("test/setup.sh failed");
  console.log("0 passed, 1 failed");
  Deno.exit(1);
}

let passed = 0;
let failed = 0;
let skipped = 0;

const cargo = run("cargo", ["test", "--release", "--manifest-path", "native/Cargo.toml"]);
for (
  const m of cargo.output.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)
) {
  passed += Number(m[1]);
  failed += Number(m[2]);
  skipped += Number(m[3]);
}
if (cargo.status !== 0 && failed === 0) failed += 1; // a build failure counts as a failure

const dir = mkdtempSync(join(tmpdir(), "ioeventd-junit-"));
const junit = join(dir, "deno.xml");
const filter = Deno.args.length > 0 ? Deno.args : ["test/"];
const deno = spawnSync(
  Deno.execPath(),
  ["test", "--allow-all", `--junit-path=${junit}`, ...filter],
  { stdio: "inherit" },
);
try {
  const xml = readFileSync(junit, "utf8");
  const head = xml.match(/<testsuites[^>]*>/)?.[0] ?? "";
  const attr = (name: string) => Number(head.match(new RegExp(`${name}="(\\d+)"`))?.[1] ?? 0);
  const total = attr("tests");
  const bad = attr("failures") + attr("errors");
  // Ignored tests (e.g. the KVM tier without /dev/kvm) are in `tests` too: never passes.
  const disabled = [...xml.matchAll(/<testsuite [^>]*disabled="(\d+)"/g)]
    .reduce((n, m) => n + Number(m[1]), 0);
  passed += total - bad - disabled;
  failed += bad;
  skipped += disabled;
} catch {
  failed += 1; // deno test did not even produce a report
}
if (deno.status !== 0 && failed === 0) failed += 1;
rmSync(dir, { recursive: true, force: true });

console.log(`${passed} passed, ${failed} failed` + (skipped > 0 ? `, ${skipped} skipped` : ""));
Deno.exit(failed === 0 ? 0 : 1);
