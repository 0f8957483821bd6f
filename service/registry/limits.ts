// What may be added on top of what the registry holds: one ioeventfd per key (the kernel's
// rule), one per request_id, and at most maxPerDevice per device and maxPerOwner per owner. Checked for a whole
// change at once (a reconcile adds and removes together), before anything is touched.
import { Rejection } from "../rejection/rejection.ts";
import type { Registration } from "./registration.ts";
import type { RegistrationIndex } from "./registration_index.ts";
import { keyOf, sameSources, type Spec } from "./validation.ts";

export interface RegistryLimits {
  maxPerDevice: number;
  maxPerOwner: number;
}

/** One registration a change would add; `at` prefixes the fields of a refusal. */
export interface Addition {
  spec: Spec;
  owner: string;
  at: string;
}

/**
 * A create repeating `requestId`: the registration that request made (the same key and
 * sources: the answer it had), or REQUEST_ID_REUSED for another spec; undefined if new.
 */
export function earlierRequest(
  index: RegistrationIndex,
  owner: string,
  requestId: string,
  spec: Spec,
): Registration | undefined {
  if (!requestId) return undefined;
  const earlier = index.byRequestId(owner, requestId);
  if (!earlier) return undefined;
  if (keyOf(earlier.spec) === keyOf(spec) && sameSources(earlier.spec, spec)) return earlier;
  throw Rejection.of([{
    field: "request_id",
    reason: "REQUEST_ID_REUSED",
    description: `request_id ${requestId} was used for ${earlier.id} with a different spec`,
  }], { existing_id: earlier.id });
}

/**
 * DUPLICATE unless every key is free, or held by a registration the change removes. The
 * holder's id is named only when `canSee` its owner (a caller limited to some owners is
 * never told another tenant's ids).
 */
export function checkKeysFree(
  index: RegistrationIndex,
  adds: readonly Addition[],
  freedKeys: ReadonlySet<string> = new Set(),
  canSee: (owner: string) => boolean = () => true,
): void {
  for (const a of adds) {
    const key = keyOf(a.spec);
    const existing = index.byKey(key);
    if (existing && !freedKeys.has(key)) {
      const visible = canSee(existing.owner);
      throw Rejection.of([{
        field: `${a.at}offset`,
        reason: "DUPLICATE",
        description: "an ioeventfd with the same (device, bar, offset, width, data) exists" +
          (visible ? `: ${existing.id}` : ""),
      }], visible ? { existing_id: existing.id } : {});
    }
  }
}

/** LIMIT_REACHED if adding `adds` and removing `removing` goes over a limit. */
export function checkLimits(
  index: RegistrationIndex,
  limits: RegistryLimits,
  adds: readonly Addition[],
  removing: readonly Registration[] = [],
): void {
  const device = new Map<string, number>();
  const owner = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, by: number) => m.set(k, (m.get(k) ?? 0) + by);
  for (const r of removing) {
    add(device, r.spec.device, -1);
    add(owner, r.owner, -1);
  }
  for (const a of adds) {
    add(device, a.spec.device, 1);
    if (index.countOnDevice(a.spec.device) + device.get(a.spec.device)! > limits.maxPerDevice) {
      throw Rejection.of([{
        field: `${a.at}device`,
        reason: "LIMIT_REACHED",
        description:
          `device ${a.spec.device} already has the maximum of ${limits.maxPerDevice} ioeventfds`,
      }], { limit: String(limits.maxPerDevice) });
    }
    add(owner, a.owner, 1);
    if (index.countOfOwner(a.owner) + owner.get(a.owner)! > limits.maxPerOwner) {
      throw Rejection.of([{
        field: "owner",
        reason: "LIMIT_REACHED",
        description: `owner ${a.owner} already has the maximum of ${limits.maxPerOwner} ioeventfds`,
      }], { limit: String(limits.maxPerOwner) });
    }
  }
}
