// The one proof that both sides of the C ABI name the same words: the plugin's record
// layout (ioeventd_abi_layout, from native/src/abi_layout.rs and the crate's errno table)
// equals service/native/abi_layout.ts and service/native/errno.ts, line for line. The
// binding makes the same comparison when it loads the plugin and refuses a mismatch.
import assert from "node:assert/strict";
import { LAYOUT, layoutDifferences, layoutTable } from "../../service/native/abi_layout.ts";
import { NativeEngine, pluginLayoutTable } from "../../service/native/engine.ts";
import { Errno } from "../../service/native/errno.ts";

const sorted = (text: string) => text.split("\n").filter((l) => l !== "").sort();

Deno.test("abi layout: the plugin's table equals the TypeScript one", () => {
  const native = pluginLayoutTable();
  assert.deepEqual(sorted(native), sorted(layoutTable()));
  assert.deepEqual(layoutDifferences(native), []);
  // The errno table travels with it: every errno the ABI can return has its name here.
  for (
    const name of [
      "EOPNOTSUPP",
      "ENOTTY",
      "EMEDIUMTYPE",
      "ESTALE",
      "EOWNERDEAD",
      "EADDRINUSE",
      "EADDRNOTAVAIL",
    ] as const
  ) {
    assert.ok(native.includes(`errno.${name}=${Errno[name]}\n`), name);
  }
});

Deno.test("abi layout: a difference is reported, word by word", () => {
  const changed = layoutTable().replace("register.result=10\n", "register.result=11\n");
  assert.deepEqual(layoutDifferences(changed), [
    "plugin only: register.result=11",
    "agent only: register.result=10",
  ]);
  assert.equal(LAYOUT.unregister.len, LAYOUT.unregister.triggers + LAYOUT.counters.len);
  // The binding loads (the check passed) and speaks ABI v2.
  NativeEngine.open({ workers: 1, canaryPeriodUs: 0, pollMode: "block", spinBudgetUs: 0 }).close();
});
