// Reading what deploy/ declares, the way the tools that consume it read it: the Kubernetes
// manifests (every YAML document), the systemd unit (sections, continuation lines, repeated
// keys) and the Containerfile (instructions, JSON-form commands).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const DEPLOY = join(REPO, "deploy");
export const KUBERNETES = join(DEPLOY, "kubernetes");
export const UNIT_FILE = join(DEPLOY, "systemd", "ioeventd.service");
export const CONTAINERFILE = join(DEPLOY, "container", "Containerfile");

export interface Metadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: Metadata;
  // deno-lint-ignore no-explicit-any
  spec?: any;
  [key: string]: unknown;
}

export interface Manifest {
  file: string;
  doc: K8sObject;
}

/** Every document of every .yaml file in deploy/kubernetes; throws on any YAML error. */
export function loadManifests(dir = KUBERNETES): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const document of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      if (document.errors.length > 0) {
        throw new Error(`${file}: ${document.errors.map((e) => e.message).join("; ")}`);
      }
      const doc = document.toJS() as K8sObject | null;
      if (doc !== null) out.push({ file, doc });
    }
  }
  return out;
}

export function findObject(manifests: Manifest[], kind: string, name?: string): K8sObject {
  const found = manifests.filter((m) =>
    m.doc.kind === kind && (name === undefined || m.doc.metadata?.name === name)
  );
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ""}, ${found.length}`);
  return found[0].doc;
}

export interface ContainerPort {
  name: string;
  containerPort: number;
  protocol?: string;
}

export interface Probe {
  httpGet?: { path: string; port: string | number };
  grpc?: { port: number; service?: string };
  periodSeconds?: number;
  failureThreshold?: number;
  timeoutSeconds?: number;
}

export interface Container {
  name: string;
  image: string;
  args: string[];
  ports: ContainerPort[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  securityContext: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities: { add?: string[]; drop?: string[] };
    seccompProfile?: { type: string; localhostProfile?: string };
    appArmorProfile?: { type: string; localhostProfile?: string };
  };
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}

/** The port number a probe targets (a name is looked up among the container's ports). */
export function probePort(container: Container, probe: Probe): number {
  const port = probe.httpGet?.port ?? probe.grpc?.port;
  if (typeof port === "number") return port;
  const named = container.ports.find((p) => p.name === port);
  if (!named) throw new Error(`probe port ${port} is not a port of the container`);
  return named.containerPort;
}

/** The unit file's sections: each key with all its values in order (continuations joined). */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  const joined = text.replace(/\\\n/g, " ");
  for (const raw of joined.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = line.match(/^\[(.+)\]$/);
    if (section) {
      current = new Map();
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    if (!current || eq < 0) throw new Error(`unit: unexpected line ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

export interface Instruction {
  /** FROM, COPY, RUN, ... (upper case). */
  op: string;
  /** The rest of the line, continuations joined. */
  rest: string;
}

/** Containerfile instructions in order; comments and the parser directive dropped. */
export function parseContainerfile(text: string): Instruction[] {
  const lines = text.split("\n").filter((l) => !/^\s*#/.test(l));
  const joined = lines.join("\n").replace(/\\\n/g, " ");
  return joined.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
    const m = l.match(/^(\w+)\s+(.*)$/);
    if (!m) throw new Error(`Containerfile: cannot read ${l}`);
    return { op: m[1].toUpperCase(), rest: m[2].replace(/\s+/g, " ").trim() };
  });
}

/** The exec (JSON array) form of CMD / ENTRYPOINT / HEALTHCHECK CMD. */
export function execForm(rest: string): string[] {
  const json = rest.slice(rest.indexOf("["));
  const parsed = JSON.parse(json) as unknown;
  if (!Array.isArray(parsed) || parsed.some((x) => typeof x !== "string")) {
    throw new Error(`not an exec-form command: ${rest}`);
  }
  return parsed as string[];
}

/** The agent's flags in a command line: what follows the entry point service/main.ts. */
export function agentArgs(command: string[]): string[] {
  const i = command.indexOf("service/main.ts");
  if (i < 0) throw new Error(`no service/main.ts in ${command.join(" ")}`);
  return command.slice(i + 1);
}

/** Every value of `--flag=v` / `--flag v` in args. */
export function flagValues(args: string[], flag: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => {
    if (a.startsWith(`${flag}=`)) out.push(a.slice(flag.length + 1));
    else if (a === flag && i + 1 < args.length) out.push(args[i + 1]);
  });
  return out;
}

export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(":") + 1));
}
