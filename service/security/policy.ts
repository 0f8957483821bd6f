// The policy file: which identity holds which role, optionally limited to some owners or
// devices. Roles nest: viewer (read and watch) < operator (create, delete, reconcile) <
// admin (drain and configuration, when those RPCs exist). The first entry naming one of
// the caller's names wins; an identity the file does not name has no role at all, except
// "local" (the Unix socket, reachable only by the agent's user), which defaults to admin.
import { readFileSync } from "node:fs";
import { normalizePciAddress } from "../devices/pci_address.ts";
import type { Identity } from "./identity.ts";

export type Role = "viewer" | "operator" | "admin";
export const ROLES: readonly Role[] = ["viewer", "operator", "admin"];

export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

export interface Grant {
  /** The policy entry that matched, e.g. "CN=orchestrator-1" or "local". */
  identity: string;
  role: Role;
  /** Owners this identity may act on ("vm-*" matches a prefix); null: any owner. */
  owners: string[] | null;
  /** Canonical PCI addresses this identity may act on; null: any device. */
  devices: string[] | null;
  /**
   * The processes this identity may name as sources (source_binding.ts); null: the
   * transport's default (Unix socket: the caller's process tree; loopback plaintext TCP:
   * the caller's uid; otherwise none).
   */
  sources: SourceRule | null;
}

/**
 * Which processes may be named (any one matching suffices): `any` every process; `tree` the
 * caller's own process and its descendants (Unix socket callers, by SO_PEERCRED);
 * `callerUid` processes whose real and effective uid are the caller's; `uids` processes whose
 * real and effective uid are listed; `cgroups` processes whose cgroup v2 path starts with a
 * listed prefix (e.g. a KubeVirt virt-launcher pod's `/kubepods.slice/…pod<uid>.slice/`).
 */
export interface SourceRule {
  any?: boolean;
  tree?: boolean;
  callerUid?: boolean;
  uids?: number[];
  cgroups?: string[];
}

/** An owner pattern and the processes its sources must be (on top of the caller's rule). */
export interface OwnerSources {
  owner: string;
  sources: SourceRule;
}

/** The JSON file, as written by people. */
export interface PolicyDocument {
  identities: {
    identity: string;
    role: Role;
    owners?: string[];
    devices?: string[];
    sources?: SourceRule;
  }[];
  /** Per owner pattern ("tenant-b-*"): where its sources must live, whoever asks. */
  ownerSources?: OwnerSources[];
}

const IDENTITY = /^(local|insecure|CN=.+|DNS:.+|URI:.+|IP:.+|email:.+)$/;
const ENTRY_KEYS = new Set(["identity", "role", "owners", "devices", "sources"]);
const RULE_KEYS = new Set(["any", "tree", "callerUid", "uids", "cgroups"]);

const LOCAL_DEFAULT: Grant = {
  identity: "local",
  role: "admin",
  owners: null,
  devices: null,
  sources: null,
};

function sourceRule(value: unknown, at: string, errors: string[]): SourceRule | null {
  if (value === undefined) return null;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    errors.push(`${at} must be an object`);
    return {};
  }
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!RULE_KEYS.has(k)) errors.push(`${at}: unknown key ${k}`);
  for (const k of ["any", "tree", "callerUid"]) {
    if (v[k] !== undefined && typeof v[k] !== "boolean") {
      errors.push(`${at}.${k} must be a boolean`);
    }
  }
  if (
    v.uids !== undefined &&
    (!Array.isArray(v.uids) || v.uids.some((u) => !Number.isInteger(u) || u < 0 || u > 0xffffffff))
  ) errors.push(`${at}.uids must be a list of uids`);
  if (
    v.cgroups !== undefined &&
    (!Array.isArray(v.cgroups) ||
      v.cgroups.some((c) => typeof c !== "string" || !c.startsWith("/")))
  ) errors.push(`${at}.cgroups must be a list of cgroup paths starting with /`);
  return v as SourceRule;
}

export class Policy {
  private constructor(
    readonly grants: readonly Grant[],
    readonly source: string,
    readonly ownerSources: readonly OwnerSources[] = [],
  ) {}

  /**
   * No policy file: the Unix socket is admin, and so is a plaintext TCP listener (which
   * exists only when allowInsecureTcp was set, and is then reported as a warning).
   */
  static builtIn(): Policy {
    return new Policy([LOCAL_DEFAULT, { ...LOCAL_DEFAULT, identity: "insecure" }], "built-in");
  }

  static load(path: string): Policy {
    return Policy.parse(readFileSync(path, "utf8"), path);
  }

  /** Parses and checks a policy document; throws one error naming every problem. */
  static parse(text: string, source = "policy"): Policy {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new Error(`${source}: not JSON: ${(err as Error).message}`);
    }
    const errors: string[] = [];
    const list = (doc as { identities?: unknown })?.identities;
    if (typeof doc !== "object" || doc === null || !Array.isArray(list)) {
      throw new Error(`${source}: expected {"identities": [...]}`);
    }
    const grants: Grant[] = [];
    const seen = new Set<string>();
    list.forEach((raw: unknown, i: number) => {
      const at = `identities[${i}]`;
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        errors.push(`${at}: expected an object`);
        return;
      }
      const e = raw as Record<string, unknown>;
      for (const k of Object.keys(e)) {
        if (!ENTRY_KEYS.has(k)) errors.push(`${at}: unknown key ${k}`);
      }
      const identity = e.identity;
      if (typeof identity !== "string" || !IDENTITY.test(identity)) {
        errors.push(
          `${at}.identity must be local, insecure, CN=<name>, DNS:<name>, URI:<uri>, IP:<addr> or email:<addr>`,
        );
        return;
      }
      if (seen.has(identity)) errors.push(`${at}: ${identity} is listed twice`);
      seen.add(identity);
      if (!ROLES.includes(e.role as Role)) errors.push(`${at}.role must be one of ${ROLES}`);
      const owners = stringList(e.owners, `${at}.owners`, errors);
      const devices = stringList(e.devices, `${at}.devices`, errors)?.map((d) => {
        const canonical = normalizePciAddress(d);
        if (canonical === null) errors.push(`${at}.devices: ${d} is not a PCI address`);
        return canonical ?? d;
      }) ?? null;
      const sources = sourceRule(e.sources, `${at}.sources`, errors);
      grants.push({ identity, role: e.role as Role, owners, devices, sources });
    });
    const ownerSources: OwnerSources[] = [];
    const rawOwners = (doc as { ownerSources?: unknown }).ownerSources;
    if (rawOwners !== undefined && !Array.isArray(rawOwners)) {
      errors.push("ownerSources must be a list");
    }
    for (const [i, o] of (Array.isArray(rawOwners) ? rawOwners : []).entries()) {
      const at = `ownerSources[${i}]`;
      if (typeof o?.owner !== "string" || o.owner.length === 0) {
        errors.push(`${at}.owner must be an owner or a prefix ending in *`);
        continue;
      }
      for (const k of Object.keys(o)) {
        if (k !== "owner" && k !== "sources") errors.push(`${at}: unknown key ${k}`);
      }
      ownerSources.push({
        owner: o.owner,
        sources: sourceRule(o.sources ?? {}, `${at}.sources`, errors) ?? {},
      });
    }
    if (errors.length > 0) throw new Error(`${source}: ${errors.join("; ")}`);
    return new Policy(grants, source, ownerSources);
  }

  /** The first entry naming the caller, or null (no role). */
  grantFor(identity: Identity): Grant | null {
    const names = new Set(identity.names);
    return this.grants.find((g) => names.has(g.identity)) ??
      (names.has("local") ? LOCAL_DEFAULT : null);
  }
}

function stringList(value: unknown, at: string, errors: string[]): string[] | null {
  if (value === undefined) return null;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v.length === 0)) {
    errors.push(`${at} must be a list of non-empty strings`);
    return [];
  }
  return value as string[];
}

export function ownerAllowed(grant: Grant, owner: string): boolean {
  return grant.owners === null ||
    grant.owners.some((p) => p.endsWith("*") ? owner.startsWith(p.slice(0, -1)) : owner === p);
}

export function deviceAllowed(grant: Grant, device: string): boolean {
  if (grant.devices === null) return true;
  const canonical = normalizePciAddress(device);
  return canonical !== null && grant.devices.includes(canonical);
}
