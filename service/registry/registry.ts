// The registry: the agent's single source of truth about ioeventfds, and the one way to change
// them. Every change runs validate → policy (duplicates, limits) → arm (through the data-plane
// port) → index, synchronously (two requests never interleave; a rejected request changes
// nothing), then the journal: changes of one event-loop turn are committed together
// (group_commit.ts), and only then are callers answered and watchers told. Handlers, replay
// and the CLI's local checks share the same rules (validation.ts, limits.ts).
import { normalizePciAddress } from "../devices/pci_address.ts";
import { Rejection } from "../rejection/rejection.ts";
import { Arming } from "./arming.ts";
import { CreateBatch, type CreateResult } from "./create_batch.ts";
import type { Caller } from "./caller.ts";
import {
  handedBack,
  type HandoverPort,
  NO_HANDOVER,
  type ReceivedHandle,
} from "./handover_port.ts";
import type { DataPlane, RegistrationStats } from "./data_plane.ts";
import type { DeviceSource } from "./device_source.ts";
import {
  GroupCommit,
  type JournalHealth,
  type JournalObserver,
  type Listener,
} from "./group_commit.ts";
import type { Journal } from "./journal.ts";
import { type RegistryLimits } from "./limits.ts";
import { type Page, paginate } from "./pagination.ts";
import { type ReconcileResult } from "./reconcile.ts";
import {
  matches,
  type Registration,
  type RegistryEvent,
  type RemovalCause,
  toRecord,
  type WatchFilter,
} from "./registration.ts";
import { RegistrationIndex } from "./registration_index.ts";
import { findBySelector, type Selector } from "./selector.ts";
import { increment, RegistryCounters } from "./counters.ts";
import { replayJournal, type ReplayReport } from "./replay.ts";
import { Sources } from "./sources.ts";
import { WatchHistory } from "./watch_history.ts";
import {
  type CreateRequest,
  rearmHandedBack,
  reconcileOwner,
  type RegistryChanges,
} from "./mutations.ts";
import { orphanCause, type RawSpec, type ValidationContext } from "./validation.ts";

export type { DataPlane } from "./data_plane.ts";
export type { DeviceSource } from "./device_source.ts";
export type { RegistryLimits } from "./limits.ts";
export type {
  Registration,
  RegistryEvent,
  RemovalCause,
  State,
  WatchFilter,
} from "./registration.ts";
export type { ReplayReport } from "./replay.ts";
export type { JournalHealth, JournalObserver } from "./group_commit.ts";
export { RegistryCounters } from "./counters.ts";

export type { CreateRequest } from "./mutations.ts";

export interface ListFilter extends WatchFilter {
  labels?: Record<string, string>;
  pageSize?: number;
  pageToken?: string;
}

export type { ReconcileResult } from "./reconcile.ts";

export class Registry {
  readonly counters = new RegistryCounters();
  readonly ctx: ValidationContext;
  readonly #index = new RegistrationIndex();
  readonly #commit: GroupCommit;
  readonly #sources: Sources;
  readonly #arming: Arming;
  readonly #plane: DataPlane;
  readonly #history = new WatchHistory();
  readonly #changes: RegistryChanges;
  readonly #creates: CreateBatch;
  #revision = 0n;
  #accepting = true;

  /**
   * `onJournal`: told when the journal stops taking commits (disk full, read-only) and when
   * it takes them again (see group_commit.ts). The agent keeps serving meanwhile: creates
   * are refused with JOURNAL_UNAVAILABLE, reads and armed ioeventfds are unaffected.
   */
  constructor(
    plane: DataPlane,
    private readonly journal: Journal,
    private readonly devices: DeviceSource,
    readonly limits: RegistryLimits,
    widths: readonly number[],
    onJournal: JournalObserver = () => {},
    handover: HandoverPort = NO_HANDOVER,
  ) {
    this.ctx = { device: (a) => devices.get(a), widths };
    this.#plane = plane;
    this.#commit = new GroupCommit(journal, () => this.#revision, onJournal);
    // Counted once committed: an addition undone by a failed commit was never created.
    this.#commit.subscribe({}, (e) => {
      if (e.type === "ADDED") this.counters.created++;
    });
    this.#sources = new Sources(plane, handover);
    this.#arming = new Arming(plane, devices, this.#sources);
    this.#changes = {
      index: this.#index,
      ctx: this.ctx,
      limits,
      sources: this.#sources,
      arming: this.#arming,
      all: (filter) => this.all(filter),
      add: (rs) => this.#add(rs),
      remove: (rs, cause) => this.#remove(rs, cause),
      relabel: (r, labels) => this.#relabel(r, labels),
      updated: (r) =>
        this.#commit.emit({
          type: "UPDATED",
          registration: r,
          final: null,
          revision: ++this.#revision,
        }),
    };
    this.#commit.subscribe({}, (event) => this.#history.record(event));
    this.#creates = new CreateBatch({
      changes: this.#changes,
      committed: () => this.#commit.committed(),
      rejected: (err) => {
        if (err instanceof Rejection) increment(this.counters.rejected, err.reason);
      },
      consumeHandles: (handles) => {
        for (const h of handles) this.#sources.handover.consume(h);
      },
    });
  }

  /** Counters by nativeId: of every armed registration, or of just `of` (a Get, a page). */
  stats(of?: readonly Registration[]): Map<bigint, RegistrationStats> {
    if (of === undefined) return this.#plane.registrationStats();
    return this.#plane.registrationStats(
      of.flatMap((r) => r.nativeId === null ? [] : [r.nativeId]),
    );
  }

  get size(): number {
    return this.#index.size;
  }

  get revision(): bigint {
    return this.#revision;
  }

  /** Whether the journal takes commits (false: creates fail with JOURNAL_UNAVAILABLE). */
  get journalHealth(): JournalHealth {
    return this.#commit.health;
  }

  countOnDevice(address: string): number {
    return this.#index.countOnDevice(address);
  }

  /** After this, every mutation is refused with SHUTTING_DOWN (graceful stop). */
  stopAccepting(): void {
    this.#accepting = false;
  }

  /** A hand-over to a successor did not happen (service/upgrade/): mutations again. */
  resumeAccepting(): void {
    this.#accepting = true;
  }

  // ---- reads ----

  get(id: string): Registration {
    return findBySelector(this.#index, { id: typeof id === "string" ? id : "" });
  }

  /** What a delete selector names, or undefined (authorization looks before acting). */
  lookup(selector: Selector): Registration | undefined {
    try {
      return findBySelector(this.#index, selector);
    } catch {
      return undefined;
    }
  }

  all(filter: WatchFilter = {}): Registration[] {
    return this.#index.select(filter);
  }

  list(filter: ListFilter): Page<Registration> {
    const device = filter.device ? normalizePciAddress(filter.device) ?? filter.device : undefined;
    const labels = Object.entries(filter.labels ?? {});
    const selected = this.#index.select({ device, owner: filter.owner })
      .filter((r) => labels.every(([k, v]) => r.spec.labels[k] === v));
    return paginate(selected, filter.pageSize, filter.pageToken);
  }

  // ---- watch ----

  /**
   * A consistent start and every later change, with no gap and no overlap. The start is a
   * snapshot, or, when `sinceRevision` is given and every change after it is still held,
   * those changes (`missed`, snapshot null).
   */
  async watch(filter: WatchFilter, listener: Listener, sinceRevision?: bigint): Promise<{
    snapshot: Registration[] | null;
    missed: RegistryEvent[];
    revision: bigint;
    unsubscribe: () => void;
  }> {
    // At a commit boundary: what is pending now arrives as events, not twice.
    await this.#commit.settled();
    const unsubscribe = this.#commit.subscribe(filter, listener);
    const missed = sinceRevision === undefined
      ? null
      : this.#history.since(sinceRevision, this.#revision);
    return missed === null
      ? { snapshot: this.all(filter), missed: [], revision: this.#revision, unsubscribe }
      : {
        snapshot: null,
        missed: missed.filter((e) => matches(e.registration, filter)),
        revision: this.#revision,
        unsubscribe,
      };
  }

  /** Resolves when every change made so far is committed. */
  settled(): Promise<void> {
    return this.#commit.settled();
  }

  /**
   * The last commit before the journal closes: what is pending, and what failed commits
   * kept (a last try); no retry after it.
   */
  async closeJournal(): Promise<void> {
    this.#creates.flush();
    await this.#commit.settled();
    this.#commit.flush();
    this.#commit.close();
  }

  // ---- mutations ----

  /**
   * Resolves once the ioeventfd is armed and journaled; rejects with a Rejection. With
   * `validateOnly`, every rule up to arming is checked (the sources are taken and given
   * back) and the would-be registration (id "") is returned; nothing changes.
   */
  create(req: CreateRequest): Promise<CreateResult> {
    try {
      this.#requireAccepting(); // accepted now is answered, even if the stop comes first
    } catch (err) {
      increment(this.counters.rejected, (err as Rejection).reason);
      return Promise.reject(err);
    }
    return this.#creates.submit(req);
  }

  /** Resolves once disarmed (a barrier: no write after) and journaled. */
  delete(
    selector: Selector,
    cause: RemovalCause = "REQUEST",
  ): Promise<Registration> {
    return this.#counted(() => {
      this.#requireAccepting();
      const r = findBySelector(this.#index, selector);
      this.#remove([r], cause);
      return r;
    });
  }

  reconcile(
    req: { owner: unknown; desired: RawSpec[]; dryRun?: boolean; caller?: Caller },
  ): Promise<ReconcileResult> {
    return this.#counted(() => this.#reconcile(req));
  }

  /** A source process exited: its ioeventfds go, journaled and reported. */
  async sourceExited(pid: number, startTime: bigint): Promise<Registration[]> {
    // While stopping, leave the journal as it is: the successor's replay drops them.
    if (!this.#accepting) return [];
    // The source process, or the holder of the VFIO device (normally the same VMM).
    const gone = [...this.#index.values()].filter((r) =>
      (r.spec.source.pid === pid && r.startTime === startTime) ||
      (r.spec.vfioDevice?.pid === pid && r.vfioStartTime === startTime)
    );
    if (gone.length === 0) return [];
    this.#remove(gone, "SOURCE_EXIT");
    try {
      await this.#commit.committed();
    } catch (err) {
      // Removed all the same (disarmed); journaled by the next commit that succeeds.
      if (!(err instanceof Rejection && err.reason === "JOURNAL_UNAVAILABLE")) throw err;
    }
    return gone;
  }

  /**
   * Descriptors were handed over (the intake's records since the last look): every
   * NEEDS_SOURCE registration whose eventfd is among them — the same owner, the same sender
   * (pid and start time) and the same eventfd (the kernel's id) — is armed again (UPDATED).
   * A VMM that reconnects after an agent restart re-arms all of its ioeventfds by handing
   * its eventfds over once more, in one message per 8 descriptors.
   */
  handoverReceived(records: readonly ReceivedHandle[]): Registration[] {
    if (!this.#accepting || records.length === 0) return [];
    const waiting = [...this.#index.values()].filter((r) => r.state === "NEEDS_SOURCE");
    const rearmed = rearmHandedBack(this.#changes, handedBack(waiting, records));
    this.counters.rearmedByHandover += rearmed.length;
    return rearmed;
  }

  /** NEEDS_SOURCE registrations whose sender exited: removed (SOURCE_EXIT). */
  async needsSourceGone(): Promise<Registration[]> {
    if (!this.#accepting) return [];
    const gone = [...this.#index.values()].filter((r) =>
      r.state === "NEEDS_SOURCE" && this.#sources.processStart(r.spec.source.pid) !== r.startTime
    );
    if (gone.length === 0) return [];
    this.#remove(gone, "SOURCE_EXIT");
    try {
      await this.#commit.committed();
    } catch (err) {
      if (!(err instanceof Rejection && err.reason === "JOURNAL_UNAVAILABLE")) throw err;
    }
    return gone;
  }

  /**
   * Devices vanished, stopped being managed or changed (BARs, MSI-X layout): every armed
   * ioeventfd on them is judged again against the device as it now is, and one that no longer
   * passes stops writing (disarmed before its next write) and becomes ORPHANED, with the rule
   * it fails as its cause (reported, kept in the journal, removable with DeleteIoeventfd).
   */
  devicesChanged(addresses: string[]): Registration[] {
    const orphaned: Registration[] = [];
    for (const address of addresses) {
      for (const r of this.#index.values()) {
        if (r.spec.device !== address || r.state !== "ARMED") continue;
        const cause = orphanCause(r.spec, this.ctx);
        if (cause !== null) {
          r.orphanCause = cause;
          orphaned.push(r);
        }
      }
    }
    const finals = this.#arming.disarm(orphaned);
    for (const r of orphaned) {
      // Not journaled: on restart, replay judges the device again and orphans it again.
      r.state = "ORPHANED";
      this.counters.orphaned.total++;
      this.#commit.emit({
        type: "UPDATED",
        registration: r,
        final: finals.get(r.id) ?? null,
        revision: ++this.#revision,
      });
    }
    return orphaned;
  }

  /**
   * Start-up: re-arm every journaled ioeventfd through the same validation as the API, and
   * take up the revision where the journal left it. Dropped entries leave the journal now,
   * or, when it cannot be written (a full disk), with the first commit that succeeds: the
   * report's `journalError` says so, and the agent starts all the same.
   */
  replay(): ReplayReport & { journalError: string | null } {
    this.#revision = this.journal.revision();
    this.#history.startAt(this.#revision);
    const outcome = replayJournal(this.journal.all(), this.ctx, this.#sources, this.#arming);
    for (const r of outcome.registrations) this.#index.add(r);
    this.#commit.stage(...outcome.drop.map((id) => ({ remove: id })));
    const err = this.#commit.flush();
    for (const d of outcome.report.dropped) increment(this.counters.replayDropped, d.reason);
    return {
      ...outcome.report,
      journalError: err === null ? null : err instanceof Error ? err.message : String(err),
    };
  }

  // ---- internals ----

  /** Runs a mutation synchronously, then waits for its commit; counts rejections. */
  async #counted<T>(op: () => T): Promise<T> {
    let result: T;
    const used = this.#sources.usedHandles;
    try {
      result = op();
    } catch (err) {
      used.clear(); // a refused call used no handle: it stays usable
      if (err instanceof Rejection) increment(this.counters.rejected, err.reason);
      throw err;
    } finally {
      this.#sources.current = undefined;
    }
    const handles = [...used];
    used.clear();
    try {
      await this.#commit.committed();
    } catch (err) {
      if (err instanceof Rejection) increment(this.counters.rejected, err.reason);
      throw err;
    }
    // Committed: the intake's copies of the handles it used are closed (the data plane
    // holds its own duplicates).
    for (const h of handles) this.#sources.handover.consume(h);
    return result;
  }

  #requireAccepting(): void {
    if (!this.#accepting) {
      throw new Rejection("SHUTTING_DOWN", "the agent is shutting down; retry on its successor");
    }
  }

  #reconcile(
    req: { owner: unknown; desired: RawSpec[]; dryRun?: boolean; caller?: Caller },
  ): ReconcileResult {
    this.#requireAccepting();
    return reconcileOwner(this.#changes, req);
  }

  /** New labels on a kept registration, journaled and reported (undone if the commit fails). */
  #relabel(registration: Registration, labels: Record<string, string>): void {
    const before = registration.spec;
    registration.spec = { ...registration.spec, labels };
    this.#commit.change({
      op: { put: toRecord(registration) },
      event: { type: "UPDATED", registration, final: null, revision: ++this.#revision },
      undo: () => (registration.spec = before),
    });
  }

  /**
   * Indexes, journals and reports new registrations. Should the commit fail, each is
   * disarmed and unindexed again: nothing a caller was refused stays armed.
   */
  #add(rs: readonly Registration[]): void {
    for (const r of rs) {
      this.#index.add(r);
      this.#commit.change({
        op: { put: toRecord(r) },
        event: { type: "ADDED", registration: r, revision: ++this.#revision },
        undo: () => {
          if (this.#index.byId(r.id) === r) this.#index.remove(r);
          this.#arming.disarm([r]); // nothing when already disarmed (removed meanwhile)
        },
      });
    }
  }

  /** Disarms (a barrier), unindexes, journals and reports removed registrations. */
  #remove(rs: readonly Registration[], cause: RemovalCause): void {
    const finals = this.#arming.disarm(rs);
    for (const r of rs) {
      this.#commit.stage({ remove: r.id });
      this.#index.remove(r);
      increment(this.counters.removed, cause);
      this.#commit.emit({
        type: "REMOVED",
        registration: r,
        cause,
        final: finals.get(r.id) ?? null,
        revision: ++this.#revision,
      });
    }
  }
}
