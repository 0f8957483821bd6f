// The registry's indexes of what it holds: by id, by key (the kernel's identity of an
// ioeventfd), by (owner, request id), and the counts per device and per owner that the limits
// read. Every registration enters and leaves all of them together (add / remove).
import { matches, type Registration, type WatchFilter } from "./registration.ts";
import { keyOf } from "./validation.ts";

export class RegistrationIndex {
  readonly #byId = new Map<string, Registration>();
  readonly #byKey = new Map<string, Registration>();
  readonly #byRequestId = new Map<string, Registration>();
  readonly #perDevice = new Map<string, number>();
  readonly #perOwner = new Map<string, number>();

  get size(): number {
    return this.#byId.size;
  }

  add(r: Registration): void {
    this.#byId.set(r.id, r);
    this.#byKey.set(keyOf(r.spec), r);
    if (r.requestId) this.#byRequestId.set(requestKey(r.owner, r.requestId), r);
    bump(this.#perDevice, r.spec.device, 1);
    bump(this.#perOwner, r.owner, 1);
  }

  remove(r: Registration): void {
    this.#byId.delete(r.id);
    const key = keyOf(r.spec);
    if (this.#byKey.get(key) === r) this.#byKey.delete(key);
    if (r.requestId) this.#byRequestId.delete(requestKey(r.owner, r.requestId));
    bump(this.#perDevice, r.spec.device, -1);
    bump(this.#perOwner, r.owner, -1);
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
    return this.#perDevice.get(address) ?? 0;
  }

  countOfOwner(owner: string): number {
    return this.#perOwner.get(owner) ?? 0;
  }

  values(): IterableIterator<Registration> {
    return this.#byId.values();
  }

  /** The registrations a filter selects, sorted by id (the order of listings and pages). */
  select(filter: WatchFilter = {}): Registration[] {
    return [...this.#byId.values()].filter((r) => matches(r, filter))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

function requestKey(owner: string, requestId: string): string {
  return `${owner}\0${requestId}`;
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n === 0) counts.delete(key);
  else counts.set(key, n);
}
