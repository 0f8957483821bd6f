// Every PromQL expression of the Grafana dashboard, with Grafana's variables replaced by
// concrete values, so the tests can run them against a real Prometheus.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const DASHBOARD = fileURLToPath(
  new URL("../../deploy/grafana/ioeventd-dashboard.json", import.meta.url),
);
export const RULES = fileURLToPath(new URL("../../deploy/prometheus/rules.yml", import.meta.url));
export const RULES_TEST = fileURLToPath(
  new URL("../../deploy/prometheus/rules.test.yml", import.meta.url),
);

export interface DashboardQuery {
  /** Where it is: "panel <title>", "variable <name>", "annotation <name>". */
  where: string;
  expr: string;
  /** Queries that only return series when something happened (an "> 0" filter). */
  mayBeEmpty: boolean;
}

interface Target {
  expr?: string;
}
interface Panel {
  title?: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: string | { query?: string } }[] };
  annotations: { list: { name: string; expr?: string }[] };
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
}

/** Grafana's built-in and template variables → concrete values. */
export function substitute(expr: string, vars: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, braced, bare) => {
    const name = braced ?? bare;
    if (/^\d+$/.test(name)) return whole; // a regex group of label_replace, as Grafana leaves it
    if (!(name in vars)) throw new Error(`no value for Grafana variable ${whole} in ${expr}`);
    return vars[name];
  });
}

/** `label_values(expr, label)` runs `expr`; other variable queries are not PromQL. */
function variableExpr(query: string): string | null {
  const m = /^label_values\((.*),\s*\w+\)$/s.exec(query.trim());
  if (m) return m[1];
  const q = /^query_result\((.*)\)$/s.exec(query.trim());
  return q ? q[1] : null;
}

export function dashboardQueries(vars: Record<string, string>): DashboardQuery[] {
  const d = loadDashboard();
  const out: DashboardQuery[] = [];
  const add = (where: string, expr: string) =>
    out.push({ where, expr: substitute(expr, vars), mayBeEmpty: /[><]=?\s*0\s*$/.test(expr) });
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) if (t.expr) add(`panel ${p.title}`, t.expr);
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const v of d.templating.list) {
    if (v.type !== "query") continue;
    const query = typeof v.query === "string" ? v.query : v.query?.query ?? "";
    const expr = variableExpr(query);
    if (expr) add(`variable ${v.name}`, expr);
  }
  for (const a of d.annotations.list) if (a.expr) add(`annotation ${a.name}`, a.expr);
  return out;
}
