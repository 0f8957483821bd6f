// The alerting and recording rules pass promtool's checks and their unit tests
// (deploy/prometheus/rules.test.yml); the dashboard is importable JSON.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname } from "node:path";
import { loadDashboard, RULES, RULES_TEST } from "./dashboard_queries.ts";
import { requireTool } from "./prometheus_server.ts";

function promtool(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(requireTool("promtool"), args, { cwd: dirname(RULES), encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

Deno.test("promtool check rules accepts rules.yml", () => {
  const r = promtool(["check", "rules", RULES]);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /SUCCESS: 22 rules found/);
});

Deno.test("promtool test rules passes rules.test.yml", () => {
  const r = promtool(["test", "rules", RULES_TEST]);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /SUCCESS/);
});

Deno.test("every alert of rules.yml has a unit test that fires it", () => {
  const rules = Deno.readTextFileSync(RULES);
  const tests = Deno.readTextFileSync(RULES_TEST);
  const alerts = [...rules.matchAll(/^\s*- alert: (\w+)$/gm)].map((m) => m[1]);
  assert.ok(alerts.length >= 9);
  for (const alert of alerts) {
    const firing = new RegExp(`alertname: ${alert}\\n\\s*exp_alerts:\\n\\s*- exp_labels:`);
    assert.match(tests, firing, `no test makes ${alert} fire`);
  }
});

Deno.test("the dashboard is an importable Grafana dashboard with host and device selectors", () => {
  const d = loadDashboard() as unknown as {
    uid: string;
    title: string;
    schemaVersion: number;
    templating: { list: { name: string; type: string }[] };
    panels: { id: number; type: string; gridPos: { w: number; h: number; x: number; y: number } }[];
  };
  assert.equal(d.uid, "ioeventd");
  assert.ok(d.schemaVersion >= 36);
  const vars = d.templating.list.map((v) => `${v.name}:${v.type}`);
  assert.deepEqual(vars, ["datasource:datasource", "instance:query", "device:query"]);
  const ids = d.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  for (const p of d.panels) {
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `panel ${p.id} overflows the grid`);
  }
  const kinds = new Set(d.panels.map((p) => p.type));
  for (const kind of ["timeseries", "heatmap", "stat", "row"]) assert.ok(kinds.has(kind), kind);
});
