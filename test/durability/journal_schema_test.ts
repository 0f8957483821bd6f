// The journal's VFIO columns across agent restarts (real agent processes, real source
// processes): a journal written before they existed opens, is migrated in place and
// replays; the columns round-trip; and replay takes a journaled VFIO device again only
// from the very process that held it (PID reuse and a descriptor that is not a vfio-pci
// device are dropped with their reason, and leave the journal).
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { journalPath } from "../../service/config.ts";
import { Journal, type JournalRecord } from "../../service/registry/journal.ts";
import { processStartTime } from "../../service/native/engine.ts";
import {
  type AgentProcess,
  barPath,
  GPU,
  removeDir,
  spawnAgent,
  tempDir,
  testConfig,
} from "../support/agent.ts";
import { waitForBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The journal schema before spec.vfio_device (agents up to commit aadea67). */
const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS ioeventfds (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  request_id TEXT NOT NULL,
  device TEXT NOT NULL,
  bar INTEGER NOT NULL,
  offset TEXT NOT NULL,
  width INTEGER NOT NULL,
  data TEXT NOT NULL,
  labels TEXT NOT NULL,
  pid INTEGER NOT NULL,
  fd INTEGER NOT NULL,
  start_time TEXT NOT NULL,
  eventfd_id TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
);`;

/** The kernel's eventfd-id of fd `fd` of `pid`, plus one: the identity the agent records. */
function eventfdId(pid: number, fd: number): bigint {
  const line = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${fd}`).split("\n")
    .find((l) => l.startsWith("eventfd-id:"));
  assert.ok(line, "an eventfd with an eventfd-id");
  return BigInt(line.split(":")[1].trim()) + 1n;
}

function replayed(agent: AgentProcess) {
  return agent.logs.map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === "journal replayed") as {
      rearmed: number;
      dropped: { id: string; reason: string }[];
    };
}

function columns(path: string): string[] {
  const db = new DatabaseSync(path);
  try {
    return (db.prepare("PRAGMA table_info(ioeventfds)").all() as { name: string }[])
      .map((c) => c.name);
  } finally {
    db.close();
  }
}

async function stop(agent: AgentProcess): Promise<void> {
  agent.kill("SIGTERM");
  const exit = await agent.exited;
  agent.client.close();
  assert.equal(exit.code, 0, agent.logs.join("\n"));
}

Deno.test(
  "journal: a journal of the previous schema opens, is migrated in place and replays",
  opts,
  async () => {
    const stateDir = tempDir();
    const src = await SourceProcess.start(1);
    let agent: AgentProcess | null = null;
    try {
      const path = journalPath(testConfig(stateDir));
      const old = new DatabaseSync(path);
      old.exec("PRAGMA journal_mode = WAL");
      old.exec(SCHEMA_V1);
      old.prepare(
        `INSERT INTO ioeventfds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        "ioe-0123456789abcdef",
        "vm-old",
        "r-old",
        GPU,
        0,
        "256",
        4,
        "7",
        JSON.stringify({ app: "legacy" }),
        src.pid,
        src.fds[0],
        processStartTime(src.pid)!.toString(),
        eventfdId(src.pid, src.fds[0]).toString(),
        Date.now(),
      );
      old.close();
      assert.ok(!columns(path).includes("vfio_pid"));

      agent = await spawnAgent(stateDir);
      assert.deepEqual(replayed(agent).rearmed, 1, agent.logs.join("\n"));
      const [entry] = await agent.client.listAll();
      assert.equal(entry.id, "ioe-0123456789abcdef");
      assert.equal(entry.requestId, "r-old");
      assert.deepEqual(entry.spec?.labels, { app: "legacy" });
      assert.equal(entry.spec?.vfioDevice, null);
      assert.equal(entry.vfioDeviceStartTime, "0");
      assert.equal(entry.backend, "user-mmap");
      await src.signal(0);
      await waitForBar(barPath(testConfig(stateDir), GPU, 0), 256, 4, 7n);
      await stop(agent);

      // Migrated in place: the new columns, NULL for the old row; and opening it again
      // (the migration finds nothing to do) replays the same.
      assert.deepEqual(columns(path).slice(-4), [
        "vfio_pid",
        "vfio_fd",
        "vfio_start_time",
        "backend",
      ]);
      const db = new DatabaseSync(path);
      assert.deepEqual(
        { ...db.prepare("SELECT vfio_pid, vfio_fd, vfio_start_time FROM ioeventfds").get() },
        { vfio_pid: null, vfio_fd: null, vfio_start_time: null },
      );
      db.close();
      agent = await spawnAgent(stateDir);
      assert.equal(replayed(agent).rearmed, 1);
    } finally {
      if (agent) {
        await agent.crash();
      }
      await src.kill();
      removeDir(stateDir);
    }
  },
);

Deno.test(
  "journal: the VFIO columns round-trip; replay re-takes a VFIO device only from its process",
  opts,
  async () => {
    const stateDir = tempDir();
    const vmm = await SourceProcess.start(4);
    let agent: AgentProcess | null = null;
    try {
      const path = journalPath(testConfig(stateDir));
      // A plain ioeventfd through the API, so the journal is the agent's own.
      agent = await spawnAgent(stateDir);
      const plain = await agent.client.create({
        owner: "vm-j",
        spec: {
          device: GPU,
          bar: 0,
          offset: "512",
          width: 4,
          data: "9",
          source: { pid: vmm.pid, fd: vmm.fds[0] },
        },
      });
      await stop(agent);
      agent = null;

      // Rows with a VFIO device, as an agent on a VFIO host writes them (none can be made
      // through the API here: this host has no VFIO device). Their eventfd sources are
      // real and intact, so only the VFIO device decides.
      const start = processStartTime(vmm.pid)!;
      const journal = Journal.open(path);
      const [mine] = journal.all();
      assert.equal(mine.vfio, null);
      const vfioRow = (id: string, offset: bigint, i: number, vfio: JournalRecord["vfio"]) => ({
        ...mine,
        id,
        offset,
        fd: vmm.fds[i],
        eventfdId: eventfdId(vmm.pid, vmm.fds[i]),
        vfio,
      });
      const notVfio = vfioRow("ioe-00000000000000b1", 0x300n, 1, {
        pid: vmm.pid,
        fd: vmm.fds[3], // an eventfd, not a vfio-pci device
        startTime: start,
      });
      const reused = vfioRow("ioe-00000000000000b2", 0x400n, 2, {
        pid: vmm.pid,
        fd: vmm.fds[3],
        startTime: start + 1n, // the VMM's PID now names another process
      });
      journal.apply([{ put: notVfio }, { put: reused }]);
      journal.close();
      const reopened = Journal.open(path);
      assert.deepEqual(
        reopened.all().sort((a, b) => a.id < b.id ? -1 : 1),
        [notVfio, reused, mine].sort((a, b) => a.id < b.id ? -1 : 1),
        "every column, the VFIO ones included, reads back as written",
      );
      reopened.close();

      agent = await spawnAgent(stateDir);
      const report = replayed(agent);
      assert.equal(report.rearmed, 1);
      assert.deepEqual(Object.fromEntries(report.dropped.map((d) => [d.id, d.reason])), {
        "ioe-00000000000000b1": "VFIO_DEVICE_INVALID",
        "ioe-00000000000000b2": "PID_REUSED",
      });
      const listed = await agent.client.listAll();
      assert.deepEqual(listed.map((i) => i.id), [plain.id]);
      await stop(agent);
      agent = null;
      const after = Journal.open(path);
      assert.deepEqual(after.all().map((r) => r.id), [plain.id], "dropped rows leave the journal");
      after.close();
    } finally {
      if (agent) {
        await agent.crash();
      }
      await vmm.kill();
      removeDir(stateDir);
    }
  },
);
