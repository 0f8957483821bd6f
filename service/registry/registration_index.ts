// The registry's indexes of what it holds: by id, by key (the kernel's identity of an
// ioeventfd), by (owner, request id), and by device and by owner (whose sizes the limits read,
// and which a filtered listing starts from), plus the id order of listings, kept until the
// next change. Every registration enters and leaves all of them together (add / remove).
import { matches, type Registration, type WatchFilter } from "./registration.ts";
import { keyOf } from "./validation.ts";

export class RegistrationIndex {
  readonly #byId = new Map<string, Registration>();
  readonly #byKey = new Map<string, Registration>();
  readonly #byRequestId = new Map<string, Registration>();
  readonly #byDevice = new Map<string, Set<Registration>>();
  readonly #byOwner = new Map<string, Set<Registration>>();
  /** Every registration in id order, until the next add or remove. */
  #sorted: Registration[] | null = null;

  get size(): number {
    return this.#byId.size;
  }

  add(r: Registration): void {
    this.#byId.set(r.id, r);
    this.#byKey.set(keyOf(r.spec), r);
    if (r.requestId) this.#byRequestId.set(requestKey(r.owner, r.requestId), r);
    enter(this.#byDevice, r.spec.device, r);
    enter(this.#byOwner, r.owner, r);
    this.#sorted = null;
  }

  remove(r: Registration): void {
    this.#byId.delete(r.id);
    const key = keyOf(r.spec);
    if (this.#byKey.get(key) === r) this.#byKey.delete(key);
    if (r.requestId) this.#byRequestId.delete(requestKey(r.owner, r.requestId));
    leave(this.#byDevice, r.spec.device, r);
    leave(this.#byOwner, r.owner, r);
    this.#sorted = null;
  }

  byId(id: string): Registration | undefined {
    return this.#byId.get(id);
  }

  /** The registration holding a key (keyOf), if any. */
  byKey(key: string): Registration | undefined {
    return this.#byKey.get(key);
  }

  byRequestId(owner: string, requestId: string): Registration | undefined {
    return this.#byRequestId.get(requestKey(owner, requestId));
  }

  countOnDevice(address: string): number {
    return this.#byDevice.get(address)?.size ?? 0;
  }

  countOfOwner(owner: string): number {
    return this.#byOwner.get(owner)?.size ?? 0;
  }

  values(): IterableIterator<Registration> {
    return this.#byId.values();
  }

  /** The registrations a filter selects, sorted by id (the order of listings and pages). */
  select(filter: WatchFilter = {}): Registration[] {
    // From the smallest index that applies: one owner's or one device's, not every one.
    const from = filter.owner
      ? this.#byOwner.get(filter.owner)
      : filter.device
      ? this.#byDevice.get(filter.device)
      : null;
    if (from === null) return [...(this.#sorted ??= [...this.#byId.values()].sort(byId))];
    if (from === undefined) return [];
    return [...from].filter((r) => matches(r, filter)).sort(byId);
  }
}

function requestKey(owner: string, requestId: string): string {
  return `${owner}\0${requestId}`;
}

function byId(a: Registration, b: Registration): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function enter(index: Map<string, Set<Registration>>, key: string, r: Registration): void {
  let set = index.get(key);
  if (set === undefined) index.set(key, set = new Set());
  set.add(r);
}

function leave(index: Map<string, Set<Registration>>, key: string, r: Registration): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(r);
  if (set.size === 0) index.delete(key);
}
