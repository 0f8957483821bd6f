// Control-operation cost of the native engine: register / unregister round trips, one by
// one and batched (registerMany / unregisterMany), with the worker blocked in epoll_wait
// as in the agent's default configuration. Used by bench/main.ts; runs standalone too:
//   deno run -A bench/control_ops.ts [count] [rounds]
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createEventfd, NativeEngine } from "../service/native/engine.ts";
import { median } from "./summary.ts";

export interface ControlOpsResult {
  count: number;
  /** Median over the rounds, µs per call. */
  register_us: number;
  unregister_us: number;
  /** Per registration, through one registerMany / unregisterMany call of `count`. */
  register_many_us: number | null;
  unregister_many_us: number | null;
}

export function controlOps(dir: string, count = 1000, rounds = 5): ControlOpsResult {
  const bar = join(dir, "control-ops-resource0");
  writeFileSync(bar, new Uint8Array(0));
  Deno.truncateSync(bar, Math.max(4096, count * 8));
  const engine = NativeEngine.open({
    workers: 1,
    canaryPeriodUs: 10_000,
    pollMode: "block",
    spinBudgetUs: 50,
  });
  const request = (i: number, fd: number) => ({
    barPath: bar,
    offset: BigInt(8 * i),
    width: 4,
    data: BigInt(i + 1),
    fd,
    pid: 0,
    pidStart: 0n,
  });
  // register takes the fd over: fresh eventfds each round.
  const reg: number[] = [];
  const unreg: number[] = [];
  const regMany: number[] = [];
  const unregMany: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      let local = Array.from({ length: count }, () => createEventfd());
      let t0 = performance.now();
      const ids = local.map((fd, i) => engine.register(request(i, fd)).id);
      reg.push(((performance.now() - t0) * 1000) / count);
      t0 = performance.now();
      for (const id of ids) engine.unregister(id);
      unreg.push(((performance.now() - t0) * 1000) / count);
      local = Array.from({ length: count }, () => createEventfd());
      t0 = performance.now();
      const outcomes = engine.registerMany(local.map((fd, i) => request(i, fd)));
      regMany.push(((performance.now() - t0) * 1000) / count);
      const manyIds = outcomes.map((o) => {
        if (!o.ok) throw o.error;
        return o.id;
      });
      t0 = performance.now();
      const outcomes2 = engine.unregisterMany(manyIds);
      unregMany.push(((performance.now() - t0) * 1000) / count);
      for (const o of outcomes2) if (!o.ok) throw o.error;
    }
  } finally {
    engine.close();
  }
  const round = (x: number) => +x.toFixed(1);
  return {
    count,
    register_us: round(median(reg)),
    unregister_us: round(median(unreg)),
    register_many_us: round(median(regMany)),
    unregister_many_us: round(median(unregMany)),
  };
}

if (import.meta.main) {
  const dir = Deno.makeTempDirSync({ prefix: "ioeventd-control-" });
  try {
    const count = Number(Deno.args[0] ?? 1000);
    const rounds = Number(Deno.args[1] ?? 5);
    console.log(JSON.stringify(controlOps(dir, count, rounds)));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
