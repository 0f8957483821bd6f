// Creates of one event-loop turn are armed together (registry/create_batch.ts): one
// registerMany for the turn, each create judged as if the earlier ones of its turn were armed
// (a second create of a key is a DUPLICATE, a repeated request_id gets the first one's
// registration), a refused create leaves the others armed, and every armed one writes.
import assert from "node:assert/strict";
import { Rejection } from "../../service/rejection/rejection.ts";
import { barPath, GPU, startAgent } from "../support/agent.ts";
import { waitForBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "create batch: a turn's creates are armed with one registerMany, judged in order",
  opts,
  async () => {
    const t = await startAgent();
    const src = await SourceProcess.start(24);
    const engine = t.agent.engine;
    const calls: number[] = [];
    const registerMany = engine.registerMany.bind(engine);
    engine.registerMany = (requests) => {
      calls.push(requests.length);
      return registerMany(requests);
    };
    const spec = (i: number, offset = 0x100 + 4 * i) => ({
      device: GPU,
      bar: 0,
      offset: String(offset),
      width: 4,
      data: String(i + 1),
      source: { pid: src.pid, fd: src.fds[i] },
    });
    const create = (req: Parameters<typeof t.agent.registry.create>[0]) =>
      t.agent.registry.create(req).then((r) => r, (err: unknown) => err as Rejection);
    try {
      // One turn: 20 creates, a second create of #0's key, #1's request_id again, a bad width.
      const results = await Promise.all([
        ...Array.from(
          { length: 20 },
          (_, i) =>
            create({ owner: "vm-b", spec: spec(i), requestId: i === 1 ? "req-1" : undefined }),
        ),
        create({ owner: "vm-b", spec: { ...spec(20), offset: spec(0).offset, data: "1" } }),
        create({ owner: "vm-b", spec: spec(1), requestId: "req-1" }),
        create({ owner: "vm-b", spec: { ...spec(21), width: 3 } }),
      ]);
      assert.deepEqual(calls, [20], "the turn's 20 armable creates in one registerMany");
      const armed = results.slice(0, 20);
      for (const r of armed) {
        assert.ok(!(r instanceof Rejection) && r.created, String(r));
      }

      const duplicate = results[20];
      assert.ok(
        duplicate instanceof Rejection && duplicate.reason === "DUPLICATE",
        String(duplicate),
      );
      const repeated = results[21];
      assert.ok(!(repeated instanceof Rejection) && !repeated.created);
      assert.equal(
        repeated.registration.id,
        (armed[1] as { registration: { id: string } }).registration.id,
      );
      const badWidth = results[22];
      assert.ok(badWidth instanceof Rejection, "a refused create leaves the others armed");
      assert.equal(t.agent.registry.size, 20);

      // Every armed one writes, at its own offset.
      await src.signal(7, 1);
      await waitForBar(barPath(t.config, GPU, 0), 0x100 + 4 * 7, 4, 8n);
    } finally {
      await t.stop();
      await src.kill();
    }
  },
);
