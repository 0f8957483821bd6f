// What a person hits at ioeventctl's command line (issue #18): nothing defaults on a write
// to device memory, refusals go to stderr, each command has its own help, a typo gets a
// "did you mean", a reconcile file's mistakes are named by their place in the file, and
// a single-host watch fails when the agent ends it.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { GPU, tempDir } from "../support/agent.ts";
import { CLI, ctl, spawnCtl, startCliAgent } from "../support/ioeventctl.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** ioeventctl without --address (fleet takes --hosts instead). */
async function run(...args: string[]): Promise<{ code: number; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, err: new TextDecoder().decode(r.stderr) };
}

Deno.test(
  "ioeventctl: create and a key delete need every key field, all missing named at once",
  opts,
  async () => {
    const t = await startCliAgent();
    const src = await SourceProcess.start(1);
    const address = t.agent.server.bound[0];
    const source = ["--pid", String(src.pid), "--fd", String(src.fds[0]), "--owner", "vm-cli"];
    try {
      // Without --offset and --data the old CLI armed offset 0 with data 0.
      const noDefaults = await ctl(
        address,
        "create",
        "--device",
        GPU,
        "--bar",
        "0",
        "--width",
        "4",
        ...source,
      );
      assert.equal(noDefaults.code, 2, noDefaults.out + noDefaults.err);
      assert.match(noDefaults.err, /--offset: required/);
      assert.match(noDefaults.err, /--data: required/);
      assert.equal(noDefaults.out, "");
      assert.equal((await t.client.listAll()).length, 0, "nothing armed");

      const bare = await ctl(address, "create", "--device", GPU);
      assert.equal(bare.code, 2);
      for (const flag of ["--bar", "--offset", "--width", "--data", "--pid", "--fd", "--owner"]) {
        assert.match(bare.err, new RegExp(`${flag}: required`), flag);
      }

      // delete: no arguments is a usage error, not a refusal; a key needs all its fields.
      const none = await ctl(address, "delete");
      assert.equal(none.code, 2, none.out + none.err);
      assert.match(none.err, /an id, or a key/);
      const partial = await ctl(address, "delete", "--device", GPU, "--offset", "0x88704");
      assert.equal(partial.code, 2, partial.out + partial.err);
      for (const flag of ["--bar", "--width", "--data"]) {
        assert.match(partial.err, new RegExp(`${flag}: required`), flag);
      }
      assert.doesNotMatch(partial.err, /--offset|--device/);
      assert.equal((await ctl(address, "delete", "ioe-1", "--bar", "0")).code, 2);

      // A refusal: exit 4, the reason on stderr, nothing on stdout.
      const missing = await ctl(address, "delete", "ioe-0000000000000000");
      assert.equal(missing.code, 4, missing.out + missing.err);
      assert.match(missing.err, /^error: NOT_FOUND/m);
      assert.equal(missing.out, "");
    } finally {
      await src.kill();
      await t.stop();
    }
  },
);

Deno.test("ioeventctl: per-command help, and 'did you mean' for a typo", async () => {
  const nowhere = `unix://${join(tempDir(), "none.sock")}`;
  const create = await ctl(nowhere, "create", "--help");
  assert.equal(create.code, 0, create.err);
  assert.match(create.out, /^Usage: ioeventctl create/);
  assert.match(create.out, /--offset <n>/);
  assert.doesNotMatch(create.out, /Commands:/, "create's help, not the global one");
  const del = await ctl(nowhere, "delete", "--help");
  assert.match(del.out, /^Usage: ioeventctl delete \[options\] \[id\]/);
  const global = await ctl(nowhere, "--help");
  assert.equal(global.code, 0);
  assert.match(global.out, /Commands:[\s\S]*create[\s\S]*fleet/);
  const nothing = await ctl(nowhere);
  assert.equal(nothing.code, 2);
  assert.match(nothing.err, /Commands:/);

  const command = await ctl(nowhere, "craete");
  assert.equal(command.code, 2);
  assert.match(command.err, /unknown command 'craete'[\s\S]*did you mean create\?/i);
  const flag = await ctl(nowhere, "create", "--ofset", "0");
  assert.equal(flag.code, 2);
  assert.match(flag.err, /unknown option '--ofset'[\s\S]*did you mean --offset\?/i);
  assert.doesNotMatch(flag.err, /To specify a positional argument/, "not parseArgs' message");
  const fleetFlag = await run("fleet", "info", "--hostz", "a");
  assert.equal(fleetFlag.code, 2);
  assert.match(fleetFlag.err, /unknown option --hostz \(did you mean "--hosts"\?\)/);
  const fleetCommand = await run("fleet", "inf", "--hosts", "a");
  assert.equal(fleetCommand.code, 2);
  assert.match(fleetCommand.err, /unknown fleet command inf \(did you mean "info"\?\)/);
});

Deno.test("ioeventctl reconcile: a file's mistakes are named by their place, exit 2", async () => {
  // No agent: a call would exit 3; every case here must stop before one.
  const dir = tempDir();
  const nowhere = `unix://${join(dir, "none.sock")}`;
  const file = join(dir, "desired.json");
  const spec = (over: Record<string, unknown>) => ({
    device: GPU,
    bar: 0,
    offset: "0x100",
    width: 4,
    data: 0,
    source: { pid: 1, fd: 3 },
    ...over,
  });
  const reconcile = async (doc: unknown) => {
    writeFileSync(file, typeof doc === "string" ? doc : JSON.stringify(doc));
    return await ctl(nowhere, "reconcile", "-f", file);
  };

  const named = await reconcile({
    owner: "vm-1",
    desired: [
      spec({ offset: undefined }),
      spec({ bar: 9, data: "1e3" }),
      spec({ vfioDevice: { pid: 1 } }),
    ],
  });
  assert.equal(named.code, 2, named.out + named.err);
  assert.match(named.err, /desired\[0\]\.offset: required/);
  assert.match(named.err, /desired\[1\]\.bar: bar must be 0\.\.5/);
  assert.match(named.err, /desired\[1\]\.data: must be a decimal or 0x-hex integer/);
  assert.match(named.err, /desired\[2\]\.vfioDevice\.fd: /);
  assert.doesNotMatch(named.err, /--bar|--offset|--data/);

  const broken = await reconcile('{"owner": "vm-1", "desired": [');
  assert.equal(broken.code, 2, broken.out + broken.err);
  assert.match(broken.err, /desired\.json: not valid JSON/);
  assert.doesNotMatch(broken.err, /SyntaxError/);

  assert.equal((await reconcile([])).code, 2, "not an object");
  assert.equal((await reconcile({ owner: "vm-1", desired: {} })).code, 2, "desired not a list");
  assert.equal((await reconcile({ owner: "vm-1", desired: [7] })).code, 2, "entry not a spec");
  const gone = await ctl(nowhere, "reconcile", "-f", join(dir, "absent.json"));
  assert.equal(gone.code, 2);
  assert.match(gone.err, /absent\.json: cannot read/);
});

Deno.test(
  "ioeventctl watch: Ctrl-C exits 0; the agent ending the stream exits 1",
  opts,
  async () => {
    const t = await startCliAgent();
    const address = t.agent.server.bound[0];
    let stopped = false;
    try {
      const interrupted = spawnCtl(address, "watch");
      await interrupted.waitFor("SNAPSHOT");
      Deno.kill(interrupted.pid, "SIGINT");
      const a = await interrupted.done;
      assert.equal(a.code, 0, a.err);

      const watched = spawnCtl(address, "watch");
      await watched.waitFor("SNAPSHOT");
      await t.stop();
      stopped = true;
      const b = await watched.done;
      assert.equal(b.code, 1, b.out + b.err);
      assert.match(b.err, /STREAM_ENDED/);
    } finally {
      if (!stopped) await t.stop();
    }
  },
);
