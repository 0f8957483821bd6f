// deploy/kubernetes against the agent it deploys: every manifest parses; the names, ports,
// paths, flags, capabilities and probes agree with each other and with the code; and a real
// agent started with the DaemonSet's own arguments (through the image's entry point) answers
// on exactly the ports and paths the probes, the Service and the ServiceMonitor name.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { DEFAULT_GRPC_PORT } from "../../service/cli/fleet_hosts.ts";
import { AgentClient } from "../../service/cli/client.ts";
import { defaultConfig, REAL_SYSFS } from "../../service/config.ts";
import { loadConfig } from "../../service/config_loader.ts";
import { VERSION } from "../../service/version.ts";
import { prometheusRule, RULES_FILE } from "../../deploy/kubernetes/sync_rules.ts";
import { GPU, removeDir, tempDir } from "../support/agent.ts";
import { SourceProcess } from "../support/source_process.ts";
import { ioeventctl } from "../fleet/cluster.ts";
import {
  type Container,
  CONTAINERFILE,
  execForm,
  findObject,
  loadManifests,
  parseContainerfile,
  portOf,
  probePort,
  REPO,
} from "./files.ts";
import { httpStatus, httpText, rewriteArgs, startDeployed } from "./run_as_deployed.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const manifests = loadManifests();
const daemonSet = findObject(manifests, "DaemonSet", "ioeventd");
const pod = daemonSet.spec.template;
const container = (pod.spec.containers as Container[]).find((c) => c.name === "ioeventd")!;
const port = (name: string) => container.ports.find((p) => p.name === name)!.containerPort;

interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  emptyDir?: unknown;
}
const volumes = pod.spec.volumes as Volume[];
const hostMounts = container.volumeMounts.flatMap((m) => {
  const v = volumes.find((x) => x.name === m.name);
  return v?.hostPath ? [{ ...m, hostPath: v.hostPath.path }] : [];
});

/** The image's entry point (deno run … service/main.ts), with this machine's deno. */
function imageEntrypoint(): string[] {
  const entry = parseContainerfile(readFileSync(CONTAINERFILE, "utf8")).filter((i) =>
    i.op === "ENTRYPOINT"
  ).pop()!;
  const argv = execForm(entry.rest);
  return [Deno.execPath(), ...argv.slice(1)];
}

/** Host paths to temporary ones, all interfaces to one loopback address; ports unchanged. */
function rewrites(tmp: string, ip: string) {
  return [
    ...hostMounts.filter((m) =>
      !m.mountPath.startsWith("/sys/") && container.args.some((a) => a.includes(m.mountPath))
    ).map((m) => ({ from: m.mountPath, to: join(tmp, m.name) })),
    { from: "0.0.0.0", to: ip },
  ];
}

Deno.test("kubernetes: every manifest parses, is namespaced alike, and is in the kustomization", () => {
  assert.ok(manifests.length >= 8);
  const kustomization = findObject(manifests, "Kustomization") as unknown as {
    namespace: string;
    resources: string[];
    images: { name: string; newTag: string }[];
  };
  const files = new Set(manifests.map((m) => m.file).filter((f) => f !== "kustomization.yaml"));
  assert.deepEqual(new Set(kustomization.resources), files);
  const namespace = findObject(manifests, "Namespace").metadata.name;
  assert.equal(kustomization.namespace, namespace);
  for (const { file, doc } of manifests) {
    assert.ok(doc.apiVersion && doc.kind, `${file}: apiVersion and kind`);
    if (["Namespace", "PriorityClass", "Kustomization"].includes(doc.kind)) continue;
    assert.equal(doc.metadata.namespace, namespace, `${file}: namespace`);
  }
  // The image is the version this tree builds.
  assert.equal(container.image, `ioeventd:${VERSION}`);
  assert.deepEqual(kustomization.images, [{ name: "ioeventd", newTag: VERSION }]);
});

Deno.test("kubernetes: DaemonSet scheduling, rollout, privileges and mounts", () => {
  const spec = pod.spec;
  assert.ok(Object.keys(spec.nodeSelector ?? {}).length > 0, "an opt-in node selector");
  assert.equal(spec.hostPID, true, "pidfd_open on VMM PIDs needs the host PID namespace");
  assert.notEqual(spec.hostNetwork, true);
  assert.equal(
    findObject(manifests, "PriorityClass", spec.priorityClassName).metadata.name,
    spec.priorityClassName,
  );
  assert.deepEqual(daemonSet.spec.updateStrategy, {
    type: "RollingUpdate",
    // Make-before-break: the new pod takes over from the old one (README "Upgrades").
    rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
  });
  assert.ok(daemonSet.spec.minReadySeconds > 0);
  assert.ok(spec.terminationGracePeriodSeconds >= 30);
  assert.ok(spec.terminationGracePeriodSeconds * 1000 > 2 * defaultConfig().shutdownGraceMs);
  assert.equal(findObject(manifests, "ServiceAccount").metadata.name, spec.serviceAccountName);
  assert.equal(spec.automountServiceAccountToken, false);

  const sc = container.securityContext;
  assert.notEqual(sc.privileged, true);
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.deepEqual(sc.capabilities.drop, ["ALL"]);
  assert.deepEqual([...sc.capabilities.add!].sort(), ["SYS_ADMIN", "SYS_PTRACE", "SYS_RAWIO"]);

  // Exactly these host paths, mounted where they are on the host (the socket path a VMM
  // manager uses on the node is the one the agent binds).
  assert.deepEqual(
    hostMounts.map((m) => [m.hostPath, m.mountPath, m.readOnly === true]).sort(),
    [
      ["/run/ioeventd", "/run/ioeventd", false],
      ["/sys/bus/pci", "/sys/bus/pci", true],
      ["/sys/devices", "/sys/devices", false],
      ["/var/lib/ioeventd", "/var/lib/ioeventd", false],
    ],
  );
  assert.ok(REAL_SYSFS.startsWith("/sys/bus/pci/"), "the inventory reads below the mount");
  const others = volumes.filter((v) => !v.hostPath).map((v) => v.name);
  assert.deepEqual(others, ["tmp"]);
});

Deno.test("kubernetes: AppArmor nodes: the agent runs unconfined by AppArmor, seccomp stays", () => {
  // The runtime's default AppArmor profile (Ubuntu nodes) denies ptrace of processes under
  // other profiles and writes under /sys: pidfd_getfd on a VMM and the BAR writes.
  const sc = container.securityContext;
  assert.deepEqual(sc.appArmorProfile, { type: "Unconfined" });
  assert.deepEqual(sc.seccompProfile, { type: "RuntimeDefault" });
  // Kubernetes before 1.30 reads the annotation; both must say the same.
  const annotations = pod.metadata.annotations as Record<string, string>;
  assert.equal(
    annotations["container.apparmor.security.beta.kubernetes.io/ioeventd"],
    "unconfined",
  );
  // Nothing else is loosened for it.
  assert.notEqual(sc.privileged, true);
  assert.deepEqual(sc.capabilities.drop, ["ALL"]);
  const readme = readFileSync(join(REPO, "deploy", "README.md"), "utf8");
  assert.match(readme, /### AppArmor nodes/);
  assert.match(readme, /appArmorProfile/);
});

Deno.test("kubernetes: NODE_NAME is the node's name, the Hostname DCGM's series carry", () => {
  const env = container.env ?? [];
  const node = env.find((e) => e.name === "NODE_NAME");
  assert.deepEqual(node?.valueFrom, { fieldRef: { fieldPath: "spec.nodeName" } });
});

Deno.test("kubernetes: the DaemonSet's args load, and agree with ports, mounts and defaults", () => {
  const config = loadConfig(container.args);
  assert.equal(config.simulate, false, "production manages real devices only");
  assert.ok(config.sysfsRoots.includes(REAL_SYSFS));
  const state = hostMounts.find((m) => m.mountPath === config.stateDir);
  assert.ok(state && !state.readOnly, `state dir ${config.stateDir} is a writable host mount`);
  const unix = config.listen.filter((a) => a.startsWith("unix:"));
  const tcp = config.listen.filter((a) => !a.startsWith("unix:"));
  assert.equal(unix.length, 1);
  const socketDir = dirname(unix[0].replace(/^unix:(\/\/)?/, ""));
  assert.ok(hostMounts.some((m) => m.mountPath === socketDir && !m.readOnly), socketDir);
  assert.equal(tcp.length, 1);
  // The gRPC port: the container's, the Service's and the fleet CLI's default alike.
  assert.equal(portOf(tcp[0]), port("grpc"));
  assert.equal(port("grpc"), DEFAULT_GRPC_PORT);
  // The metrics port: the agent's default port, on every interface of the pod.
  assert.equal(portOf(config.metricsListen), port("metrics"));
  assert.equal(portOf(config.metricsListen), portOf(defaultConfig().metricsListen));
  assert.match(config.metricsListen, /^0\.0\.0\.0:/, "kubelet and Prometheus come from outside");
  assert.deepEqual(container.ports.map((p) => p.name).sort(), ["grpc", "metrics"]);

  // Probes: HTTP on the metrics port; readiness (and startup) on /readyz, liveness /healthz.
  const probes = {
    startup: container.startupProbe!,
    liveness: container.livenessProbe!,
    readiness: container.readinessProbe!,
  };
  assert.equal(probes.readiness.httpGet?.path, "/readyz");
  assert.equal(probes.startup.httpGet?.path, "/readyz");
  assert.equal(probes.liveness.httpGet?.path, "/healthz");
  for (const probe of Object.values(probes)) {
    assert.equal(probePort(container, probe), port("metrics"));
  }
  // The startup probe gives a long journal replay minutes, not seconds.
  const startupSeconds = probes.startup.periodSeconds! * probes.startup.failureThreshold!;
  assert.ok(startupSeconds >= 120, `startup window ${startupSeconds}s`);
});

Deno.test("kubernetes: Service, ServiceMonitor and NetworkPolicy point at real pods and ports", () => {
  const podLabels = pod.metadata.labels as Record<string, string>;
  const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
    Object.entries(selector).every(([k, v]) => labels[k] === v);
  assert.deepEqual(daemonSet.spec.selector.matchLabels, {
    "app.kubernetes.io/name": podLabels["app.kubernetes.io/name"],
  });

  const service = findObject(manifests, "Service", "ioeventd");
  assert.equal(service.spec.clusterIP, "None", "headless");
  assert.ok(matches(service.spec.selector, podLabels));
  for (const p of service.spec.ports as { name: string; port: number; targetPort: string }[]) {
    assert.equal(p.targetPort, p.name);
    assert.equal(p.port, port(p.name), `service port ${p.name}`);
  }

  const monitor = findObject(manifests, "ServiceMonitor", "ioeventd");
  assert.ok(matches(monitor.spec.selector.matchLabels, service.metadata.labels!));
  assert.deepEqual(monitor.spec.namespaceSelector.matchNames, [service.metadata.namespace]);
  assert.deepEqual(
    (monitor.spec.endpoints as { port: string; path: string }[]).map((e) => [e.port, e.path]),
    [["metrics", "/metrics"]],
  );
  // Prometheus Operator names the job after the Service unless jobLabel says otherwise:
  // the rules select that job.
  assert.equal(monitor.spec.jobLabel, undefined);
  const jobs = [...readFileSync(RULES_FILE, "utf8").matchAll(/job="([^"]+)"/g)].map((m) => m[1]);
  assert.ok(jobs.length > 0);
  for (const job of jobs) assert.equal(job, service.metadata.name);

  const policy = findObject(manifests, "NetworkPolicy", "ioeventd");
  assert.ok(matches(policy.spec.podSelector.matchLabels, podLabels));
  const allowed = (policy.spec.ingress as { ports: { port: string }[] }[])
    .flatMap((rule) => rule.ports.map((p) => p.port)).sort();
  assert.deepEqual(allowed, container.ports.map((p) => p.name).sort());
});

Deno.test("kubernetes: the PrometheusRule is deploy/prometheus/rules.yml, and promtool accepts it", () => {
  const rule = findObject(manifests, "PrometheusRule", "ioeventd");
  assert.deepEqual(
    rule,
    prometheusRule(readFileSync(RULES_FILE, "utf8")),
    "out of date: run `deno run -A deploy/kubernetes/sync_rules.ts`",
  );
  const dir = tempDir();
  try {
    const file = join(dir, "rules.yml");
    writeFileSync(file, stringify({ groups: rule.spec.groups }));
    const r = spawnSync("promtool", ["check", "rules", file], { encoding: "utf8" });
    assert.equal(r.error, undefined, "promtool missing: run test/setup.sh");
    assert.equal(r.status, 0, r.stdout + r.stderr);
  } finally {
    removeDir(dir);
  }
});

Deno.test(
  "kubernetes: the DaemonSet's args, run by the image's entry point, serve every probe",
  opts,
  async () => {
    const tmp = tempDir("ioeventd-ds-");
    const ip = "127.0.0.9";
    const args = rewriteArgs(container.args, rewrites(tmp, ip));
    const agent = await startDeployed([...imageEntrypoint(), ...args], { cwd: REPO });
    try {
      for (const key of ["startupProbe", "livenessProbe", "readinessProbe"] as const) {
        const probe = container[key]!;
        const url = `http://${ip}:${probePort(container, probe)}${probe.httpGet!.path}`;
        assert.equal(await httpStatus(url), 200, `${key} ${url}`);
      }
      // What the ServiceMonitor scrapes.
      const scrape = await httpText(`http://${ip}:${port("metrics")}/metrics`);
      assert.equal(scrape.status, 200);
      assert.match(scrape.text, /^# TYPE ioeventd_\w+ /m);
      // The gRPC port, found by the fleet CLI's default port, passes the rollout gate.
      const gate = await ioeventctl("fleet", "rollout-gate", "--version", VERSION, "--hosts", ip);
      assert.equal(gate.code, 0, gate.out + gate.err);
      // SIGTERM ends it cleanly, well within the grace period.
      const t0 = performance.now();
      const status = await agent.stop();
      assert.equal(status.code, 0, agent.logs.join("\n"));
      assert.ok(performance.now() - t0 < pod.spec.terminationGracePeriodSeconds * 1000);
    } finally {
      await agent.stop();
      removeDir(tmp);
    }
  },
);

Deno.test(
  "kubernetes: ready (the probe a rolling update waits for) means every journaled ioeventfd re-armed",
  opts,
  async () => {
    const COUNT = 64;
    const tmp = tempDir("ioeventd-ds-ready-");
    const ip = "127.0.0.9";
    // --simulate instead of --no-simulate: the only way to journal ioeventfds here.
    assert.ok(container.args.includes("--no-simulate"));
    const args = rewriteArgs(
      container.args.map((a) => a === "--no-simulate" ? "--simulate" : a),
      rewrites(tmp, ip),
    );
    const socket = args.find((a) => a.startsWith("--listen=unix:"))!.slice("--listen=".length);
    const readiness = container.readinessProbe!;
    const readyUrl = `http://${ip}:${probePort(container, readiness)}${readiness.httpGet!.path}`;
    const src = await SourceProcess.start(COUNT);
    let agent = await startDeployed([...imageEntrypoint(), ...args], { cwd: REPO });
    let client = new AgentClient(socket);
    try {
      const ids: string[] = [];
      for (let i = 0; i < COUNT; i++) {
        const created = await client.create({
          owner: "vm-rollout",
          spec: {
            device: GPU,
            bar: 0,
            offset: String(0x20000 + 4 * i),
            width: 4,
            data: String(i),
            source: { pid: src.pid, fd: src.fds[i] },
          },
        });
        ids.push(created.id);
      }
      client.close();
      assert.equal((await agent.stop()).code, 0);

      // The rollout restarts the pod: poll readiness from before the new agent exists.
      const seen: (number | null)[] = [];
      const firstReady = (async () => {
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          const status = await httpStatus(readyUrl);
          seen.push(status);
          if (status === 200) {
            const c = new AgentClient(socket);
            try {
              return { items: await c.listAll(), info: await c.info() };
            } finally {
              c.close();
            }
          }
          await new Promise((r) => setTimeout(r, 10));
        }
        throw new Error(`never ready: ${seen.join(",")}`);
      })();
      agent = await startDeployed([...imageEntrypoint(), ...args], { cwd: REPO });
      const atReady = await firstReady;
      assert.ok(seen.every((s) => s === null || s === 503 || s === 200), String(seen));
      assert.equal(atReady.info.ready, true);
      assert.deepEqual(atReady.items.map((i) => i.id).sort(), [...ids].sort());
      assert.ok(atReady.items.every((i) => i.state === "ARMED"));
      client = new AgentClient(socket);
    } finally {
      client.close();
      await agent.stop();
      await src.kill();
      removeDir(tmp);
    }
  },
);
