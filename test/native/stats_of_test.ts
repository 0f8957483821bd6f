// The counters of chosen registrations (registrationStats(ids), `ioeventd_stats_of`): what a
// GetIoeventfd or one page of ListIoeventfds reads, equal to the full snapshot's counters for
// those ids, with ids no longer registered left out.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { NativeEngine } from "../../service/native/engine.ts";
import { tempDir } from "../support/agent.ts";
import { waitForBar } from "../support/bar_file.ts";
import { SourceProcess } from "../support/source_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "engine: counters of chosen ids equal the full snapshot's; gone ids are left out",
  opts,
  async () => {
    const engine = NativeEngine.open({
      workers: 2,
      canaryPeriodUs: 1000,
      pollMode: "block",
      spinBudgetUs: 0,
    });
    const src = await SourceProcess.start(3);
    const path = join(tempDir(), "resource0");
    writeFileSync(path, new Uint8Array(0));
    Deno.truncateSync(path, 4096);
    try {
      const ids: bigint[] = [];
      for (let i = 0; i < 3; i++) {
        const s = engine.acquireSource(src.pid, src.fds[i]);
        ids.push(
          engine.register({
            barPath: path,
            offset: BigInt(4 * i),
            width: 4,
            data: BigInt(i + 1),
            fd: s.fd,
            pid: src.pid,
            pidStart: s.startTime,
          }).id,
        );
      }
      await src.signal(1, 3);
      await waitForBar(path, 4, 4, 2n);
      engine.unregister(ids[2]);

      const chosen = engine.registrationStats([ids[1], ids[2], 999_999n]);
      assert.deepEqual([...chosen.keys()], [ids[1]], "only what is registered");
      assert.equal(chosen.get(ids[1])!.signals, 3n);
      assert.deepEqual(chosen.get(ids[1]), engine.registrationStats().get(ids[1]));
      assert.equal(engine.registrationStats([]).size, 0);
    } finally {
      engine.close();
      await src.kill();
    }
  },
);
