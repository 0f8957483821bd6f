// ReconcileOwner: make one owner's set of ioeventfds equal to a desired list. First a pure
// plan (keep what is armed with the same key and sources, add the rest, remove what the list
// does not name, relabel kept entries whose labels changed), then an all-or-nothing apply:
// every source is taken before anything changes, and a failure while arming undoes what the
// call armed and re-arms what it handed over.
import { Rejection } from "../rejection/rejection.ts";
import type { Arming } from "./arming.ts";
import type { AcquiredSource, ArmedRegistration } from "./data_plane.ts";
import type { Addition } from "./limits.ts";
import { type ArmedIdentity, type Registration, wouldBe } from "./registration.ts";
import type { AcquiredVfio, Sources } from "./sources.ts";
import {
  keyOf,
  type RawSpec,
  sameSources,
  type Spec,
  validateOwner,
  validateSpec,
  type ValidationContext,
} from "./validation.ts";

/** What ReconcileOwner answers: in a dry run, `added` holds the would-be entries (id ""). */
export interface ReconcileResult {
  added: Registration[];
  kept: Registration[];
  removed: Registration[];
}

/** The owner and every desired spec, validated; every violation of the request at once. */
export function validateDesired(
  owner: unknown,
  desired: unknown,
  ctx: ValidationContext,
): { owner: string; specs: Spec[] } {
  const violations = validateOwner(owner, "owner");
  const specs: Spec[] = [];
  (Array.isArray(desired) ? desired as RawSpec[] : []).forEach((raw, i) => {
    const v = validateSpec(raw, ctx, `desired[${i}].`);
    if (v.ok) specs.push(v.value);
    else violations.push(...v.violations);
  });
  if (violations.length > 0) throw Rejection.of(violations);
  return { owner: owner as string, specs };
}

export interface ReconcilePlan {
  owner: string;
  kept: Registration[];
  toAdd: Addition[];
  toRemove: Registration[];
  /** Kept entries whose labels follow the desired list. */
  relabel: { registration: Registration; labels: Record<string, string> }[];
}

/** The plan for `desired` (validated specs, in request order) against `current`. */
export function planReconcile(
  owner: string,
  desired: readonly Spec[],
  current: readonly Registration[],
): ReconcilePlan {
  const currentByKey = new Map(current.map((r) => [keyOf(r.spec), r]));
  const plan: ReconcilePlan = { owner, kept: [], toAdd: [], toRemove: [], relabel: [] };
  const seen = new Map<string, number>();
  desired.forEach((spec, i) => {
    const key = keyOf(spec);
    const at = `desired[${i}].`;
    if (seen.has(key)) {
      throw Rejection.of([{
        field: `${at}offset`,
        reason: "DUPLICATE",
        description: `same key as desired[${seen.get(key)}]`,
      }]);
    }
    seen.set(key, i);
    const existing = currentByKey.get(key);
    if (existing && existing.state === "ARMED" && sameSources(existing.spec, spec)) {
      plan.kept.push(existing);
      if (JSON.stringify(spec.labels) !== JSON.stringify(existing.spec.labels)) {
        plan.relabel.push({ registration: existing, labels: spec.labels });
      }
    } else {
      plan.toAdd.push({ spec, owner, at });
    }
  });
  const keptIds = new Set(plan.kept.map((r) => r.id));
  plan.toRemove = current.filter((r) => !keptIds.has(r.id));
  return plan;
}

/** What a dry run reports: the would-be additions, the kept entries with their new labels. */
export function wouldReconcile(plan: ReconcilePlan, identities: CheckedSource[]): ReconcileResult {
  const relabel = new Map(plan.relabel.map((l) => [l.registration, l.labels]));
  return {
    added: plan.toAdd.map(({ spec }, i) => wouldBe(plan.owner, "", spec, identities[i])),
    kept: plan.kept.map((r) => {
      const labels = relabel.get(r);
      return labels ? { ...r, spec: { ...r.spec, labels } } : r;
    }),
    removed: plan.toRemove,
  };
}

/** The identity an armed addition is recorded with. */
export function armedIdentity(a: ArmedAddition): ArmedIdentity {
  return {
    nativeId: a.armed.id,
    backend: a.armed.backend,
    startTime: a.source.startTime,
    eventfdId: a.source.eventfdId,
    vfioStartTime: a.vfio?.startTime ?? 0n,
  };
}

/** One addition of the plan, armed. */
export interface ArmedAddition {
  addition: Addition;
  armed: ArmedRegistration;
  source: AcquiredSource;
  vfio: AcquiredVfio | null;
}

/** The identity a source check found: what the registration would record. */
export interface CheckedSource {
  startTime: bigint;
  eventfdId: bigint;
  vfioStartTime: bigint;
}

/**
 * Takes every source and VFIO device of `additions` (a VFIO device named by several specs is
 * taken once), then releases them all: what a dry run or a validate-only create checks.
 * Returns their identities in order; throws the first refusal, with nothing left taken.
 */
export function checkSources(additions: readonly Addition[], sources: Sources): CheckedSource[] {
  const taken = new Map<string, AcquiredVfio>();
  const acquired: AcquiredSource[] = [];
  const checked: CheckedSource[] = [];
  try {
    for (const { spec, at } of additions) {
      const source = sources.acquire(spec, at);
      acquired.push(source);
      const vfio = sources.acquireVfio(spec, at, taken);
      checked.push({
        startTime: source.startTime,
        eventfdId: source.eventfdId,
        vfioStartTime: vfio?.startTime ?? 0n,
      });
    }
    return checked;
  } finally {
    for (const s of acquired) sources.release(s);
    sources.releaseAllVfio(taken);
  }
}

/**
 * Arms the plan's additions, all or nothing. The kernel holds one ioeventfd per (device,
 * key): a kernel-served entry replaced by one with the same key must leave the kernel first,
 * so it is disarmed here (`handover`) and re-armed if the call fails; one that cannot be
 * re-armed (its source exited meanwhile) is passed to `lost`.
 */
export function armPlan(
  plan: ReconcilePlan,
  sources: Sources,
  arming: Arming,
  lost: (r: Registration) => void,
): ArmedAddition[] {
  const taken = new Map<string, AcquiredVfio>();
  const acquired: { source: AcquiredSource; vfio: AcquiredVfio | null }[] = [];
  const added: ArmedAddition[] = [];
  let handover: Registration[] = [];
  try {
    for (const { spec, at } of plan.toAdd) {
      const source = sources.acquire(spec, at);
      acquired.push({ source, vfio: null });
      acquired[acquired.length - 1].vfio = sources.acquireVfio(spec, at, taken);
    }
    const addingKeys = new Set(plan.toAdd.map((a) => keyOf(a.spec)));
    handover = plan.toRemove.filter((r) =>
      r.backend === "kernel" && r.nativeId !== null && addingKeys.has(keyOf(r.spec))
    );
    arming.disarm(handover);
    plan.toAdd.forEach((addition, i) => {
      const { source, vfio } = acquired[i];
      const armed = arming.arm(addition.spec, source, vfio, addition.at);
      added.push({ addition, armed, source: { ...source }, vfio });
      source.fd = -1; // owned by the data plane now
    });
    return added;
  } catch (err) {
    // Undo what this call armed, give back what it took, re-arm what it handed over.
    arming.disarmIds(added.map((a) => a.armed.id));
    for (const { source } of acquired) sources.release(source);
    for (const r of handover) if (!arming.rearm(r)) lost(r);
    throw err instanceof Rejection
      ? err
      : new Rejection("ENGINE_FAILURE", `reconcile failed: ${err}`);
  } finally {
    sources.releaseAllVfio(taken); // the data plane keeps its own duplicates
  }
}
