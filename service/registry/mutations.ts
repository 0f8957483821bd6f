// The registry's changes that take sources and arm: CreateIoeventfd (planned here, armed with
// the others of its turn by create_batch.ts), ReconcileOwner and the re-arming of handed-back
// sources. Each runs its rules in the documented order (validate → duplicates and limits → the
// caller's source binding → take and arm) and changes the
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
import type { AcquiredVfio, Sources } from "./sources.ts";
import type { AcquiredSource, ArmedRegistration } from "./data_plane.ts";
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

/** A create that passed every rule and took its sources: it waits to be armed. */
export interface PlannedCreate {
  owner: string;
  requestId: string;
  spec: Spec;
  source: AcquiredSource;
  vfio: AcquiredVfio | null;
  /** What it will be once armed (id ""): it holds its key, request id and limits meanwhile. */
  placeholder: Registration;
}

/** What a create comes to before arming. */
export type CreatePlan =
  /** A repeated request_id with the same spec: the earlier registration. */
  | { kind: "earlier"; registration: Registration }
  /** validate_only: what it would be; nothing was kept. */
  | { kind: "would-be"; registration: Registration }
  | { kind: "planned"; planned: PlannedCreate };

/**
 * CreateIoeventfd up to arming: validate → duplicates and limits → the caller's source binding
 * → take the sources. Arming is the caller's (create_batch.ts arms a turn's creates at once);
 * on a refusal here nothing is held.
 */
export function planCreate(c: RegistryChanges, req: CreateRequest): CreatePlan {
  const { spec, owner, requestId } = validateCreate(req, c.ctx);
  const earlier = earlierRequest(c.index, owner, requestId, spec);
  if (earlier) return { kind: "earlier", registration: earlier };
  const addition = [{ spec, owner, at: "spec." }];
  checkKeysFree(c.index, addition, new Set(), canSee(req.caller));
  checkLimits(c.index, c.limits, addition);
  c.sources.current = { owner, caller: req.caller };

  if (req.validateOnly) {
    const [identity] = checkSources([{ spec, owner, at: "spec." }], c.sources);
    c.sources.usedHandles.clear(); // only looked at
    return { kind: "would-be", registration: wouldBe(owner, requestId, spec, identity) };
  }
  const { source, vfio } = c.sources.take(spec, "spec.");
  const placeholder = wouldBe(owner, requestId, spec, {
    startTime: source.startTime,
    eventfdId: source.eventfdId,
    vfioStartTime: vfio?.startTime ?? 0n,
  });
  return { kind: "planned", planned: { owner, requestId, spec, source, vfio, placeholder } };
}

/** The registration a planned create became once the data plane armed it. */
export function armedCreate(p: PlannedCreate, armed: ArmedRegistration): Registration {
  return newRegistration(p.owner, p.requestId, p.spec, {
    nativeId: armed.id,
    backend: armed.backend,
    startTime: p.source.startTime,
    eventfdId: p.source.eventfdId,
    vfioStartTime: p.vfio?.startTime ?? 0n,
  });
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
