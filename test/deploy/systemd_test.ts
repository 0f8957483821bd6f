// deploy/systemd/ioeventd.service: systemd itself verifies it (systemd-analyze verify, and
// its security exposure score), and its command line, directories and capabilities agree
// with the agent's flags, the DaemonSet and the image.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { defaultConfig } from "../../service/config.ts";
import { loadConfig } from "../../service/config_loader.ts";
import { removeDir, tempDir } from "../support/agent.ts";
import {
  agentArgs,
  type Container,
  CONTAINERFILE,
  execForm,
  findObject,
  loadManifests,
  parseContainerfile,
  parseUnit,
  portOf,
  UNIT_FILE,
} from "./files.ts";

const text = readFileSync(UNIT_FILE, "utf8");
const unit = parseUnit(text);
const service = unit.get("Service")!;
const one = (key: string) => {
  const values = service.get(key);
  assert.ok(values?.length === 1, `[Service] ${key}= once`);
  return values[0];
};
const execStart = one("ExecStart").split(/\s+/);

function systemdAnalyze(args: string[]): { status: number; out: string } {
  const r = spawnSync("systemd-analyze", args, { encoding: "utf8" });
  assert.equal(r.error, undefined, "systemd-analyze missing: run test/setup.sh");
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** The unit as systemd-analyze sees it here: only the deno path is this machine's (verify
 *  refuses a unit whose executable does not exist). */
function unitHere(dir: string): string {
  const file = join(dir, "ioeventd.service");
  const here = text.replace(/^ExecStart=\S+/m, `ExecStart=${Deno.execPath()}`);
  assert.notEqual(here, text);
  writeFileSync(file, here);
  return file;
}

Deno.test("systemd: systemd-analyze verify accepts the unit, without a single warning", () => {
  const dir = tempDir();
  try {
    const r = systemdAnalyze(["verify", unitHere(dir)]);
    assert.equal(r.status, 0, r.out);
    const aboutUs = r.out.split("\n").filter((l) => l.includes("ioeventd.service"));
    assert.deepEqual(aboutUs, [], r.out);
  } finally {
    removeDir(dir);
  }
});

Deno.test("systemd: the hardening keeps the exposure score at 4.0 or below", () => {
  const dir = tempDir();
  try {
    const r = systemdAnalyze(["security", "--offline=yes", "--threshold=40", unitHere(dir)]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Overall exposure level for ioeventd\.service: (?:[0-3]\.\d|4\.0)/);
  } finally {
    removeDir(dir);
  }
});

Deno.test("systemd: flags load; directories, restart and stop agree with the agent", () => {
  const config = loadConfig(agentArgs(execStart));
  assert.equal(config.simulate, false);
  // StateDirectory= and RuntimeDirectory= create exactly the directories the flags use.
  assert.equal(config.stateDir, `/var/lib/${one("StateDirectory")}`);
  const unix = config.listen.filter((a) => a.startsWith("unix:"));
  assert.equal(unix.length, 1);
  assert.equal(dirname(unix[0].replace(/^unix:(\/\/)?/, "")), `/run/${one("RuntimeDirectory")}`);
  assert.equal(one("StateDirectoryMode"), "0700");
  // Metrics on the default port, loopback only: a bare host exposes no plaintext port.
  assert.equal(config.metricsListen, defaultConfig().metricsListen);
  assert.deepEqual(config.listen.filter((a) => !a.startsWith("unix:")), []);

  assert.match(one("Restart"), /^(always|on-failure)$/);
  assert.equal(one("KillSignal"), "SIGTERM");
  assert.ok(parseInt(one("TimeoutStopSec")) * 1000 > 2 * defaultConfig().shutdownGraceMs);
  assert.equal(unit.get("Install")!.get("WantedBy")![0], "multi-user.target");
});

Deno.test("systemd: capabilities, plugin and deno command line match the DaemonSet and image", () => {
  const manifests = loadManifests();
  const ds = findObject(manifests, "DaemonSet", "ioeventd");
  const container = (ds.spec.template.spec.containers as Container[])[0];
  const caps = one("CapabilityBoundingSet").split(/\s+/).map((c) => c.replace(/^CAP_/, ""));
  assert.deepEqual(caps.sort(), [...container.securityContext.capabilities.add!].sort());
  assert.equal(one("NoNewPrivileges"), "yes");
  assert.match(one("SystemCallFilter"), /\bpidfd_getfd\b/, "how the agent takes an eventfd");

  const image = parseContainerfile(readFileSync(CONTAINERFILE, "utf8"));
  const entrypoint = execForm(image.filter((i) => i.op === "ENTRYPOINT").pop()!.rest);
  const workdir = image.filter((i) => i.op === "WORKDIR").pop()!.rest;
  // The same deno, flags and entry point as the image, from the same directory.
  assert.deepEqual(execStart.slice(0, execStart.indexOf("service/main.ts") + 1), entrypoint);
  assert.equal(one("WorkingDirectory"), workdir);
  const env = Object.fromEntries(
    service.get("Environment")!.map((
      e,
    ) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
  );
  assert.equal(env.IOEVENTD_NATIVE_LIB, `${workdir}/native/target/release/libioeventd_native.so`);
  assert.equal(env.DENO_DIR, `${workdir}/.deno`);
  // Same state directory and socket as the DaemonSet: one layout on every host.
  const dsConfig = loadConfig(container.args);
  const unitConfig = loadConfig(agentArgs(execStart));
  assert.equal(unitConfig.stateDir, dsConfig.stateDir);
  assert.equal(
    unitConfig.listen.find((a) => a.startsWith("unix:")),
    dsConfig.listen.find((a) => a.startsWith("unix:")),
  );
  assert.equal(portOf(unitConfig.metricsListen), portOf(dsConfig.metricsListen));
});
