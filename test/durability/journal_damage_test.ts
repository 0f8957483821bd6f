// Journal damage is never silent (issue #16.3), and the journal is the agent's alone (#16.5).
// Real agent processes and real source processes: a journal emptied or rolled back refuses
// the start with one line naming the file, what was expected and how to recover; removing
// the marker accepts the loss. A WAL deleted while the agent runs loses nothing (it is checked
// after every commit and recovered before anyone is answered); a WAL overwritten once commits
// paused loses nothing (it was folded into the main file), and one overwritten while it still
// held commits refuses the start. The files are 0600 whatever
// the state directory's mode, and the registry's revision survives a restart.
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { markerPath } from "../../service/registry/journal.ts";
import {
  type AgentProcess,
  GPU,
  removeDir,
  spawnAgent,
  startAgent,
  tempDir,
} from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const MAIN = fileURLToPath(new URL("../../service/main.ts", import.meta.url));

const journalOf = (stateDir: string) => join(stateDir, "journal.sqlite");

function desired(src: SourceProcess, from: number, to: number) {
  return Array.from({ length: to - from }, (_, k) => {
    const i = from + k;
    return {
      device: GPU,
      bar: 0,
      offset: String(0x2000 + 4 * i),
      width: 4,
      data: String(i),
      source: { pid: src.pid, fd: src.fds[i] },
    };
  });
}

/** Creates registrations from..to-1 one call each (one commit each). */
async function create(agent: AgentProcess, src: SourceProcess, from: number, to: number) {
  for (const spec of desired(src, from, to)) await agent.client.create({ owner: "vm-d", spec });
}

async function stop(agent: AgentProcess): Promise<void> {
  agent.kill("SIGTERM");
  const exit = await agent.exited;
  agent.client.close();
  assert.equal(exit.code, 0, agent.logs.join("\n"));
}

function rearmed(agent: AgentProcess): number {
  const line = agent.logs.map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === "journal replayed")!;
  return line.rearmed as number;
}

/** Runs the agent to its exit (it is expected not to start): exit code and the log. */
async function refusedStart(stateDir: string): Promise<{ code: number; log: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "--state-dir", stateDir, "--metrics-listen", ""].concat(
      "--simulate",
    ),
    env: { IOEVENTD_SYSFS_ROOTS: "" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const out = await child.output();
  clearTimeout(timer);
  return { code: out.code, log: new TextDecoder().decode(out.stderr) };
}

Deno.test(
  "journal emptied (truncated to 0 bytes): the agent refuses to start, naming file, expectation and recovery; removing the marker accepts the loss",
  opts,
  async () => {
    const stateDir = tempDir();
    const src = await SourceProcess.start(30);
    let agent: AgentProcess | null = await spawnAgent(stateDir);
    try {
      await agent.client.reconcile({ owner: "vm-d", desired: desired(src, 0, 30) });
      await stop(agent);
      agent = null;
      writeFileSync(journalOf(stateDir), new Uint8Array(0));
      rmSync(`${journalOf(stateDir)}-wal`, { force: true });

      const refused = await refusedStart(stateDir);
      assert.notEqual(refused.code, 0, "it does not start");
      const line = refused.log.split("\n").find((l) => l.includes("failed to start"));
      assert.ok(line, refused.log);
      assert.ok(line.includes(journalOf(stateDir)), line);
      assert.match(line, /missing or empty/);
      assert.match(line, /30 registrations/);
      assert.match(line, /remove the marker/);

      // The operator's choice: start with what the journal holds.
      rmSync(markerPath(journalOf(stateDir)));
      agent = await spawnAgent(stateDir);
      assert.equal(rearmed(agent), 0);
      assert.deepEqual(await agent.client.listAll(), []);
    } finally {
      await agent?.crash();
      await src.kill();
      removeDir(stateDir);
    }
  },
);

Deno.test(
  "journal rolled back (an older copy, as a WAL that lost commits leaves it): the agent refuses to start",
  opts,
  async () => {
    const stateDir = tempDir();
    const src = await SourceProcess.start(20);
    let agent: AgentProcess | null = await spawnAgent(stateDir);
    try {
      await create(agent, src, 0, 10);
      await stop(agent);
      copyFileSync(journalOf(stateDir), join(stateDir, "old.sqlite"));
      agent = await spawnAgent(stateDir);
      await create(agent, src, 10, 20);
      await agent.crash();
      agent = null;
      copyFileSync(join(stateDir, "old.sqlite"), journalOf(stateDir));
      rmSync(`${journalOf(stateDir)}-wal`, { force: true });

      const refused = await refusedStart(stateDir);
      assert.notEqual(refused.code, 0, "it does not start");
      assert.match(
        refused.log,
        /holds commit \d+ with 10 registrations, but its marker .* says commit \d+ with 20 registrations/,
      );
    } finally {
      await agent?.crash();
      await src.kill();
      removeDir(stateDir);
    }
  },
);

Deno.test(
  "WAL deleted while the agent runs, then SIGKILL: nothing answered is lost",
  opts,
  async () => {
    const stateDir = tempDir();
    const src = await SourceProcess.start(30);
    let agent = await spawnAgent(stateDir);
    try {
      await create(agent, src, 0, 20);
      rmSync(`${journalOf(stateDir)}-wal`, { force: true });
      await create(agent, src, 20, 30);
      assert.ok(
        agent.logs.some((l) => l.includes("journal WAL lost while running")),
        "the loss is logged",
      );
      const before = (await agent.client.listAll()).map((r) => r.id).sort();
      await agent.crash();
      agent = await spawnAgent(stateDir);
      assert.equal(rearmed(agent), 30);
      assert.deepEqual((await agent.client.listAll()).map((r) => r.id).sort(), before);
    } finally {
      await agent.crash();
      await src.kill();
      removeDir(stateDir);
    }
  },
);

/** Waits until the agent has folded its WAL into the main file (it does once commits pause). */
async function walEmptied(stateDir: string): Promise<void> {
  const wal = `${journalOf(stateDir)}-wal`;
  for (let i = 0; i < 100 && statSync(wal).size > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(statSync(wal).size, 0, "the WAL is checkpointed once commits pause");
}

function overwriteWal(stateDir: string): void {
  const garbage = new Uint8Array(64 << 10);
  crypto.getRandomValues(garbage);
  writeFileSync(`${journalOf(stateDir)}-wal`, garbage);
}

Deno.test(
  "WAL overwritten with garbage after commits paused and a SIGKILL: every registration is still there",
  opts,
  async () => {
    const stateDir = tempDir();
    const src = await SourceProcess.start(30);
    let agent = await spawnAgent(stateDir);
    try {
      await create(agent, src, 0, 30);
      const before = (await agent.client.listAll()).map((r) => r.id).sort();
      await walEmptied(stateDir);
      await agent.crash();
      overwriteWal(stateDir);
      agent = await spawnAgent(stateDir);
      assert.equal(rearmed(agent), 30);
      assert.deepEqual((await agent.client.listAll()).map((r) => r.id).sort(), before);
    } finally {
      await agent.crash();
      await src.kill();
      removeDir(stateDir);
    }
  },
);

Deno.test(
  "WAL overwritten with garbage while it still held commits: the agent refuses to start, naming the loss",
  opts,
  async () => {
    const stateDir = tempDir();
    const src = await SourceProcess.start(30);
    const agent = await spawnAgent(stateDir);
    try {
      await create(agent, src, 0, 30);
      await agent.crash(); // at once: the commits are still only in the WAL
      overwriteWal(stateDir);
      const refused = await refusedStart(stateDir);
      assert.notEqual(refused.code, 0, "it does not start");
      assert.match(
        refused.log,
        /but its marker .* says commit \d+ with 30 registrations/,
      );
    } finally {
      await src.kill();
      removeDir(stateDir);
    }
  },
);

Deno.test(
  "journal files are 0600 in a 0755 state directory, an older 0644 journal is made 0600; the revision survives a restart",
  opts,
  async () => {
    const stateDir = tempDir();
    const src = await SourceProcess.start(3);
    Deno.chmodSync(stateDir, 0o755);
    let t = await startAgent({}, stateDir);
    try {
      const a = await t.client.create({ owner: "vm-p", spec: desired(src, 0, 1)[0] });
      await t.client.create({ owner: "vm-p", spec: desired(src, 1, 2)[0] });
      await t.client.delete({ id: a.id });
      const journal = journalOf(stateDir);
      for (const f of [journal, `${journal}-wal`, `${journal}-shm`, markerPath(journal)]) {
        if (f.endsWith("-shm") && !existsSync(f)) continue; // none in exclusive mode
        assert.equal(statSync(f).mode & 0o777, 0o600, `${f} is 0600`);
      }
      const revision = t.agent.registry.revision;
      assert.ok(revision >= 3n);
      await t.stop();

      Deno.chmodSync(journal, 0o644); // as an older agent left it
      t = await startAgent({}, stateDir);
      assert.equal(statSync(journal).mode & 0o777, 0o600);
      assert.ok(
        t.agent.registry.revision >= revision,
        `revision ${t.agent.registry.revision} after restart, ${revision} before`,
      );
      await t.client.create({ owner: "vm-p", spec: desired(src, 2, 3)[0] });
      assert.ok(t.agent.registry.revision > revision);
    } finally {
      await t.stop();
      await src.kill();
      removeDir(stateDir);
    }
  },
);

Deno.test("a journal created in a new state directory is 0600", opts, async () => {
  const parent = tempDir();
  const stateDir = join(parent, "state");
  mkdirSync(parent, { recursive: true });
  const t = await startAgent({}, stateDir);
  try {
    assert.equal(statSync(journalOf(stateDir)).mode & 0o777, 0o600);
  } finally {
    await t.stop();
    removeDir(parent);
  }
});
