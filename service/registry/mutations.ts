// The registry's changes that take sources and arm: CreateIoeventfd, ReconcileOwner and the
// re-arming of handed-back sources. Each runs its rules in the documented order (validate →
// duplicates and limits → the caller's source binding → take and arm) and changes the
// registry only through RegistryChanges, which the façade (registry.ts) implements: indexing,
// journaling and reporting stay in one place.
import type { Arming } from "./arming.ts";
import type { Caller } from "./caller.ts";
import { checkKeysFree, checkLimits, earlierRequest, type RegistryLimits } from "./limits.ts";
import {
  armedIdentity,
  armPlan,
  checkSources,
  planReconcile,
  type ReconcileResult,
  validateDesired,
  wouldReconcile,
} from "./reconcile.ts";
import {
  newRegistration,
  type Registration,
  type RemovalCause,
  type WatchFilter,
  wouldBe,
} from "./registration.ts";
import type { RegistrationIndex } from "./registration_index.ts";
import type { Sources } from "./sources.ts";
import {
  keyOf,
  orphanCause,
  type RawSpec,
  type Spec,
  validateCreate,
  type ValidationContext,
} from "./validation.ts";

/** What the changes here read and how they change the registry (registry.ts). */
export interface RegistryChanges {
  index: RegistrationIndex;
  ctx: ValidationContext;
  limits: RegistryLimits;
  sources: Sources;
  arming: Arming;
  all(filter: WatchFilter): Registration[];
  /** Indexes, journals and reports new registrations (undone if their commit fails). */
  add(rs: readonly Registration[]): void;
  /** Disarms (a barrier), unindexes, journals and reports. */
  remove(rs: readonly Registration[], cause: RemovalCause): void;
  /** New labels on a kept registration. */
  relabel(r: Registration, labels: Record<string, string>): void;
  /** Reports a registration whose state changed (UPDATED). */
  updated(r: Registration): void;
}

export interface CreateRequest {
  spec: RawSpec | null | undefined;
  owner: unknown;
  requestId?: unknown;
  validateOnly?: boolean;
  /** Who asks (the security layer's source binding and visibility); none: unbound. */
  caller?: Caller;
}

function canSee(caller: Caller | undefined): (owner: string) => boolean {
  return caller ? (o) => caller.canSee(o) : () => true;
}

/** CreateIoeventfd: one registration, or the earlier one of a repeated request_id. */
export function createOne(
  c: RegistryChanges,
  req: CreateRequest,
): { registration: Registration; created: boolean } {
  const { spec, owner, requestId } = validateCreate(req, c.ctx);
  const earlier = earlierRequest(c.index, owner, requestId, spec);
  if (earlier) return { registration: earlier, created: false };
  const addition = [{ spec, owner, at: "spec." }];
  checkKeysFree(c.index, addition, new Set(), canSee(req.caller));
  checkLimits(c.index, c.limits, addition);
  c.sources.current = { owner, caller: req.caller };

  if (req.validateOnly) {
    const [identity] = checkSources([{ spec, owner, at: "spec." }], c.sources);
    c.sources.usedHandles.clear(); // only looked at
    return { registration: wouldBe(owner, requestId, spec, identity), created: false };
  }
  const { armed, source, vfio } = c.arming.acquireAndArm(spec, "spec.");
  const r = newRegistration(owner, requestId, spec, {
    nativeId: armed.id,
    backend: armed.backend,
    startTime: source.startTime,
    eventfdId: source.eventfdId,
    vfioStartTime: vfio?.startTime ?? 0n,
  });
  c.add([r]);
  return { registration: r, created: true };
}

/** ReconcileOwner: the owner's set made equal to `desired`, all or nothing. */
export function reconcileOwner(
  c: RegistryChanges,
  req: { owner: unknown; desired: RawSpec[]; dryRun?: boolean; caller?: Caller },
): ReconcileResult {
  const { owner, specs } = validateDesired(req.owner, req.desired, c.ctx);
  const plan = planReconcile(owner, specs, c.all({ owner }));
  checkKeysFree(
    c.index,
    plan.toAdd,
    new Set(plan.toRemove.map((r) => keyOf(r.spec))),
    canSee(req.caller),
  );
  checkLimits(c.index, c.limits, plan.toAdd, plan.toRemove);
  const who = { owner, caller: req.caller };
  c.sources.current = who;
  // Every (pid, fd) source within the caller's binding before anything is disarmed.
  for (const a of plan.toAdd) {
    if (!a.spec.source.handle) c.sources.checkBound(a.spec.source.pid, `${a.at}source`, who);
    const v = a.spec.vfioDevice;
    if (v && !v.handle) c.sources.checkBound(v.pid, `${a.at}vfio_device`, who);
  }
  if (req.dryRun) {
    const checked = checkSources(plan.toAdd, c.sources);
    c.sources.usedHandles.clear(); // only looked at
    return wouldReconcile(plan, checked);
  }

  const added = armPlan(plan, c.sources, c.arming, (lost) => {
    // Gone meanwhile (its source or VMM exited): removed as it would have been.
    c.remove([lost], "SOURCE_EXIT");
  }).map((a) => newRegistration(owner, "", a.addition.spec, armedIdentity(a)));
  c.remove(plan.toRemove, "RECONCILE");
  c.add(added);
  for (const { registration, labels } of plan.relabel) c.relabel(registration, labels);
  return { added, kept: plan.kept, removed: plan.toRemove };
}

/**
 * NEEDS_SOURCE registrations armed again from their handed-back sources (handedBack's
 * matches); one that cannot be (its device changed, the arm failed) keeps waiting. The
 * handles used are consumed.
 */
export function rearmHandedBack(
  c: RegistryChanges,
  matches: readonly { registration: Registration; spec: Spec }[],
): Registration[] {
  const rearmed: Registration[] = [];
  const used = new Set<string>();
  for (const { registration: r, spec } of matches) {
    if (orphanCause(spec, c.ctx) !== null) continue; // the device changed meanwhile
    c.sources.current = { owner: r.owner };
    try {
      const { armed } = c.arming.acquireAndArm(spec, "");
      r.spec = spec;
      r.nativeId = armed.id;
      r.backend = armed.backend;
      r.state = "ARMED";
      for (const h of c.sources.usedHandles) used.add(h);
      rearmed.push(r);
      c.updated(r);
    } catch {
      // stays NEEDS_SOURCE: a later hand-over may still do
    } finally {
      c.sources.usedHandles.clear();
      c.sources.current = undefined;
    }
  }
  for (const h of used) c.sources.handover.consume(h);
  return rearmed;
}
