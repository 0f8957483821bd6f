// Watch streams: a client that lost its stream resumes from the last revision it saw and
// misses nothing; a stream whose reader falls more than WATCH_BUFFER_BYTES behind is cut
// off with RESOURCE_EXHAUSTED / WATCH_TOO_SLOW and the revision to resume from.
//
// The cut-off acts on grpc-js's write completions and, because under Deno 2.9.3 node:http2
// completes writes before the peer has taken them (denoland/deno#36044, fixed after this
// pinned version), on what the call's HTTP/2 session has not yet written to its socket
// (service/api/outbound.ts). Both are shown: a call whose completions wait, a fake session
// count, and real stalled readers against an agent process.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { decodeStatus } from "../../service/api/status_details.ts";
import type { IoeventfdEvent } from "../../service/api/generated/ioeventd/v1/IoeventfdEvent.ts";
import type { IoeventfdEvent__Output } from "../../service/api/generated/ioeventd/v1/IoeventfdEvent.ts";
import { WATCH_BUFFER_BYTES, WatchStream } from "../../service/api/watch_stream.ts";
import { AgentClient } from "../../service/cli/client.ts";
import { GPU, spawnAgent, startAgent, tempDir } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function until(done: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test(
  "watch: since_revision resumes with RESUMED and exactly the missed changes; unknown → SNAPSHOT",
  opts,
  async () => {
    const t = await startAgent();
    const src = await SourceProcess.start(8);
    const calls: grpc.ClientReadableStream<IoeventfdEvent__Output>[] = [];
    try {
      const create = (i: number) =>
        t.client.create({
          owner: i % 2 === 0 ? "vm-a" : "vm-b",
          spec: {
            device: GPU,
            bar: 0,
            offset: String(0x1000 + 4 * i),
            width: 4,
            data: "1",
            source: { pid: src.pid, fd: src.fds[i] },
          },
        });
      const first: IoeventfdEvent__Output[] = [];
      calls.push(t.client.watch({ owner: "vm-a" }, (e) => first.push(e)));
      await until(() => first.length === 1);
      assert.equal(first[0].type, "SNAPSHOT");
      for (let i = 0; i < 4; i++) await create(i);
      await until(() => first.length === 3); // vm-a's two ADDED
      const seen = BigInt(first[2].revision);
      calls[0].cancel(); // the client goes away ...
      for (let i = 4; i < 8; i++) await create(i); // ... and misses these
      const resumed: IoeventfdEvent__Output[] = [];
      calls.push(
        t.client.watch({ owner: "vm-a", sinceRevision: seen.toString() }, (e) => resumed.push(e)),
      );
      await until(() => resumed.length === 3);
      assert.equal(resumed[0].type, "RESUMED");
      assert.equal(resumed[0].revision, seen.toString());
      assert.deepEqual(resumed.slice(1).map((e) => e.type), ["ADDED", "ADDED"]);
      assert.ok(resumed.slice(1).every((e) => e.ioeventfd?.owner === "vm-a"), "filter kept");
      assert.ok(BigInt(resumed[1].revision) > seen);
      // Live changes follow on the resumed stream.
      const [one] = (await t.client.list({ owner: "vm-a" })).ioeventfds;
      await t.client.delete({ id: one.id });
      await until(() => resumed.length === 4);
      assert.equal(resumed[3].type, "REMOVED");
      // A revision this agent never issued: a fresh snapshot instead.
      const fresh: IoeventfdEvent__Output[] = [];
      calls.push(t.client.watch({ sinceRevision: "999999" }, (e) => fresh.push(e)));
      await until(() => fresh.length === 1);
      assert.equal(fresh[0].type, "SNAPSHOT");
      assert.equal(fresh[0].snapshot.length, 7);
    } finally {
      for (const c of calls) c.cancel();
      await src.kill();
      await t.stop();
    }
  },
);

/** A call whose write completions wait until the test lets them go (a reader not reading). */
class HeldCall {
  readonly written: IoeventfdEvent[] = [];
  readonly pending: (() => void)[] = [];
  error: grpc.ServiceError | null = null;
  write(event: IoeventfdEvent, done: () => void): boolean {
    this.written.push(event);
    this.pending.push(done);
    return true;
  }
  emit(name: string, err: grpc.ServiceError): boolean {
    if (name === "error") this.error = err;
    return true;
  }
  drain(): void {
    while (this.pending.length > 0) this.pending.shift()!();
  }
}

Deno.test("watch stream: holds at most its bound, then cuts off with the revision to resume", () => {
  const call = new HeldCall();
  let cut = false;
  const size = 10_000;
  const stream = new WatchStream(call as never, () => size, () => (cut = true));
  const event = (revision: number): IoeventfdEvent => ({
    type: "ADDED",
    revision: String(revision),
  });
  stream.send(event(1));
  call.drain(); // the reader took revision 1
  let revision = 2;
  while (!cut) {
    stream.send(event(revision++));
    assert.ok(stream.queuedBytes <= WATCH_BUFFER_BYTES, "never more than the bound queued");
  }
  // One in flight, the queue full: what was held is freed at the cut-off.
  assert.equal(stream.queuedBytes, 0);
  assert.ok(revision - 2 <= Math.floor(WATCH_BUFFER_BYTES / size) + 2);
  assert.equal(call.error?.code, grpc.status.RESOURCE_EXHAUSTED);
  const status = decodeStatus(call.error!)!;
  assert.equal(status.reason, "WATCH_TOO_SLOW");
  assert.equal(status.metadata.resume_revision, "1", "the last revision the reader was sent");
  // Nothing more is written after the cut-off.
  const before = call.written.length;
  stream.send(event(revision));
  call.drain();
  assert.equal(call.written.length, before);
});

/** A session count the test sets: `unsent` bytes are still in the transport. */
class FakeOutbound {
  handedTotal = 0;
  unsent = 0;
  closed = false;
  handed(bytes: number): void {
    this.handedTotal += bytes;
    this.unsent += bytes;
  }
  backlog(): number {
    return this.unsent;
  }
  close(): void {
    this.closed = true;
  }
}

Deno.test("watch stream: completions alone are not enough: held while the session's socket lags", async () => {
  const call = new HeldCall();
  const out = new FakeOutbound();
  let cut = false;
  const size = 100_000;
  const stream = new WatchStream(
    call as never,
    () => size,
    () => (cut = true),
    1_000_000,
    out,
    250_000,
  );
  const event = (revision: number): IoeventfdEvent => ({
    type: "ADDED",
    revision: String(revision),
  });
  // Completions come at once (as under Deno 2.9.3); the socket takes nothing.
  for (let r = 1; r <= 5; r++) {
    stream.send(event(r));
    call.drain();
  }
  assert.equal(call.written.length, 3, "held once more than the window is unsent");
  out.unsent = 0; // the peer read it all
  await new Promise((r) => setTimeout(r, 60));
  call.drain();
  assert.equal(call.written.length, 5, "sent on once the socket caught up");
  // The socket stops again: the queue fills, and the resume revision is the last event out.
  out.unsent = 0;
  let r = 6;
  while (!cut) {
    stream.send(event(r++));
    call.drain();
    if (r === 8) out.unsent = 150_000; // event 7 and part of 6 are still in the transport
  }
  assert.equal(decodeStatus(call.error!)!.metadata.resume_revision, "5");
  assert.ok(out.closed, "the session count is told the stream ended");
});

/** The agent process's resident set (VmRSS), in bytes. */
/** A spec whose events are ~9.5 KB each: 32 labels of 255 characters. */
function largeSpec(src: SourceProcess, k: number) {
  const labels = Object.fromEntries(
    Array.from({ length: 32 }, (_, i) => [`k${i}`, "v".repeat(255)]),
  );
  return {
    device: GPU,
    bar: 0,
    offset: String(0x1000 + 4 * k),
    width: 4,
    data: "1",
    labels,
    source: { pid: src.pid, fd: src.fds[0] },
  };
}

/**
 * A watcher that reads everything and, if cut off for falling behind (a loaded machine can make
 * a reading client slow too), resumes from the revision it was given: what a client must do.
 */
function resumingReader(client: AgentClient) {
  const revisions = new Set<bigint>();
  const r = {
    seen: 0,
    lastSeen: 0n,
    coveredTo: 0n,
    cuts: 0,
    call: null as grpc.ClientReadableStream<IoeventfdEvent__Output> | null,
  };
  const watchFrom = (since: bigint) => {
    r.call = client.watch(since > 0n ? { sinceRevision: String(since) } : {}, (e) => {
      r.seen++;
      const rev = BigInt(e.revision);
      if (e.type === "ADDED" || e.type === "REMOVED") revisions.add(rev);
      // A snapshot (the history no longer held the revision to resume from) stands for every
      // change up to its revision.
      if (e.type === "SNAPSHOT") r.coveredTo = rev;
      if (rev > r.lastSeen) r.lastSeen = rev;
    }, (err) => {
      if (!err) return;
      assert.equal(decodeStatus(err)?.reason, "WATCH_TOO_SLOW", String(err));
      r.cuts++;
      watchFrom(BigInt(decodeStatus(err)!.metadata.resume_revision));
    });
  };
  watchFrom(0n);
  return Object.assign(r, {
    /** Revisions in (first, last] neither seen nor covered by a snapshot. */
    missing(first: bigint, last: bigint): bigint[] {
      const out: bigint[] = [];
      for (let rev = first + 1n; rev <= last; rev++) {
        if (!revisions.has(rev) && rev > r.coveredTo) out.push(rev);
      }
      return out;
    },
  });
}

function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))![1];
  return Number(kb) * 1024;
}

Deno.test(
  "watch: stalled readers are held to the bound and cut off, the agent's RSS stays flat; a reading one loses nothing (resuming if cut off)",
  opts,
  async () => {
    const a = await spawnAgent(tempDir());
    const src = await SourceProcess.start(1);
    // One connection each (grpc-js would share one between channels to the same address).
    const own = { "grpc.use_local_subchannel_pool": 1 };
    const clients = Array.from({ length: 9 }, () => new AgentClient(a.address, undefined, own));
    const errors: (grpc.ServiceError | null)[] = clients.map(() => null);
    const seen = clients.map(() => 0);
    // Readers 0..7 stop reading after the snapshot (their library stops granting window).
    const calls = clients.slice(0, 8).map((c, i) =>
      c.watch({}, () => {
        if (++seen[i] === 1) calls[i].pause();
      }, (e) => (errors[i] = e))
    );
    const reader = resumingReader(clients[8]);
    try {
      await until(() => seen.slice(0, 8).every((n) => n === 1) && reader.seen >= 1);
      const first = reader.lastSeen;
      const spec = (k: number) => largeSpec(src, k);
      const round = async () => {
        const made = await Promise.all(
          Array.from({ length: 50 }, (_, k) => a.client.create({ owner: "vm-s", spec: spec(k) })),
        );
        await Promise.all(made.map((m) => a.client.delete({ id: m.id })));
      };
      // Warm up (the agent's heap grows with the work itself), then measure 30 rounds: 3000
      // events, ~28 MB for each reader.
      const WARM = 10, ROUNDS = 30;
      for (let r = 0; r < WARM; r++) await round();
      const rssBefore = rssOf(a.child.pid);
      for (let r = 0; r < ROUNDS; r++) await round();
      const total = 1 + 100 * (WARM + ROUNDS);
      const last = first + BigInt(total - 1);
      await until(() => reader.lastSeen >= last, 60_000);
      const missing = reader.missing(first, last);
      assert.deepEqual(missing.slice(0, 5), [], `the reading one missed ${missing.length}`);
      const grownMiB = (rssOf(a.child.pid) - rssBefore) / (1 << 20);
      // Holding what 8 readers did not read would take ≥ 8 × 28 MB more (without the session
      // signal: +320..+400 MiB here); each is held to WATCH_SEND_WINDOW + WATCH_BUFFER_BYTES.
      console.log(`agent RSS +${grownMiB.toFixed(0)} MiB; the stalled saw ${seen.slice(0, 8)}`);
      assert.ok(grownMiB < 150, `the agent's RSS grew by ${grownMiB.toFixed(0)} MiB`);
      // The stalled ones were cut off; they see it once they read again.
      for (let i = 0; i < 8; i++) calls[i].resume();
      await until(() => errors.slice(0, 8).every((e) => e !== null), 30_000);
      for (const e of errors.slice(0, 8)) {
        assert.equal(e!.code, grpc.status.RESOURCE_EXHAUSTED);
        assert.equal(decodeStatus(e!)!.reason, "WATCH_TOO_SLOW");
      }
      assert.ok(seen.slice(0, 8).every((n) => n < total / 4), `stalled got ${seen.slice(0, 8)}`);
      // A cut-off reader resumes on the same connection from the revision it was given, and
      // is not held back by what its old stream left behind.
      const from = BigInt(decodeStatus(errors[0]!)!.metadata.resume_revision);
      const resumed: IoeventfdEvent__Output[] = [];
      calls.push(clients[0].watch({ sinceRevision: String(from) }, (e) => resumed.push(e)));
      await until(() => resumed.length > 0);
      if (resumed[0].type === "RESUMED") {
        const last = BigInt(resumed.at(-1)!.revision);
        await until(() => BigInt(resumed.at(-1)!.revision) >= last && resumed.length > 1, 30_000);
      } else {
        assert.equal(resumed[0].type, "SNAPSHOT", "older than the history: a snapshot");
      }
    } finally {
      for (const c of calls) c.cancel();
      reader.call?.cancel();
      for (const c of clients) c.close();
      await src.kill();
      a.kill("SIGTERM");
      await a.exited;
      a.client.close();
    }
  },
);

Deno.test(
  "watch: a stalled reader, a reading one and the writer's calls on one connection: RSS stays flat, the reading one loses nothing (resuming if cut off)",
  opts,
  async () => {
    const a = await spawnAgent(tempDir());
    const src = await SourceProcess.start(1);
    // Two channels to the same address share one connection (grpc-js's subchannel pool).
    const stalled = new AgentClient(a.address);
    const readerClient = new AgentClient(a.address);
    let stalledError: grpc.ServiceError | null = null;
    let stalledSeen = 0;
    const stalledCall = stalled.watch({}, () => {
      if (++stalledSeen === 1) stalledCall.pause();
    }, (e) => (stalledError = e));
    const reader = resumingReader(readerClient);
    try {
      await until(() => stalledSeen === 1 && reader.seen >= 1);
      const spec = (k: number) => largeSpec(src, k);
      const first = reader.lastSeen; // the snapshot's revision
      const rssBefore = rssOf(a.child.pid);
      // The changes come over the same connection: their responses leaving the socket are not
      // taken for the watches' progress (outbound.ts counts every stream's bytes).
      const writer = new AgentClient(a.address);
      for (let r = 0; r < 30; r++) {
        const made = await Promise.all(
          Array.from({ length: 50 }, (_, k) => writer.create({ owner: "vm-m", spec: spec(k) })),
        );
        await Promise.all(made.map((m) => writer.delete({ id: m.id })));
      }
      writer.close();
      const last = first + 3000n;
      await until(() => reader.lastSeen >= last, 60_000);
      const grownMiB = (rssOf(a.child.pid) - rssBefore) / (1 << 20);
      console.log(
        `agent RSS +${
          grownMiB.toFixed(0)
        } MiB; reader cut off ${reader.cuts}×, snapshot to ${reader.coveredTo}`,
      );
      assert.ok(grownMiB < 150, `the agent's RSS grew by ${grownMiB.toFixed(0)} MiB`);
      const missing = reader.missing(first, last);
      assert.deepEqual(missing.slice(0, 5), [], `the reading one missed ${missing.length}`);
      stalledCall.resume();
      await until(() => stalledError !== null, 30_000);
      assert.equal(decodeStatus(stalledError!)!.reason, "WATCH_TOO_SLOW");
    } finally {
      stalledCall.cancel();
      reader.call?.cancel();
      stalled.close();
      readerClient.close();
      await src.kill();
      a.kill("SIGTERM");
      await a.exited;
      a.client.close();
    }
  },
);
