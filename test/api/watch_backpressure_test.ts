// Watch streams: a client that lost its stream resumes from the last revision it saw and
// misses nothing; a stream whose reader falls more than WATCH_BUFFER_BYTES behind is cut
// off with RESOURCE_EXHAUSTED / WATCH_TOO_SLOW and the revision to resume from.
//
// The cut-off acts on grpc-js's write completions. Under Deno 2.9.3 node:http2 completes
// writes before the peer has taken them (no backpressure: denoland/deno#36044, fixed after
// this pinned version), so the bound is shown here against a call whose completions wait, as
// a runtime with backpressure delivers them; see README "Watch streams".
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { decodeStatus } from "../../service/api/status_details.ts";
import type { IoeventfdEvent } from "../../service/api/generated/ioeventd/v1/IoeventfdEvent.ts";
import type { IoeventfdEvent__Output } from "../../service/api/generated/ioeventd/v1/IoeventfdEvent.ts";
import { WATCH_BUFFER_BYTES, WatchStream } from "../../service/api/watch_stream.ts";
import { GPU, startAgent } from "../support/agent.ts";
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
