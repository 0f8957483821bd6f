// deploy/container/Containerfile, without a container engine (none here): its stages, the
// deno version, the plugin's path, ports and health check agree with the code and the
// DaemonSet; what it copies is all the agent imports; its native stage, run here from only
// the files it copies, builds the plugin; and the image's layout (only the copied files, its
// ENTRYPOINT + CMD, its ENV) starts an agent that passes its HEALTHCHECK.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../service/config_loader.ts";
import { nativeLibraryPath } from "../../service/native/engine.ts";
import { removeDir, tempDir } from "../support/agent.ts";
import {
  agentArgs,
  type Container,
  CONTAINERFILE,
  execForm,
  findObject,
  type Instruction,
  loadManifests,
  parseContainerfile,
  portOf,
  REPO,
} from "./files.ts";
import { rewriteArgs, startDeployed } from "./run_as_deployed.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const instructions = parseContainerfile(readFileSync(CONTAINERFILE, "utf8"));

interface Stage {
  name: string;
  from: string;
  steps: Instruction[];
}

/** Instructions grouped by stage; ARGs before the first FROM are global. */
const stages: Stage[] = [];
const globalArgs: string[] = [];
for (const i of instructions) {
  if (i.op === "FROM") {
    const m = i.rest.match(/^(\S+)(?: AS (\S+))?$/i);
    assert.ok(m, `FROM ${i.rest}`);
    stages.push({ from: m[1], name: m[2] ?? "", steps: [] });
  } else if (stages.length === 0) {
    assert.equal(i.op, "ARG");
    globalArgs.push(i.rest);
  } else stages[stages.length - 1].steps.push(i);
}
const stage = (name: string) => stages.find((s) => s.name === name)!;
const runtime = stages[stages.length - 1];
const last = (s: Stage, op: string) => s.steps.filter((i) => i.op === op).pop()!;
const argDefault = (s: Stage, name: string) =>
  s.steps.find((i) => i.op === "ARG" && i.rest.startsWith(`${name}=`))?.rest.split("=")[1];
const workdir = last(runtime, "WORKDIR").rest;
const entrypoint = execForm(last(runtime, "ENTRYPOINT").rest);
const cmd = execForm(last(runtime, "CMD").rest);
const env = Object.fromEntries(
  runtime.steps.filter((i) => i.op === "ENV").flatMap((i) =>
    [...i.rest.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]])
  ),
);

const manifests = loadManifests();
const container = (findObject(manifests, "DaemonSet", "ioeventd").spec.template.spec
  .containers as Container[])[0];

/** `COPY [--from=x] src... dest` */
function copies(s: Stage): { from: string | null; sources: string[]; dest: string }[] {
  return s.steps.filter((i) => i.op === "COPY").map((i) => {
    const words = i.rest.split(" ");
    const from = words[0].startsWith("--from=") ? words.shift()!.slice(7) : null;
    return { from, sources: words.slice(0, -1), dest: words[words.length - 1] };
  });
}

Deno.test("containerfile: three stages on one Debian; deno from npm at the tested version", () => {
  assert.deepEqual(stages.map((s) => s.name), ["native", "deno", ""]);
  assert.ok(globalArgs.some((a) => a.startsWith("DEBIAN=")));
  // One glibc for the build stages and the runtime: the plugin and deno run where built.
  for (const s of stages) assert.match(s.from, /\$\{DEBIAN\}/, s.from);
  assert.equal(argDefault(stage("deno"), "DENO_VERSION"), Deno.version.deno);
  const install = stage("deno").steps.filter((i) => i.op === "RUN").map((i) => i.rest).join(" ");
  assert.match(install, /npm install .*"deno@\$\{DENO_VERSION\}"/);
  assert.match(install, /install -m 0755 .* \/usr\/local\/bin\/deno/);
  assert.match(install, /deno install --frozen --entrypoint service\/main\.ts/);
  assert.equal(entrypoint[0], "/usr/local/bin/deno");
  assert.ok(
    copies(runtime).some((c) => c.from === "deno" && c.sources[0] === "/usr/local/bin/deno"),
  );
});

Deno.test("containerfile: the plugin is compiled in its stage and lands at its cargo path", () => {
  const cargo = readFileSync(join(REPO, "native", "Cargo.toml"), "utf8");
  const crate = cargo.match(/^name = "([^"]+)"/m)![1];
  assert.match(cargo, /crate-type = \[[^\]]*"cdylib"/);
  const lib = `lib${crate}.so`;
  const native = stage("native");
  assert.match(last(native, "RUN").rest, /^cargo build --release --locked/);
  const built = `${last(native, "WORKDIR").rest}/target/release/${lib}`;
  const copy = copies(runtime).find((c) => c.from === "native")!;
  assert.deepEqual(copy.sources, [built]);
  // Where the agent looks by default, relative to the repository (= WORKDIR in the image).
  const cargoPath = relative(
    REPO,
    Deno.env.get("IOEVENTD_NATIVE_LIB") === undefined
      ? nativeLibraryPath()
      : join(REPO, "native/target/release", lib),
  );
  assert.equal(cargoPath, `native/target/release/${lib}`);
  assert.equal(copy.dest, `${workdir}/${cargoPath}`);
  assert.equal(env.IOEVENTD_NATIVE_LIB, copy.dest);
  assert.equal(env.DENO_DIR, `${workdir}/.deno`);
});

Deno.test("containerfile: every module the agent imports is in what it copies", () => {
  const sources = stages.flatMap((s) => copies(s)).filter((c) => c.from === null)
    .flatMap((c) => c.sources);
  for (const src of sources) assert.ok(existsSync(join(REPO, src)), `COPY ${src}: missing`);
  const info = spawnSync(Deno.execPath(), ["info", "--json", "service/main.ts"], {
    cwd: REPO,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  assert.equal(info.status, 0, info.stderr);
  const modules = (JSON.parse(info.stdout) as { modules: { specifier: string }[] }).modules
    .map((m) => m.specifier).filter((s) => s.startsWith("file:"))
    .map((s) => relative(REPO, fileURLToPath(s)));
  assert.ok(modules.length > 20);
  for (const m of modules) {
    assert.ok(sources.some((s) => m === s || m.startsWith(`${s}/`)), `${m} is not copied`);
  }
  // Read at run time by path, not imported: the API contract.
  assert.ok(sources.includes("proto"));
});

Deno.test("containerfile: CMD, EXPOSE and HEALTHCHECK agree with the DaemonSet", () => {
  assert.equal(workdir, "/opt/ioeventd");
  assert.deepEqual(entrypoint.slice(-1), ["service/main.ts"]);
  const config = loadConfig(agentArgs([...entrypoint, ...cmd]));
  const ds = loadConfig(container.args);
  assert.equal(config.simulate, false);
  assert.equal(config.stateDir, ds.stateDir);
  assert.deepEqual(
    config.listen.filter((a) => a.startsWith("unix:")),
    ds.listen.filter((a) => a.startsWith("unix:")),
  );
  assert.equal(config.metricsListen, ds.metricsListen);
  const exposed = last(runtime, "EXPOSE").rest.split(" ").map(Number).sort();
  assert.deepEqual(exposed, container.ports.map((p) => p.containerPort).sort());
  assert.equal(last(runtime, "STOPSIGNAL").rest, "SIGTERM");

  const health = last(runtime, "HEALTHCHECK").rest;
  const url = execForm(health.slice(health.indexOf("CMD"))).join(" ")
    .match(/http:\/\/127\.0\.0\.1:(\d+)(\/\w+)/)!;
  assert.equal(Number(url[1]), portOf(config.metricsListen));
  assert.equal(url[2], container.readinessProbe!.httpGet!.path);
  // The start period covers as long a replay as the DaemonSet's startup probe does.
  const startup = container.startupProbe!;
  const period = Number(health.match(/--start-period=(\d+)m/)![1]) * 60;
  assert.ok(period >= startup.periodSeconds! * startup.failureThreshold!);
});

/** Performs a stage's COPY instructions from the build context into `dir` (its WORKDIR). */
function copyContext(s: Stage, dir: string): void {
  for (const c of copies(s).filter((c) => c.from === null)) {
    for (const src of c.sources) {
      const into = c.dest.endsWith("/") || c.sources.length > 1;
      cpSync(join(REPO, src), into ? join(dir, c.dest, basename(src)) : join(dir, c.dest), {
        recursive: true,
      });
    }
  }
}

Deno.test(
  "containerfile: the native stage, run here from only what it copies, builds the plugin",
  () => {
    const tmp = tempDir("ioeventd-native-stage-");
    try {
      const native = stage("native");
      copyContext(native, tmp);
      for (const run of native.steps.filter((i) => i.op === "RUN")) {
        const r = spawnSync("sh", ["-c", run.rest], { cwd: tmp, encoding: "utf8" });
        assert.equal(r.status, 0, `RUN ${run.rest}:\n${r.stderr}`);
      }
      const artifact = copies(runtime).find((c) => c.from === "native")!.sources[0];
      const local = join(tmp, relative(last(native, "WORKDIR").rest, artifact));
      assert.ok(existsSync(local), `${artifact} was not built`);
    } finally {
      removeDir(tmp);
    }
  },
);

Deno.test(
  "containerfile: the image's files, ENTRYPOINT, CMD and ENV run an agent that passes HEALTHCHECK",
  opts,
  async () => {
    const tmp = tempDir("ioeventd-image-");
    const root = join(tmp, "opt-ioeventd");
    mkdirSync(root);
    // Only what the deno stage copies from the build context into WORKDIR (the runtime
    // stage takes that directory whole).
    copyContext(stage("deno"), root);
    const ip = "127.0.0.10";
    const args = rewriteArgs(cmd, [
      { from: "/var/lib/ioeventd", to: join(tmp, "state") },
      { from: "/run/ioeventd", to: join(tmp, "run") },
      { from: "0.0.0.0", to: ip },
    ]);
    const agentEnv: Record<string, string> = {
      ...env,
      // This machine's deno cache (the image's is filled at build) and cargo build.
      IOEVENTD_NATIVE_LIB: join(REPO, "native/target/release/libioeventd_native.so"),
      IOEVENTD_BUILD: "image-test",
    };
    const denoDir = Deno.env.get("DENO_DIR");
    if (denoDir) agentEnv.DENO_DIR = denoDir;
    else delete agentEnv.DENO_DIR;
    const agent = await startDeployed([Deno.execPath(), ...entrypoint.slice(1), ...args], {
      cwd: root,
      env: agentEnv,
    });
    try {
      const health = last(runtime, "HEALTHCHECK").rest;
      const check = execForm(health.slice(health.indexOf("CMD")));
      const r = spawnSync(
        Deno.execPath(),
        check.slice(1).map((a) => a.replace("127.0.0.1", ip)),
        { encoding: "utf8" },
      );
      assert.equal(r.status, 0, `HEALTHCHECK failed: ${r.stdout}${r.stderr}`);
      const serving = agent.logs.find((l) => l.includes('"ioeventd serving"'))!;
      assert.match(serving, /"version":"\d+\.\d+\.\d+"/);
      assert.equal((await agent.stop()).code, 0);
    } finally {
      await agent.stop();
      removeDir(tmp);
    }
  },
);
