// Writes deploy/kubernetes/prometheusrule.yaml from deploy/prometheus/rules.yml, the one
// source of the alerting and recording rules (kustomize cannot read files outside its
// directory, and a PrometheusRule is no ConfigMap). test/deploy/ fails when they differ.
//   deno run -A deploy/kubernetes/sync_rules.ts
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";

export const RULES_FILE = fileURLToPath(new URL("../prometheus/rules.yml", import.meta.url));
export const PROMETHEUS_RULE_FILE = fileURLToPath(
  new URL("./prometheusrule.yaml", import.meta.url),
);

const HEADER =
  `# Generated from deploy/prometheus/rules.yml by deploy/kubernetes/sync_rules.ts: edit the
# rules there, then run
#   deno run -A deploy/kubernetes/sync_rules.ts
# Prometheus Operator picks this up when its ruleSelector matches these labels (add the label
# your Prometheus selects, e.g. release: prometheus).
`;

/** The PrometheusRule holding exactly the groups of the rules file. */
export function prometheusRule(rulesYaml: string): Record<string, unknown> {
  const { groups } = parse(rulesYaml) as { groups: unknown[] };
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: {
      name: "ioeventd",
      namespace: "ioeventd",
      labels: { "app.kubernetes.io/name": "ioeventd", "app.kubernetes.io/part-of": "ioeventd" },
    },
    spec: { groups },
  };
}

export function renderPrometheusRule(rulesYaml: string): string {
  return HEADER + stringify(prometheusRule(rulesYaml), { lineWidth: 100 });
}

if (import.meta.main) {
  writeFileSync(PROMETHEUS_RULE_FILE, renderPrometheusRule(readFileSync(RULES_FILE, "utf8")));
  console.log(`wrote ${PROMETHEUS_RULE_FILE}`);
}
