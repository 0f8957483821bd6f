// Every launcher gives the agent the same runtime environment (AGENT_RUNTIME_ENV: the young
// generation's size and the malloc arenas, for the memory the README's Benchmarks measure):
// deno.json's start task, the systemd unit and the container image, and the tests' agents.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AGENT_RUNTIME_ENV } from "../support/agent.ts";
import { CONTAINERFILE, parseContainerfile, parseUnit, REPO, UNIT_FILE } from "./files.ts";

const expected = Object.entries(AGENT_RUNTIME_ENV).map(([k, v]) => `${k}=${v}`);

Deno.test("runtime environment: the systemd unit sets it", () => {
  const service = parseUnit(readFileSync(UNIT_FILE, "utf8")).get("Service")!;
  const env = service.get("Environment") ?? [];
  for (const kv of expected) assert.ok(env.includes(kv), `Environment=${kv} in the unit`);
});

Deno.test("runtime environment: the container image's runtime stage sets it", () => {
  const ins = parseContainerfile(readFileSync(CONTAINERFILE, "utf8"));
  const lastFrom = ins.findLastIndex((i) => i.op === "FROM");
  const env = ins.slice(lastFrom).filter((i) => i.op === "ENV").flatMap((i) => i.rest.split(" "));
  for (const kv of expected) assert.ok(env.includes(kv), `ENV ${kv} in the runtime stage`);
});

Deno.test("runtime environment: `deno task start` sets it", () => {
  const tasks = JSON.parse(readFileSync(join(REPO, "deno.json"), "utf8")).tasks;
  const words = (tasks.start.command as string).split(" ");
  const prefix = words.slice(0, words.indexOf("deno"));
  assert.deepEqual(prefix.sort(), [...expected].sort());
});
