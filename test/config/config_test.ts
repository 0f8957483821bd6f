// The agent's settings: one list (service/config.ts FLAGS, ENV, KEYS) behind parsing, --help
// and the README's table; a typo refused with the setting's name; simulation only when asked.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, defaultConfig } from "../../service/config.ts";
import { parseCommandLine } from "../../service/config_loader.ts";
import { didYouMean } from "../../service/did_you_mean.ts";
import { configTableRows, FLAGS, KEYS } from "../../service/settings.ts";
import { removeDir, tempDir } from "../support/agent.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = join(ROOT, "service", "main.ts");

/** parseCommandLine with only the given environment (none of this process's IOEVENTD_*). */
function parse(args: string[], env: Record<string, string> = {}) {
  const line = parseCommandLine(args, (name) => env[name]);
  assert.equal(line.help, false);
  return (line as { config: ReturnType<typeof defaultConfig> }).config;
}

function refused(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${err}`);
    return err.message;
  }
  assert.fail("accepted");
}

function withConfigFile<T>(content: unknown, run: (file: string) => T): T {
  const dir = tempDir();
  try {
    const file = join(dir, "ioeventd.json");
    writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
    return run(file);
  } finally {
    removeDir(dir);
  }
}

function runMain(args: string[], env: Record<string, string> = {}) {
  return spawnSync(Deno.execPath(), ["run", "--allow-all", MAIN, ...args], {
    cwd: tempDir(),
    encoding: "utf8",
    env: { ...Deno.env.toObject(), IOEVENTD_SYSFS_ROOTS: "", ...env },
    timeout: 60_000,
  });
}

Deno.test("config: a misspelt key in the file is refused, naming it, with a suggestion", () => {
  withConfigFile({ metricListen: "127.0.0.1:1", workres: 2 }, (file) => {
    const message = refused(() => parse(["--config", file]));
    assert.match(message, new RegExp(`config file ${file}`));
    assert.match(message, /unknown key "metricListen" \(did you mean "metricsListen"\?\)/);
    assert.match(message, /unknown key "workres" \(did you mean "workers"\?\)/);
  });
  withConfigFile({ tls: { cert: "c", kye: "k", ca: "a" } }, (file) => {
    assert.match(refused(() => parse(["--config", file])), /"tls.kye" \(did you mean "tls.key"/);
  });
  withConfigFile({ frobnicate: true }, (file) => {
    const message = refused(() => parse(["--config", file]));
    assert.match(message, /unknown key "frobnicate"$/, "no suggestion when nothing is close");
  });
  withConfigFile({ workers: "2", cpus: "0,1" }, (file) => {
    const message = refused(() => parse(["--config", file]));
    assert.match(message, /"workers" must be a number \(got "2"\)/);
    assert.match(message, /"cpus" must be a list of numbers/);
  });
  withConfigFile("{ not json", (file) => {
    assert.match(refused(() => parse(["--config", file])), /config file .*JSON/);
  });
  // Every key the file may hold is accepted.
  withConfigFile(
    { ...defaultConfig(tempDir()), tls: { cert: "c", key: "k", ca: "a" }, policyFile: "p" },
    (file) => assert.equal(parse(["--config", file]).tls?.key, "k"),
  );
});

Deno.test("config: a misspelt flag or env value is refused the same way", () => {
  assert.match(
    refused(() => parse(["--metric-listen", "x"])),
    /'--metric-listen'.*did you mean "--metrics-listen"/,
  );
  assert.match(
    refused(() => parse([], { IOEVENTD_SIMULATE: "yes" })),
    /\$IOEVENTD_SIMULATE must be 1, 0, true or false/,
  );
  assert.match(refused(() => parse(["--workers", "two"])), /workers must be an integer/);
  assert.equal(didYouMean("workres", ["workers", "shard"]), ' (did you mean "workers"?)');
  assert.equal(didYouMean("zzz", ["workers"]), "");
});

Deno.test("config: real devices only unless simulation is asked for", () => {
  assert.equal(parse([]).simulate, false);
  assert.equal(parse(["--no-simulate"]).simulate, false);
  assert.equal(parse(["--simulate"]).simulate, true);
  assert.equal(parse([], { IOEVENTD_SIMULATE: "1" }).simulate, true);
  assert.equal(parse(["--no-simulate"], { IOEVENTD_SIMULATE: "1" }).simulate, false);
  withConfigFile(
    { simulate: true },
    (file) => assert.equal(parse(["--config", file]).simulate, true),
  );
  assert.match(refused(() => parse(["--simulate", "--no-simulate"])), /exclude each other/);
  assert.equal(defaultConfig().simulate, false);
});

Deno.test("config: layers in order (file, then environment, then flags)", () => {
  const [a, b, c] = [tempDir(), tempDir(), tempDir()];
  withConfigFile({ stateDir: a, workers: 2, metricsListen: "127.0.0.1:1" }, (file) => {
    const fromFile = parse(["--config", file]);
    assert.equal(fromFile.stateDir, a);
    assert.deepEqual(fromFile.listen, [`unix://${join(a, "run", "ioeventd.sock")}`]);
    const fromEnv = parse(["--config", file], {
      IOEVENTD_STATE_DIR: b,
      IOEVENTD_WORKERS: "3",
      IOEVENTD_METRICS_LISTEN: "",
    });
    assert.equal(fromEnv.stateDir, b);
    assert.deepEqual(fromEnv.listen, [`unix://${join(b, "run", "ioeventd.sock")}`]);
    assert.equal(fromEnv.workers, 3);
    assert.equal(fromEnv.metricsListen, "");
    const fromFlags = parse(["--config", file, "--state-dir", c, "--workers", "4"], {
      IOEVENTD_STATE_DIR: b,
      IOEVENTD_CONFIG: "/nonexistent",
    });
    assert.equal(fromFlags.stateDir, c);
    assert.equal(fromFlags.workers, 4);
  });
  assert.equal(parse(["--per-ioeventfd-metrics"]).perIoeventfdMetrics, true);
  assert.deepEqual(parse(["--cpus", "0,2-3"]).cpus, [0, 2, 3]);
  assert.deepEqual(parse(["--listen", "unix:///a.sock", "--listen", "unix:///b.sock"]).listen, [
    "unix:///a.sock",
    "unix:///b.sock",
  ]);
  for (const d of [a, b, c]) removeDir(d);
});

Deno.test("main.ts --help prints every flag, one line each, and exits 0", () => {
  const r = runMain(["--help"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "");
  const lines = r.stdout.split("\n");
  for (const flag of Object.keys(FLAGS)) {
    const mine = lines.filter((l) => new RegExp(`^\\s+--${flag}(\\s|$)`).test(l));
    assert.equal(mine.length, 1, `--${flag}: ${mine.length} lines`);
  }
});

Deno.test("main.ts with a misspelt config key: one clear line, exit 2, nothing started", () => {
  withConfigFile({ metricListen: "127.0.0.1:1" }, (file) => {
    const r = runMain(["--config", file]);
    assert.equal(r.status, 2, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    const line = JSON.parse(lines[0]);
    assert.equal(line.level, "error");
    assert.match(line.msg, /unknown key "metricListen" \(did you mean "metricsListen"\?\)/);
  });
});

Deno.test("README: the configuration table is the code's, key for key", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Configuration"));
  const rows = section.split("\n")
    .slice(section.split("\n").findIndex((l) => l.startsWith("| key")))
    .filter((_, i, all) => all.slice(0, i + 1).every((l) => l.startsWith("|")))
    .filter((l) => !/^\|\s*-/.test(l))
    .map((l) => l.slice(1, -1).split("|").map((cell) => cell.trim()));
  assert.deepEqual(rows, configTableRows());
  // Every key of the file is a row; every flag but --help/--config sets one.
  assert.equal(rows.length - 1, Object.keys(KEYS).length);
  for (const [name, spec] of Object.entries(FLAGS)) {
    if (name !== "help" && name !== "config") assert.ok("key" in spec, name);
  }
});
