// The registry: the agent's single source of truth about ioeventfds. Every change goes
// validation → source acquisition → native engine → index, synchronously (two requests
// never interleave; a rejected request changes nothing), then the journal: changes made in
// the same turn of the event loop are committed in one fsync'd transaction (group commit),
// and only then are callers answered and watchers told. Handlers stay thin and call only
// this.
import { setImmediate } from "node:timers";
import { normalizePciAddress } from "../devices/pci_address.ts";
import type { PciDevice } from "../devices/types.ts";
import { Errno, NativeError } from "../native/errno.ts";
import {
  type AcquiredSource,
  acquireVfioDevice,
  type Backend,
  closeFd,
  kernelIoeventfd,
  type NativeEngine,
  processStartTime,
  type RegistrationStats,
} from "../native/engine.ts";
import { type Reason, RegistryError, type Violation } from "./errors.ts";
import type { Journal, JournalOp, JournalRecord } from "./journal.ts";
import {
  keyOf,
  parseU64,
  type RawSpec,
  sameSources,
  type Spec,
  validateOwner,
  validateRequestId,
  validateSpec,
  type ValidationContext,
} from "./validation.ts";

export type State = "ARMED" | "ORPHANED";
export type RemovalCause = "REQUEST" | "RECONCILE" | "SOURCE_EXIT";

export interface Registration {
  id: string;
  owner: string;
  requestId: string;
  spec: Spec;
  state: State;
  /** Who performs the write (see native/engine.ts Backend). */
  backend: Backend;
  createdAtMs: number;
  /** Identity of the source recorded when it was first acquired. */
  startTime: bigint;
  eventfdId: bigint;
  /** Start time of the `spec.vfioDevice` process when first taken (absent or 0n: none). */
  vfioStartTime?: bigint;
  /** The engine's id while armed; null when orphaned. */
  nativeId: bigint | null;
}

export type RegistryEvent =
  | { type: "ADDED"; registration: Registration; revision: bigint }
  | { type: "REMOVED"; registration: Registration; cause: RemovalCause; revision: bigint }
  | { type: "UPDATED"; registration: Registration; revision: bigint };

export interface RegistryLimits {
  maxPerDevice: number;
  maxPerOwner: number;
}

/**
 * The part of the native engine the registry drives (registerVfio: VFIO-backed devices).
 * The VFIO descriptor calls default to the plugin's (native/engine.ts); a data plane may
 * bring its own (tests stand in for a VFIO device that way).
 */
export type DataPlane =
  & Pick<
    NativeEngine,
    "acquireSource" | "releaseSource" | "register" | "unregister" | "registrationStats"
  >
  & Partial<Pick<NativeEngine, "registerVfio">>
  & {
    /** Takes VFIO device fd `fd` of process `pid` (pidfd_getfd): a local descriptor. */
    acquireVfioDevice?: (pid: number, fd: number) => number;
    /** Closes a descriptor from acquireVfioDevice. */
    releaseVfioDevice?: (fd: number) => void;
    /** The raw VFIO_DEVICE_IOEVENTFD (fd -1 de-assigns a key). */
    kernelIoeventfd?: typeof kernelIoeventfd;
  };

/** A VFIO device descriptor taken from the VMM, and who held it (its start time). */
interface AcquiredVfio {
  fd: number;
  startTime: bigint;
}

interface Armed {
  nativeId: bigint;
  backend: Backend;
}

export interface DeviceSource {
  get(address: string): PciDevice | undefined;
}

export interface WatchFilter {
  device?: string;
  owner?: string;
}

export interface ListFilter extends WatchFilter {
  labels?: Record<string, string>;
  pageSize?: number;
  pageToken?: string;
}

export interface ReconcileResult {
  added: Registration[];
  kept: Registration[];
  removed: Registration[];
}

export interface ReplayReport {
  rearmed: number;
  orphaned: string[];
  dropped: { id: string; reason: string }[];
  durationMs: number;
}

/** Monotonic counters for metrics; never reset while the agent runs. */
export class RegistryCounters {
  created = 0;
  readonly rejected = new Map<Reason, number>();
  readonly removed = new Map<RemovalCause, number>();
  readonly orphaned = { total: 0 };
  readonly replayDropped = new Map<string, number>();
}

type Listener = (event: RegistryEvent) => void;

/** Not in native/errno.ts: registerVfio's "the VFIO region cannot be mmapped". */
const EOPNOTSUPP = 95;

function sourceReason(err: unknown): Reason {
  if (!(err instanceof NativeError)) return "ENGINE_FAILURE";
  switch (err.errno) {
    case Errno.ESRCH:
    case Errno.EOWNERDEAD:
      return "SOURCE_PROCESS_GONE";
    case Errno.EBADF:
    case Errno.ESTALE:
      return "SOURCE_FD_INVALID";
    case Errno.EMEDIUMTYPE:
      return "SOURCE_NOT_EVENTFD";
    case Errno.EPERM:
    case Errno.EACCES:
      return "SOURCE_ACCESS_DENIED";
    default:
      return "ENGINE_FAILURE";
  }
}

/** A failed acquireVfioDevice: reason and what to tell the caller. */
function vfioFailure(err: unknown): { reason: Reason; message: string } {
  if (!(err instanceof NativeError)) return { reason: "ENGINE_FAILURE", message: String(err) };
  switch (err.errno) {
    case Errno.ESRCH:
      return { reason: "VFIO_DEVICE_INVALID", message: "the VFIO device's process does not exist" };
    case Errno.EBADF:
      return {
        reason: "VFIO_DEVICE_INVALID",
        message: "the VFIO device's process has no such open file descriptor",
      };
    case Errno.EMEDIUMTYPE:
      return {
        reason: "VFIO_DEVICE_INVALID",
        message: "the file descriptor is not a vfio-pci device",
      };
    case Errno.EPERM:
    case Errno.EACCES:
      return {
        reason: "SOURCE_ACCESS_DENIED",
        message: "the agent may not take file descriptors from that process",
      };
    case Errno.ENOSYS:
      return { reason: "ENGINE_FAILURE", message: "this native plugin has no VFIO support" };
    default:
      return { reason: "ENGINE_FAILURE", message: String(err) };
  }
}

const SOURCE_MESSAGES: Partial<Record<Reason, string>> = {
  SOURCE_PROCESS_GONE: "the source process does not exist (or its PID was reused)",
  SOURCE_FD_INVALID: "the source process has no such open file descriptor",
  SOURCE_NOT_EVENTFD: "the source file descriptor is not an eventfd",
  SOURCE_ACCESS_DENIED: "the agent may not take file descriptors from that process",
};

function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return "ioe-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function matches(r: Registration, f: WatchFilter): boolean {
  return (!f.device || r.spec.device === f.device) && (!f.owner || r.owner === f.owner);
}

function toRecord(r: Registration): JournalRecord {
  return {
    id: r.id,
    owner: r.owner,
    requestId: r.requestId,
    device: r.spec.device,
    bar: r.spec.bar,
    offset: r.spec.offset,
    width: r.spec.width,
    data: r.spec.data,
    labels: r.spec.labels,
    pid: r.spec.source.pid,
    fd: r.spec.source.fd,
    startTime: r.startTime,
    eventfdId: r.eventfdId,
    createdAtMs: r.createdAtMs,
    vfio: r.spec.vfioDevice
      ? { pid: r.spec.vfioDevice.pid, fd: r.spec.vfioDevice.fd, startTime: r.vfioStartTime ?? 0n }
      : null,
  };
}

export class Registry {
  readonly counters = new RegistryCounters();
  #byId = new Map<string, Registration>();
  #byKey = new Map<string, Registration>();
  #byRequestId = new Map<string, Registration>();
  #perDevice = new Map<string, number>();
  #perOwner = new Map<string, number>();
  #listeners = new Set<{ filter: WatchFilter; listener: Listener }>();
  #revision = 0n;
  #accepting = true;
  /** Changes made since the last commit, committed together on the next turn. */
  #batch: {
    ops: JournalOp[];
    events: RegistryEvent[];
    done: Promise<void>;
    settle: (err?: unknown) => void;
  } | null = null;
  readonly ctx: ValidationContext;

  /**
   * `onJournalFailure`: the journal could not commit (disk full, I/O error). The in-memory
   * state is then ahead of the disk; the agent must stop (crash-only) so that its successor
   * replays what was really committed. Callers of that batch get no answer.
   */
  constructor(
    private readonly engine: DataPlane,
    private readonly journal: Journal,
    private readonly devices: DeviceSource,
    readonly limits: RegistryLimits,
    widths: readonly number[],
    private readonly onJournalFailure: (err: unknown) => void = (err) => {
      throw err;
    },
  ) {
    this.ctx = { device: (a) => devices.get(a), widths };
  }

  get size(): number {
    return this.#byId.size;
  }

  get revision(): bigint {
    return this.#revision;
  }

  countOnDevice(address: string): number {
    return this.#perDevice.get(address) ?? 0;
  }

  /** After this, every mutation is refused with SHUTTING_DOWN (graceful stop). */
  stopAccepting(): void {
    this.#accepting = false;
  }

  // ---- reads ----

  get(id: string): Registration {
    const r = typeof id === "string" ? this.#byId.get(id) : undefined;
    if (!r) {
      throw new RegistryError("NOT_FOUND", `no ioeventfd ${id}`, [
        { field: "id", reason: "NOT_FOUND", description: `no ioeventfd with id ${id}` },
      ]);
    }
    return r;
  }

  /** What a delete selector names, or undefined (authorization looks before acting). */
  lookup(selector: { id?: string; key?: RawSpec }): Registration | undefined {
    try {
      return this.#find(selector);
    } catch {
      return undefined;
    }
  }

  all(filter: WatchFilter = {}): Registration[] {
    return [...this.#byId.values()].filter((r) => matches(r, filter))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  list(filter: ListFilter): { items: Registration[]; nextPageToken: string; total: number } {
    const device = filter.device ? normalizePciAddress(filter.device) ?? filter.device : undefined;
    const labels = Object.entries(filter.labels ?? {});
    const selected = this.all({ device, owner: filter.owner })
      .filter((r) => labels.every(([k, v]) => r.spec.labels[k] === v));
    const pageSize = Math.min(Math.max(filter.pageSize || 100, 1), 1000);
    let start = 0;
    if (filter.pageToken) {
      const after = decodePageToken(filter.pageToken);
      start = selected.findIndex((r) => r.id > after);
      if (start < 0) start = selected.length;
    }
    const items = selected.slice(start, start + pageSize);
    const more = start + pageSize < selected.length;
    return {
      items,
      nextPageToken: more ? encodePageToken(items[items.length - 1].id) : "",
      total: selected.length,
    };
  }

  stats(): Map<bigint, RegistrationStats> {
    return this.engine.registrationStats();
  }

  // ---- watch ----

  /** A consistent snapshot and every later change, with no gap and no overlap. */
  async watch(filter: WatchFilter, listener: Listener): Promise<{
    snapshot: Registration[];
    revision: bigint;
    unsubscribe: () => void;
  }> {
    // Snapshot at a commit boundary: what is pending now arrives as events, not twice.
    while (this.#batch) await this.#batch.done;
    const entry = { filter, listener };
    this.#listeners.add(entry);
    return {
      snapshot: this.all(filter),
      revision: this.#revision,
      unsubscribe: () => this.#listeners.delete(entry),
    };
  }

  /** Resolves when every change made so far is committed. */
  async settled(): Promise<void> {
    while (this.#batch) await this.#batch.done;
  }

  #emit(event: RegistryEvent): void {
    this.#pending().events.push(event);
  }

  #journal(...ops: JournalOp[]): void {
    this.#pending().ops.push(...ops);
  }

  #pending() {
    if (this.#batch === null) {
      let settle: (err?: unknown) => void = () => {};
      const done = new Promise<void>((resolve, reject) => {
        settle = (err) => (err === undefined ? resolve() : reject(err));
      });
      done.catch(() => {}); // observed by the callers that await it
      this.#batch = { ops: [], events: [], done, settle };
      setImmediate(() => this.#flush());
    }
    return this.#batch;
  }

  #flush(): void {
    const batch = this.#batch!;
    this.#batch = null;
    try {
      this.journal.apply(batch.ops);
    } catch (err) {
      batch.settle(new RegistryError("ENGINE_FAILURE", `journal write failed: ${err}`));
      this.onJournalFailure(err);
      return;
    }
    for (const event of batch.events) {
      for (const { filter, listener } of this.#listeners) {
        if (matches(event.registration, filter)) listener(event);
      }
    }
    batch.settle();
  }

  /** The commit of what this call changed: resolves once it is on disk. */
  #committed(): Promise<void> {
    return this.#batch?.done ?? Promise.resolve();
  }

  // ---- mutations ----

  /** Resolves once the ioeventfd is armed and journaled; rejects with a RegistryError. */
  create(req: { spec: RawSpec | null | undefined; owner: unknown; requestId?: unknown }): Promise<{
    registration: Registration;
    created: boolean;
  }> {
    return this.#counted(() => this.#create(req));
  }

  /** Resolves once disarmed (a barrier: no write after) and journaled. */
  delete(
    selector: { id?: string; key?: RawSpec },
    cause: RemovalCause = "REQUEST",
  ): Promise<Registration> {
    return this.#counted(() => {
      this.#requireAccepting();
      const r = this.#find(selector);
      this.#disarm([r]);
      this.#journal({ remove: r.id });
      this.#unindex(r, cause);
      return r;
    });
  }

  reconcile(
    req: { owner: unknown; desired: RawSpec[]; dryRun?: boolean },
  ): Promise<ReconcileResult> {
    return this.#counted(() => this.#reconcile(req));
  }

  /** A source process exited: its ioeventfds go, journaled and reported. */
  async sourceExited(pid: number, startTime: bigint): Promise<Registration[]> {
    // While stopping, leave the journal as it is: the successor's replay drops them.
    if (!this.#accepting) return [];
    // The source process, or the holder of the VFIO device (normally the same VMM).
    const gone = [...this.#byId.values()].filter((r) =>
      (r.spec.source.pid === pid && r.startTime === startTime) ||
      (r.spec.vfioDevice?.pid === pid && r.vfioStartTime === startTime)
    );
    if (gone.length === 0) return [];
    this.#disarm(gone);
    for (const r of gone) {
      this.#journal({ remove: r.id });
      this.#unindex(r, "SOURCE_EXIT");
    }
    await this.#committed();
    return gone;
  }

  /**
   * Devices vanished or stopped being managed: their ioeventfds stop writing and become
   * ORPHANED (reported, kept in the journal, removable with DeleteIoeventfd).
   */
  devicesChanged(addresses: string[]): Registration[] {
    const orphaned: Registration[] = [];
    for (const address of addresses) {
      const dev = this.devices.get(address);
      if (dev?.managed) continue;
      for (const r of this.#byId.values()) {
        if (r.spec.device === address && r.state === "ARMED") orphaned.push(r);
      }
    }
    this.#disarm(orphaned);
    for (const r of orphaned) {
      // Not journaled: on restart, replay finds the device gone and orphans it again.
      r.state = "ORPHANED";
      r.nativeId = null;
      this.counters.orphaned.total++;
      this.#emit({ type: "UPDATED", registration: r, revision: ++this.#revision });
    }
    return orphaned;
  }

  /** Start-up: re-arm every journaled ioeventfd through the same validation as the API. */
  replay(): ReplayReport {
    const started = performance.now();
    const report: ReplayReport = { rearmed: 0, orphaned: [], dropped: [], durationMs: 0 };
    const drop: string[] = [];
    for (const rec of this.journal.all()) {
      const raw: RawSpec = {
        device: rec.device,
        bar: rec.bar,
        offset: rec.offset,
        width: rec.width,
        data: rec.data,
        source: { pid: rec.pid, fd: rec.fd },
        labels: rec.labels,
        vfioDevice: rec.vfio ? { pid: rec.vfio.pid, fd: rec.vfio.fd } : null,
      };
      const v = validateSpec(raw, this.ctx, "journal.");
      const base = {
        id: rec.id,
        owner: rec.owner,
        requestId: rec.requestId,
        backend: "user-mmap" as const,
        createdAtMs: rec.createdAtMs,
        startTime: rec.startTime,
        eventfdId: rec.eventfdId,
        vfioStartTime: rec.vfio?.startTime ?? 0n,
      };
      if (!v.ok) {
        const reason = v.violations[0].reason;
        if (reason === "DEVICE_NOT_FOUND" || reason === "DEVICE_NOT_MANAGED") {
          const spec = { ...raw, device: rec.device, source: { pid: rec.pid, fd: rec.fd } } as Spec;
          this.#index({ ...base, spec, state: "ORPHANED", nativeId: null });
          report.orphaned.push(rec.id);
          continue;
        }
        report.dropped.push({ id: rec.id, reason });
        drop.push(rec.id);
        continue;
      }
      // The VMM's VFIO device first, through the same path as a create, and only from the
      // same process (its start time as journaled).
      let vfio: AcquiredVfio | null = null;
      if (rec.vfio) {
        try {
          vfio = this.#acquireVfio(v.value, "journal.vfio_device", new Map(), rec.vfio.startTime);
        } catch (err) {
          const reason = err instanceof RegistryError
            ? err.metadata.cause ?? err.reason
            : String(err);
          report.dropped.push({ id: rec.id, reason });
          drop.push(rec.id);
          continue;
        }
        // An agent killed without its clean stop leaves its kernel-served entries in the
        // kernel (they belong to the device, which the VMM still holds), still writing.
        // This key was ours (journaled): remove it, then re-arm it below — or, if the
        // eventfd is gone or replaced, leave nothing behind. Signals in between stay
        // counted in the eventfd and fire on re-arm.
        if (vfio) this.#forgetKernelEntry(v.value, vfio.fd);
      }
      let source: AcquiredSource;
      try {
        source = this.engine.acquireSource(rec.pid, rec.fd, {
          startTime: rec.startTime,
          eventfdId: rec.eventfdId,
        });
      } catch (err) {
        this.#releaseVfio(vfio);
        const reason = err instanceof NativeError && err.is("EOWNERDEAD")
          ? "PID_REUSED"
          : err instanceof NativeError && err.is("ESTALE")
          ? "FD_REPLACED"
          : sourceReason(err);
        report.dropped.push({ id: rec.id, reason });
        drop.push(rec.id);
        continue;
      }
      try {
        const { nativeId, backend } = this.#arm(v.value, source, vfio, "journal.");
        this.#index({ ...base, backend, spec: v.value, state: "ARMED", nativeId });
        report.rearmed++;
      } catch (err) {
        this.engine.releaseSource(source.fd);
        report.dropped.push({
          id: rec.id,
          reason: err instanceof RegistryError ? err.reason : String(err),
        });
        drop.push(rec.id);
      } finally {
        this.#releaseVfio(vfio);
      }
    }
    this.journal.apply(drop.map((id) => ({ remove: id })));
    for (const d of report.dropped) {
      this.counters.replayDropped.set(
        d.reason,
        (this.counters.replayDropped.get(d.reason) ?? 0) + 1,
      );
    }
    report.durationMs = performance.now() - started;
    return report;
  }

  // ---- internals ----

  /** Runs a mutation synchronously, then waits for its commit; counts rejections. */
  async #counted<T>(op: () => T): Promise<T> {
    let result: T;
    try {
      result = op();
    } catch (err) {
      if (err instanceof RegistryError) {
        this.counters.rejected.set(err.reason, (this.counters.rejected.get(err.reason) ?? 0) + 1);
      }
      throw err;
    }
    await this.#committed();
    return result;
  }

  #requireAccepting(): void {
    if (!this.#accepting) {
      throw new RegistryError(
        "SHUTTING_DOWN",
        "the agent is shutting down; retry on its successor",
      );
    }
  }

  #create(req: { spec: RawSpec | null | undefined; owner: unknown; requestId?: unknown }): {
    registration: Registration;
    created: boolean;
  } {
    this.#requireAccepting();
    const violations: Violation[] = [
      ...validateOwner(req.owner, "owner"),
      ...validateRequestId(req.requestId, "request_id"),
    ];
    const v = validateSpec(req.spec as RawSpec, this.ctx, "spec.");
    if (!v.ok) violations.push(...v.violations);
    if (violations.length > 0 || !v.ok) throw RegistryError.of(violations);
    const spec = v.value;
    const owner = req.owner as string;
    const requestId = (req.requestId as string | undefined) ?? "";

    if (requestId) {
      const earlier = this.#byRequestId.get(`${owner}\0${requestId}`);
      if (earlier) {
        const same = keyOf(earlier.spec) === keyOf(spec) && sameSources(earlier.spec, spec);
        if (same) return { registration: earlier, created: false };
        throw RegistryError.of([{
          field: "request_id",
          reason: "REQUEST_ID_REUSED",
          description: `request_id ${requestId} was used for ${earlier.id} with a different spec`,
        }], { existing_id: earlier.id });
      }
    }
    this.#checkFree(spec, "spec.", new Set());
    this.#checkLimits([{ spec, owner, at: "spec." }], new Set());

    const source = this.#acquire(spec, "spec.source");
    let vfio: AcquiredVfio | null;
    try {
      vfio = this.#acquireVfio(spec, "spec.vfio_device", new Map());
    } catch (err) {
      this.engine.releaseSource(source.fd);
      throw err;
    }
    let armed: Armed;
    try {
      armed = this.#arm(spec, source, vfio, "spec.");
    } catch (err) {
      this.engine.releaseSource(source.fd);
      throw err;
    } finally {
      this.#releaseVfio(vfio);
    }
    const r: Registration = {
      id: newId(),
      owner,
      requestId,
      spec,
      state: "ARMED",
      backend: armed.backend,
      createdAtMs: Date.now(),
      startTime: source.startTime,
      eventfdId: source.eventfdId,
      vfioStartTime: vfio?.startTime ?? 0n,
      nativeId: armed.nativeId,
    };
    this.#journal({ put: toRecord(r) });
    this.#index(r);
    this.counters.created++;
    this.#emit({ type: "ADDED", registration: r, revision: ++this.#revision });
    return { registration: r, created: true };
  }

  #reconcile(req: { owner: unknown; desired: RawSpec[]; dryRun?: boolean }): ReconcileResult {
    this.#requireAccepting();
    const violations = validateOwner(req.owner, "owner");
    if (violations.length > 0) throw RegistryError.of(violations);
    const owner = req.owner as string;
    const desired = Array.isArray(req.desired) ? req.desired : [];
    const specs: Spec[] = [];
    desired.forEach((raw, i) => {
      const v = validateSpec(raw, this.ctx, `desired[${i}].`);
      if (v.ok) specs.push(v.value);
      else violations.push(...v.violations);
    });
    if (violations.length > 0) throw RegistryError.of(violations);

    const current = this.all({ owner });
    const currentByKey = new Map(current.map((r) => [keyOf(r.spec), r]));
    const kept: Registration[] = [];
    const toAdd: { spec: Spec; at: string }[] = [];
    const seen = new Map<string, number>();
    specs.forEach((spec, i) => {
      const key = keyOf(spec);
      const at = `desired[${i}].`;
      if (seen.has(key)) {
        throw RegistryError.of([{
          field: `${at}offset`,
          reason: "DUPLICATE",
          description: `same key as desired[${seen.get(key)}]`,
        }]);
      }
      seen.set(key, i);
      const existing = currentByKey.get(key);
      if (existing && existing.state === "ARMED" && sameSources(existing.spec, spec)) {
        kept.push(existing);
      } else {
        toAdd.push({ spec, at });
      }
    });
    const keptIds = new Set(kept.map((r) => r.id));
    const toRemove = current.filter((r) => !keptIds.has(r.id));
    const removingKeys = new Set(toRemove.map((r) => keyOf(r.spec)));
    for (const { spec, at } of toAdd) this.#checkFree(spec, at, removingKeys);
    this.#checkLimits(toAdd.map((a) => ({ ...a, owner })), new Set(toRemove.map((r) => r.id)));

    // Take every source (and VFIO device) before changing anything: all or nothing. A
    // VFIO device named by several specs is taken once for the call.
    const acquired: AcquiredSource[] = [];
    const vfios: (AcquiredVfio | null)[] = [];
    const taken = new Map<string, AcquiredVfio>();
    const releaseVfios = () => {
      for (const v of taken.values()) this.#releaseVfio(v);
    };
    try {
      for (const { spec, at } of toAdd) {
        acquired.push(this.#acquire(spec, `${at}source`));
        vfios.push(this.#acquireVfio(spec, `${at}vfio_device`, taken));
      }
    } catch (err) {
      for (const s of acquired) this.engine.releaseSource(s.fd);
      releaseVfios();
      throw err;
    }
    if (req.dryRun) {
      for (const s of acquired) this.engine.releaseSource(s.fd);
      releaseVfios();
      return { added: [], kept, removed: toRemove };
    }
    // The kernel holds one ioeventfd per (device, key): a kernel-served entry replaced by
    // one with the same key (another source or VFIO device) must leave the kernel first.
    const addingKeys = new Set(toAdd.map((a) => keyOf(a.spec)));
    const handover = toRemove.filter((r) =>
      r.backend === "kernel" && r.nativeId !== null && addingKeys.has(keyOf(r.spec))
    );
    this.#disarm(handover);
    const added: Registration[] = [];
    try {
      toAdd.forEach(({ spec, at }, i) => {
        const source = acquired[i];
        const { nativeId, backend } = this.#arm(spec, source, vfios[i], at);
        acquired[i] = { ...source, fd: -1 }; // owned by the engine now
        added.push({
          id: newId(),
          owner,
          requestId: "",
          spec,
          state: "ARMED",
          backend,
          createdAtMs: Date.now(),
          startTime: source.startTime,
          eventfdId: source.eventfdId,
          vfioStartTime: vfios[i]?.startTime ?? 0n,
          nativeId,
        });
      });
    } catch (err) {
      // All or nothing: disarm what this call armed, re-arm what it handed over; nothing
      // else was touched yet.
      for (const r of added) this.engine.unregister(r.nativeId!);
      for (const s of acquired) if (s.fd >= 0) this.engine.releaseSource(s.fd);
      const lost = handover.filter((r) => !this.#rearm(r));
      // Gone meanwhile (its source or VMM exited): removed as it would have been.
      for (const r of lost) {
        this.#journal({ remove: r.id });
        this.#unindex(r, "SOURCE_EXIT");
      }
      throw err instanceof RegistryError
        ? err
        : new RegistryError("ENGINE_FAILURE", `reconcile failed: ${err}`);
    } finally {
      releaseVfios(); // the engine keeps its own duplicates of what it armed
    }
    this.#journal(
      ...added.map((r) => ({ put: toRecord(r) })),
      ...toRemove.map((r) => ({ remove: r.id })),
    );
    // Labels of kept entries follow the desired state.
    const relabel = kept.filter((r) => {
      const want = specs[seen.get(keyOf(r.spec))!].labels;
      if (JSON.stringify(want) === JSON.stringify(r.spec.labels)) return false;
      r.spec = { ...r.spec, labels: want };
      return true;
    });
    this.#journal(...relabel.map((r) => ({ put: toRecord(r) })));
    this.#disarm(toRemove);
    for (const r of toRemove) this.#unindex(r, "RECONCILE");
    for (const r of added) {
      this.#index(r);
      this.counters.created++;
      this.#emit({ type: "ADDED", registration: r, revision: ++this.#revision });
    }
    for (const r of relabel) {
      this.#emit({ type: "UPDATED", registration: r, revision: ++this.#revision });
    }
    return { added, kept, removed: toRemove };
  }

  #find(selector: { id?: string; key?: RawSpec }): Registration {
    if (selector.id) return this.get(selector.id);
    const k = selector.key;
    if (!k) {
      throw RegistryError.of([{
        field: "selector",
        reason: "INVALID_ARGUMENT",
        description: "give an id or a key",
      }]);
    }
    const device = typeof k.device === "string" ? normalizePciAddress(k.device) : null;
    const offset = parseU64(k.offset ?? 0);
    const data = parseU64(k.data ?? 0);
    const bar = Number(k.bar ?? 0);
    const width = Number(k.width ?? 0);
    if (device === null || offset === null || data === null) {
      throw RegistryError.of([{
        field: "key",
        reason: "INVALID_ARGUMENT",
        description: "key needs a PCI address and unsigned offset and data",
      }]);
    }
    const r = this.#byKey.get(keyOf({ device, bar, offset, width, data }));
    if (!r) {
      throw RegistryError.of([{
        field: "key",
        reason: "NOT_FOUND",
        description: `no ioeventfd with key ${keyOf({ device, bar, offset, width, data })}`,
      }]);
    }
    return r;
  }

  #checkFree(spec: Spec, at: string, freedKeys: Set<string>): void {
    const existing = this.#byKey.get(keyOf(spec));
    if (existing && !freedKeys.has(keyOf(spec))) {
      throw RegistryError.of([{
        field: `${at}offset`,
        reason: "DUPLICATE",
        description:
          `an ioeventfd with the same (device, bar, offset, width, data) exists: ${existing.id}`,
      }], { existing_id: existing.id });
    }
  }

  #checkLimits(adds: { spec: Spec; owner: string; at: string }[], removing: Set<string>): void {
    const device = new Map<string, number>();
    const owner = new Map<string, number>();
    for (const id of removing) {
      const r = this.#byId.get(id)!;
      device.set(r.spec.device, (device.get(r.spec.device) ?? 0) - 1);
      owner.set(r.owner, (owner.get(r.owner) ?? 0) - 1);
    }
    for (const a of adds) {
      const d = (device.get(a.spec.device) ?? 0) + 1;
      device.set(a.spec.device, d);
      if ((this.#perDevice.get(a.spec.device) ?? 0) + d > this.limits.maxPerDevice) {
        throw RegistryError.of([{
          field: `${a.at}device`,
          reason: "LIMIT_REACHED",
          description:
            `device ${a.spec.device} already has the maximum of ${this.limits.maxPerDevice} ioeventfds`,
        }], { limit: String(this.limits.maxPerDevice) });
      }
      const o = (owner.get(a.owner) ?? 0) + 1;
      owner.set(a.owner, o);
      if ((this.#perOwner.get(a.owner) ?? 0) + o > this.limits.maxPerOwner) {
        throw RegistryError.of([{
          field: "owner",
          reason: "LIMIT_REACHED",
          description:
            `owner ${a.owner} already has the maximum of ${this.limits.maxPerOwner} ioeventfds`,
        }], { limit: String(this.limits.maxPerOwner) });
      }
    }
  }

  #acquire(spec: Spec, field: string): AcquiredSource {
    try {
      return this.engine.acquireSource(spec.source.pid, spec.source.fd);
    } catch (err) {
      const reason = sourceReason(err);
      throw RegistryError.of([{
        field,
        reason,
        description: `${
          SOURCE_MESSAGES[reason] ?? String(err)
        } (pid ${spec.source.pid}, fd ${spec.source.fd})`,
      }]);
    }
  }

  /**
   * Takes the VMM's VFIO device descriptor named by `spec.vfioDevice` (null when the spec has
   * none), identified by the process start time read around the take, so a PID reused in
   * between is never mistaken for the VMM. `expectStart` (replay): only from that process.
   *
   * No descriptor is kept per registration, nor shared between them: the caller closes it
   * (#releaseVfio) as soon as registerVfio returns, because the engine keeps the duplicate
   * it needs itself — a kernel-served entry keeps one (to remove its key at unregister),
   * and a VFIO BAR mapping keeps one, shared by every registration on the same open device
   * file (the engine compares files with kcmp, so separately taken duplicates of the VMM's
   * descriptor share one mapping). Taking it again for each registration also follows a
   * VMM that re-opened its device at the same fd number. `taken` shares one take between
   * the specs of one call (a reconcile), by (pid, fd).
   */
  #acquireVfio(
    spec: Spec,
    field: string,
    taken: Map<string, AcquiredVfio>,
    expectStart?: bigint,
  ): AcquiredVfio | null {
    const v = spec.vfioDevice;
    if (!v) return null;
    const at = `${v.pid}/${v.fd}`;
    const earlier = taken.get(at);
    if (earlier) return earlier;
    const refuse = (reason: Reason, message: string, cause?: string): never => {
      throw RegistryError.of(
        [{ field, reason, description: `${message} (pid ${v.pid}, fd ${v.fd})` }],
        cause ? { cause } : {},
      );
    };
    const before = this.#startTime(v.pid);
    if (before === null) refuse("VFIO_DEVICE_INVALID", "the VFIO device's process does not exist");
    if (expectStart !== undefined && before !== expectStart) {
      refuse(
        "VFIO_DEVICE_INVALID",
        "the VFIO device's process is gone and its PID now names another process",
        "PID_REUSED",
      );
    }
    let fd = -1;
    try {
      fd = (this.engine.acquireVfioDevice ?? acquireVfioDevice)(v.pid, v.fd);
    } catch (err) {
      const { reason, message } = vfioFailure(err);
      refuse(reason, message);
    }
    const acquired = { fd, startTime: before! };
    if (this.#startTime(v.pid) !== before) {
      this.#releaseVfio(acquired);
      refuse("VFIO_DEVICE_INVALID", "the VFIO device's process exited while it was being taken");
    }
    taken.set(at, acquired);
    return acquired;
  }

  #startTime(pid: number): bigint | null {
    try {
      return processStartTime(pid);
    } catch (err) {
      throw new RegistryError(
        "ENGINE_FAILURE",
        `cannot read the start time of process ${pid}: ${err}`,
      );
    }
  }

  #releaseVfio(vfio: AcquiredVfio | null): void {
    if (vfio === null || vfio.fd < 0) return;
    try {
      (this.engine.releaseVfioDevice ?? closeFd)(vfio.fd);
    } catch { /* closing a descriptor we own: nothing to recover */ }
    vfio.fd = -1;
  }

  /** De-assigns the kernel's ioeventfd with the key of `spec`, if it has one (replay). */
  #forgetKernelEntry(spec: Spec, vfioFd: number): void {
    try {
      (this.engine.kernelIoeventfd ?? kernelIoeventfd)(
        vfioFd,
        spec.bar,
        spec.offset,
        spec.width,
        spec.data,
        -1,
      );
    } catch { /* ENODEV: the kernel has no such entry, the usual case */ }
  }

  /**
   * Hands the acquired fd to the engine; on failure the caller still owns the fd (and
   * always the VFIO descriptor). A spec with a VFIO device (`vfio`, taken from the VMM)
   * goes to the kernel first
   * ("auto": the engine falls back to the VFIO BAR mmap where the kernel refuses); any
   * other to its sysfs resourceN. `at` prefixes the fields of a refusal.
   */
  #arm(spec: Spec, source: AcquiredSource, vfio: AcquiredVfio | null, at: string): Armed {
    const vfioFd = vfio?.fd;
    const bar = this.devices.get(spec.device)?.bars[spec.bar];
    const viaVfio = vfioFd !== undefined && this.engine.registerVfio !== undefined;
    if (vfio && !viaVfio) {
      throw new RegistryError("ENGINE_FAILURE", "this data plane cannot serve VFIO devices");
    }
    if (!viaVfio && !bar?.resourcePath) {
      throw new RegistryError("ENGINE_FAILURE", "BAR has no resource file");
    }
    const refuse = (field: string, reason: Reason, description: string) =>
      RegistryError.of([{ field: `${at}${field}`, reason, description }]);
    try {
      if (viaVfio) {
        const r = this.engine.registerVfio!({
          vfioFd: vfioFd!,
          bar: spec.bar,
          offset: spec.offset,
          width: spec.width,
          data: spec.data,
          fd: source.fd,
          pid: spec.source.pid,
          pidStart: source.startTime,
          mode: "auto",
        });
        return { nativeId: r.id, backend: r.backend };
      }
      const nativeId = this.engine.register({
        barPath: bar!.resourcePath!,
        offset: spec.offset,
        width: spec.width,
        data: spec.data,
        fd: source.fd,
        pid: spec.source.pid,
        pidStart: source.startTime,
      });
      return { nativeId, backend: "user-mmap" };
    } catch (err) {
      if (!(err instanceof NativeError)) {
        throw new RegistryError("ENGINE_FAILURE", `the native engine refused the write: ${err}`);
      }
      if (err.is("ESRCH")) {
        throw refuse(
          "source",
          "SOURCE_PROCESS_GONE",
          "the source process exited while the ioeventfd was being armed",
        );
      }
      if (viaVfio && err.is("EEXIST")) {
        throw refuse(
          "offset",
          "DUPLICATE",
          "the kernel already has an ioeventfd with this (bar, offset, width, data) on this " +
            "device, set by another holder of the device",
        );
      }
      if (viaVfio && err.is("ERANGE")) {
        throw refuse("offset", "OUT_OF_BAR", "the write is beyond the device's VFIO BAR region");
      }
      if (viaVfio && err.errno === EOPNOTSUPP) {
        throw refuse("bar", "BAR_NOT_MAPPABLE", "the VFIO BAR region cannot be mapped");
      }
      if (vfio && err.is("ENODEV")) {
        throw refuse("vfio_device", "VFIO_DEVICE_INVALID", "not a vfio-pci device");
      }
      throw new RegistryError("ENGINE_FAILURE", `the native engine refused the write: ${err}`);
    }
  }

  /** Arms `r` again from its recorded identity (a reconcile's rollback); false if gone. */
  #rearm(r: Registration): boolean {
    let source: AcquiredSource;
    try {
      source = this.engine.acquireSource(r.spec.source.pid, r.spec.source.fd, {
        startTime: r.startTime,
        eventfdId: r.eventfdId,
      });
    } catch {
      return false;
    }
    let vfio: AcquiredVfio | null = null;
    try {
      vfio = this.#acquireVfio(r.spec, "vfio_device", new Map(), r.vfioStartTime);
      const armed = this.#arm(r.spec, source, vfio, "");
      r.nativeId = armed.nativeId;
      r.backend = armed.backend;
      return true;
    } catch {
      this.engine.releaseSource(source.fd);
      return false;
    } finally {
      this.#releaseVfio(vfio);
    }
  }

  #disarm(rs: Registration[]): void {
    for (const r of rs) {
      if (r.nativeId === null) continue;
      try {
        this.engine.unregister(r.nativeId);
      } catch (err) {
        if (!(err instanceof NativeError && err.is("ENOENT"))) throw err;
      }
      r.nativeId = null;
    }
  }

  #index(r: Registration): void {
    this.#byId.set(r.id, r);
    this.#byKey.set(keyOf(r.spec), r);
    if (r.requestId) this.#byRequestId.set(`${r.owner}\0${r.requestId}`, r);
    this.#perDevice.set(r.spec.device, (this.#perDevice.get(r.spec.device) ?? 0) + 1);
    this.#perOwner.set(r.owner, (this.#perOwner.get(r.owner) ?? 0) + 1);
  }

  #unindex(r: Registration, cause: RemovalCause): void {
    this.#byId.delete(r.id);
    if (this.#byKey.get(keyOf(r.spec)) === r) this.#byKey.delete(keyOf(r.spec));
    if (r.requestId) this.#byRequestId.delete(`${r.owner}\0${r.requestId}`);
    this.#perDevice.set(r.spec.device, (this.#perDevice.get(r.spec.device) ?? 1) - 1);
    this.#perOwner.set(r.owner, (this.#perOwner.get(r.owner) ?? 1) - 1);
    this.counters.removed.set(cause, (this.counters.removed.get(cause) ?? 0) + 1);
    this.#emit({ type: "REMOVED", registration: r, cause, revision: ++this.#revision });
  }
}

function encodePageToken(lastId: string): string {
  return btoa(`v1:${lastId}`);
}

function decodePageToken(token: string): string {
  let text = "";
  try {
    text = atob(token);
  } catch { /* reported below */ }
  if (!text.startsWith("v1:")) {
    throw RegistryError.of([{
      field: "page_token",
      reason: "INVALID_PAGE_TOKEN",
      description: "page_token is not one this agent issued",
    }]);
  }
  return text.slice(3);
}
