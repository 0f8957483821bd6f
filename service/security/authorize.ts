// The authorization decision: from (identity, grant, method, request) to allow or deny.
// Pure — it reads the registry only through a lookup — so every rule is testable without
// a server. Each RPC names the role it needs and, for identities limited to some owners or
// devices, the owners and devices the request touches.
import { normalizePciAddress } from "../devices/pci_address.ts";
import type { Identity } from "./identity.ts";
import { deviceAllowed, type Grant, ownerAllowed, type Role, roleAtLeast } from "./policy.ts";

/** Where an existing ioeventfd belongs. */
export interface Ownership {
  id: string;
  owner: string;
  device: string;
}

/** What the decision may read about existing ioeventfds. */
export interface RegistrationLookup {
  byId(id: string): Ownership | undefined;
  byKey(key: unknown): Ownership | undefined;
  ofOwner(owner: string): Ownership[];
}

/** Owners and devices a request touches; null: all of them (a listing with no filter). */
interface Scope {
  owners: string[] | null;
  devices: string[] | null;
  /** The request to pass on instead (a key-based delete pinned to the id that was checked). */
  rewrite?: Record<string, unknown>;
}

interface Rule {
  /** null: any caller the transport accepted (health checks). */
  role: Role | null;
  /** Mutations are audited. */
  mutation: boolean;
  scope?: (req: Record<string, unknown>, lookup: RegistrationLookup) => Scope;
}

/** Why a call was denied (a metric label; the message says it for people). */
export type DenialKind = "NO_ROLE" | "ROLE" | "OWNER" | "DEVICE" | "NEEDS_FILTER";

export type Decision =
  | { allowed: true; request: unknown }
  | { allowed: false; kind: DenialKind; message: string; metadata: Record<string, string> };

const str = (v: unknown): string => (typeof v === "string" ? v : "");
/** Request text quoted in a denial: bounded, whatever the caller sent. */
const short = (s: string): string => (s.length > 64 ? `${s.slice(0, 64)}…` : s);
const obj = (v: unknown): Record<string, unknown> =>
  typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {};

const NONE: Scope = { owners: [], devices: [] };

function existing(target: Ownership | undefined): Scope {
  return target
    ? {
      owners: [target.owner],
      devices: [target.device],
      rewrite: { selector: "id", id: target.id },
    }
    : NONE; // not there: the handler answers NOT_FOUND, which reveals nothing to check
}

const filterScope = (req: Record<string, unknown>): Scope => ({
  owners: str(req.owner) ? [str(req.owner)] : null,
  devices: str(req.device) ? [str(req.device)] : null,
});

const SERVICE = "/ioeventd.v1.IoeventfdService/";

/** Every method of every service the server hosts; a method missing here needs admin. */
export const RULES: Readonly<Record<string, Rule>> = {
  [`${SERVICE}GetAgentInfo`]: { role: "viewer", mutation: false },
  [`${SERVICE}ListDevices`]: { role: "viewer", mutation: false },
  [`${SERVICE}GetDevice`]: {
    role: "viewer",
    mutation: false,
    scope: (req) => ({ owners: [], devices: [str(req.address)] }),
  },
  [`${SERVICE}GetIoeventfd`]: {
    role: "viewer",
    mutation: false,
    scope: (req, lookup) => {
      const s = existing(lookup.byId(str(req.id)));
      return { owners: s.owners, devices: s.devices }; // a get needs no rewrite
    },
  },
  [`${SERVICE}ListIoeventfds`]: { role: "viewer", mutation: false, scope: filterScope },
  [`${SERVICE}WatchIoeventfds`]: { role: "viewer", mutation: false, scope: filterScope },
  [`${SERVICE}CreateIoeventfd`]: {
    role: "operator",
    mutation: true,
    scope: (req) => ({ owners: [str(req.owner)], devices: [str(obj(req.spec).device)] }),
  },
  [`${SERVICE}DeleteIoeventfd`]: {
    role: "operator",
    mutation: true,
    scope: (req, lookup) =>
      existing(req.selector === "key" ? lookup.byKey(req.key) : lookup.byId(str(req.id))),
  },
  [`${SERVICE}ReconcileOwner`]: {
    role: "operator",
    mutation: true,
    // Reconcile removes what the owner has and the request leaves out: those count too.
    scope: (req, lookup) => {
      const owner = str(req.owner);
      const desired = Array.isArray(req.desired) ? req.desired : [];
      const devices = new Set(desired.map((d) => str(obj(d).device)));
      for (const r of lookup.ofOwner(owner)) devices.add(r.device);
      return { owners: [owner], devices: [...devices] };
    },
  },
  "/grpc.health.v1.Health/Check": { role: null, mutation: false },
  "/grpc.health.v1.Health/Watch": { role: null, mutation: false },
  "/grpc.health.v1.Health/List": { role: null, mutation: false },
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": { role: "viewer", mutation: false },
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {
    role: "viewer",
    mutation: false,
  },
};

const UNLISTED: Rule = { role: "admin", mutation: true };

export function ruleFor(path: string): Rule {
  return Object.hasOwn(RULES, path) ? RULES[path] : UNLISTED;
}

/** The short method name of a path ("/pkg.Service/Method" → "Method"). */
export function methodName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function deny(
  kind: DenialKind,
  message: string,
  identity: Identity,
  path: string,
  extra: Record<string, string>,
): Decision {
  return {
    allowed: false,
    kind,
    message,
    metadata: { identity: identity.name, method: methodName(path), denial: kind, ...extra },
  };
}

/** Decides one call. `request` is the decoded message (first message of a stream). */
export function authorize(
  identity: Identity,
  grant: Grant | null,
  path: string,
  request: unknown,
  lookup: RegistrationLookup,
): Decision {
  const rule = ruleFor(path);
  if (rule.role === null) return { allowed: true, request };
  const method = methodName(path);
  if (grant === null) {
    return deny("NO_ROLE", `${identity.name} has no role on this agent`, identity, path, {
      required_role: rule.role,
    });
  }
  if (!roleAtLeast(grant.role, rule.role)) {
    return deny(
      "ROLE",
      `${identity.name} is ${grant.role}; ${method} needs ${rule.role}`,
      identity,
      path,
      { role: grant.role, required_role: rule.role },
    );
  }
  if ((grant.owners === null && grant.devices === null) || !rule.scope) {
    return { allowed: true, request };
  }
  const req = obj(request);
  const scope = rule.scope(req, lookup);
  if (grant.owners !== null) {
    if (scope.owners === null) {
      return deny(
        "NEEDS_FILTER",
        `${identity.name} may act only on owners ${grant.owners.join(", ")}: set the owner filter`,
        identity,
        path,
        { role: grant.role },
      );
    }
    const other = scope.owners.find((o) => !ownerAllowed(grant, o));
    if (other !== undefined) {
      return deny(
        "OWNER",
        `${identity.name} may not act on owner ${short(other)}`,
        identity,
        path,
        {
          role: grant.role,
          owner: short(other),
        },
      );
    }
  }
  if (grant.devices !== null) {
    if (scope.devices === null) {
      return deny(
        "NEEDS_FILTER",
        `${identity.name} may act only on devices ${
          grant.devices.join(", ")
        }: set the device filter`,
        identity,
        path,
        { role: grant.role },
      );
    }
    const other = scope.devices.find((d) => !deviceAllowed(grant, d));
    if (other !== undefined) {
      return deny(
        "DEVICE",
        `${identity.name} may not act on device ${normalizePciAddress(other) ?? short(other)}`,
        identity,
        path,
        { role: grant.role, device: short(other) },
      );
    }
  }
  return { allowed: true, request: scope.rewrite ?? request };
}
