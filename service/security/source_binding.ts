// The source binding: which processes a caller may name as the source of an ioeventfd (by
// (pid, fd), or by the sender of a handed-over handle). Without it any caller could arm a
// write on any process's eventfd — another user's, another tenant's VMM, root's — and the
// agent would drain that eventfd's counter under its owner.
//
// The caller's rule is its policy entry's `sources`, else its transport's default: on the
// Unix socket its own process tree (SO_PEERCRED pid: that process and its descendants); on a
// loopback plaintext TCP connection its own uid; an mTLS caller (or a plaintext one from
// another host) names no process unless its entry says so. On top, the first `ownerSources`
// pattern matching the owner must also hold (a tenant's VMMs live in that tenant's cgroup,
// whoever asks). The agent's own process is never a source (registry/sources.ts).
import { type ProcessFacts, processFacts } from "../native/handover.ts";
import type { Caller } from "../registry/caller.ts";
import type { Identity } from "./identity.ts";
import { type Grant, ownerAllowed, type Policy, type SourceRule } from "./policy.ts";

/** The rule an identity is bound by when its policy entry names none. */
export function defaultRule(identity: Identity): SourceRule {
  if (identity.transport === "local") return { tree: true };
  if (identity.transport === "insecure") return { callerUid: true };
  return {};
}

/** How deep the parent chain is followed for `tree`. */
const MAX_DEPTH = 64;

function descendsFrom(pid: number, ancestor: number, facts: (p: number) => ProcessFacts | null) {
  let p = pid;
  for (let i = 0; i < MAX_DEPTH && p > 0; i++) {
    if (p === ancestor) return true;
    const f = facts(p);
    if (f === null) return false;
    // A thread id names its process: judge the thread group.
    p = f.tgid !== p ? f.tgid : f.ppid;
  }
  return false;
}

/** Whether `rule` covers process `pid` (with facts `f`) for a caller with `peer`. */
export function ruleCovers(
  rule: SourceRule,
  pid: number,
  f: ProcessFacts,
  peer: Identity["peer"],
  facts: (p: number) => ProcessFacts | null = processFacts,
): boolean {
  if (rule.any) return true;
  const uidIs = (u: number) => f.uid === u && f.euid === u;
  if (rule.tree && peer?.pid !== undefined && descendsFrom(pid, peer.pid, facts)) return true;
  if (rule.callerUid && peer?.uid !== undefined && uidIs(peer.uid)) return true;
  if (rule.uids?.some(uidIs)) return true;
  if (rule.cgroups?.some((c) => f.cgroup === c.replace(/\/$/, "") || f.cgroup.startsWith(c))) {
    return true;
  }
  return false;
}

export function describeRule(rule: SourceRule): string {
  const parts: string[] = [];
  if (rule.any) return "any process";
  if (rule.tree) parts.push("its own process tree");
  if (rule.callerUid) parts.push("its own uid's processes");
  if (rule.uids?.length) parts.push(`processes of uid ${rule.uids.join(", ")}`);
  if (rule.cgroups?.length) parts.push(`processes in cgroup ${rule.cgroups.join(", ")}`);
  return parts.length > 0 ? parts.join(" or ") : "no process";
}

/** The registry's view of a caller: its source binding and what it may see. */
export function callerFor(identity: Identity, grant: Grant | null, policy: Policy): Caller {
  const rule = grant?.sources ?? defaultRule(identity);
  return {
    name: identity.name,
    canSee: (owner) => grant !== null && ownerAllowed(grant, owner),
    mayName(pid, owner) {
      const f = processFacts(pid);
      // No such process: the take reports SOURCE_PROCESS_GONE; nothing is revealed.
      if (f === null) return null;
      // The walk up the tree starts at `pid`: its facts are read once, not twice.
      const facts = (p: number) => (p === pid ? f : processFacts(p));
      if (!ruleCovers(rule, pid, f, identity.peer, facts)) {
        return `${identity.name} may name only ${
          describeRule(rule)
        } as sources; process ${pid} is outside`;
      }
      const bound = policy.ownerSources.find((o) =>
        o.owner.endsWith("*") ? owner.startsWith(o.owner.slice(0, -1)) : owner === o.owner
      );
      if (bound && !ruleCovers(bound.sources, pid, f, identity.peer, facts)) {
        return `sources of owner ${owner} must be ${
          describeRule(bound.sources)
        }; process ${pid} is not`;
      }
      return null;
    },
  };
}
