// The alerting and recording rules pass promtool's checks and their unit tests
// (deploy/prometheus/rules.test.yml); the dashboard is importable JSON.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { DASHBOARD, loadDashboard, RULES, RULES_TEST } from "./dashboard_queries.ts";
import { requireTool } from "./prometheus_server.ts";

function promtool(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(requireTool("promtool"), args, { cwd: dirname(RULES), encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

Deno.test("promtool check rules accepts rules.yml", () => {
  const r = promtool(["check", "rules", RULES]);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /SUCCESS: 32 rules found/);
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

Deno.test("every alert links a runbook that exists and names the alert", () => {
  const { groups } = parse(Deno.readTextFileSync(RULES)) as {
    groups: { rules: { alert?: string; annotations?: Record<string, string> }[] }[];
  };
  const alerts = groups.flatMap((g) => g.rules).filter((r) => r.alert);
  assert.ok(alerts.length >= 16);
  const repo = join(dirname(RULES), "..", "..");
  for (const a of alerts) {
    const url = a.annotations?.runbook_url;
    assert.ok(url, `${a.alert} has no runbook_url`);
    assert.match(url, /^deploy\/runbooks\/[a-z0-9-]+\.md$/, `${a.alert}: ${url}`);
    const text = Deno.readTextFileSync(join(repo, url));
    assert.match(text, new RegExp(`^# ${a.alert}: `), `${url} is not ${a.alert}'s runbook`);
    for (const part of ["What it means.", "What still works.", "What does not.", "What to do."]) {
      assert.ok(text.includes(`**${part}**`), `${url} lacks "${part}"`);
    }
  }
  // No runbook without its alert.
  const linked = new Set(alerts.map((a) => a.annotations!.runbook_url.split("/").pop()));
  for (const f of Deno.readDirSync(join(repo, "deploy", "runbooks"))) {
    assert.ok(linked.has(f.name), `deploy/runbooks/${f.name} belongs to no alert`);
  }
});

Deno.test("the dashboard is an importable Grafana dashboard with job, cluster, host and device selectors and a per-VM row", () => {
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
  assert.deepEqual(vars, [
    "datasource:datasource",
    "job:query",
    "cluster:query",
    "instance:query",
    "device:query",
  ]);
  const ids = d.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  for (const p of d.panels) {
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `panel ${p.id} overflows the grid`);
  }
  const titles = (d.panels as unknown as { title: string }[]).map((p) => p.title);
  for (
    const t of ["Per VM (owner)", "Doorbells by VM", "Busiest VMs", "Doorbells per GPU (DCGM)"]
  ) {
    assert.ok(titles.includes(t), `panel ${t}`);
  }
  // Every query selects the job and cluster (and instance) variables.
  const text = Deno.readTextFileSync(DASHBOARD);
  const selectors = text.match(/instance=~\\"\$instance\\"/g) ?? [];
  const scoped = text.match(/job=~\\"\$job\\", cluster=~\\"\$cluster\\", instance=~/g) ?? [];
  assert.ok(selectors.length > 30);
  assert.equal(scoped.length, selectors.length, "a query selects instance without job/cluster");
  const kinds = new Set(d.panels.map((p) => p.type));
  for (const kind of ["timeseries", "heatmap", "stat", "row"]) assert.ok(kinds.has(kind), kind);
});
