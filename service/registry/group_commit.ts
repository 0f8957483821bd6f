// Group commit and the watch fan-out. Changes staged during one turn of the event loop are
// committed in one fsync'd journal transaction on the next turn; only then are the callers
// answered (their promise resolves) and the watchers told, in commit order. So nothing a
// caller or a watcher was told can be lost by a crash, and nothing is told before it is
// durable.
//
// A commit that fails (disk full, read-only or failing file system) never stops the agent.
// Its callers are answered UNAVAILABLE / JOURNAL_UNAVAILABLE with SQLite's error as `cause`,
// and each change of the batch is settled by one rule:
//   - a change staged with an `undo` (an addition, a relabel) is undone: nothing of it stays
//     armed or indexed, its event is never told;
//   - a change without one (a removal: already disarmed, a barrier that cannot be undone; an
//     orphaning) is kept, its journal op and event carried into the next commit, which is
//     retried every `retryMs` until it succeeds. The journal thus never re-arms on restart
//     what stays removed, once the file system takes writes again.
// The journal is then "unavailable" (JournalHealth) until a commit succeeds again.
import { setImmediate } from "node:timers";
import { Rejection } from "../rejection/rejection.ts";
import { type Journal, journalFailureCause, type JournalOp } from "./journal.ts";
import { matches, type RegistryEvent, type WatchFilter } from "./registration.ts";

export type Listener = (event: RegistryEvent) => void;

/** One staged change: its journal op, its event, and how to take it back if not committed. */
export interface Change {
  op?: JournalOp;
  event?: RegistryEvent;
  /** Reverts the change in memory when its commit fails; without one it is carried over. */
  undo?: () => void;
}

/** Whether the journal takes commits, and what went wrong when it did not. */
export interface JournalHealth {
  available: boolean;
  /** SQLite's error text of the last failed commit, while unavailable. */
  error: string | null;
  /** Its short form (journalFailureCause): disk_full, read_only, io_error, … */
  cause: string | null;
  /** When the journal became unavailable (ms since the epoch), while it is. */
  sinceMs: number | null;
  /** Failed commits since start, by cause (monotonic). */
  readonly failures: Map<string, number>;
  /** Changes kept (removals) that wait for the next successful commit. */
  carried: number;
}

/** Told when the journal becomes unavailable (with the error) and when it is back. */
export type JournalObserver = (health: JournalHealth, err?: unknown) => void;

interface Batch {
  changes: Change[];
  done: Promise<void>;
  settle: (err?: unknown) => void;
}

export class GroupCommit {
  #batch: Batch | null = null;
  /** Kept changes of failed commits, committed first by the next one. */
  #carried: Change[] = [];
  #retry: ReturnType<typeof setTimeout> | null = null;
  readonly #listeners = new Set<{ filter: WatchFilter; listener: Listener }>();
  readonly health: JournalHealth = {
    available: true,
    error: null,
    cause: null,
    sinceMs: null,
    failures: new Map(),
    carried: 0,
  };

  constructor(
    private readonly journal: Journal,
    /** The registry's revision, journaled with every commit. */
    private readonly revision: () => bigint = () => 0n,
    private readonly observe: JournalObserver = () => {},
    private readonly retryMs = 5000,
  ) {}

  /** Journal operations for the next commit (kept, not undone, if it fails). */
  stage(...ops: JournalOp[]): void {
    for (const op of ops) this.#pending().changes.push({ op });
  }

  /** An event told to the watchers once the next commit is on disk. */
  emit(event: RegistryEvent): void {
    this.#pending().changes.push({ event });
  }

  /** A change: its op and event go, or are undone, together. */
  change(change: Change): void {
    this.#pending().changes.push(change);
  }

  /** Resolves once what was staged so far is on disk (at once when nothing is pending). */
  committed(): Promise<void> {
    return this.#batch?.done ?? Promise.resolve();
  }

  /** Resolves when no commit is pending: a commit boundary. */
  async settled(): Promise<void> {
    while (this.#batch) await this.#batch.done.catch(() => {});
  }

  /** Commits what is pending now, synchronously; returns the error if the commit failed. */
  flush(): unknown {
    if (this.#batch === null && this.#carried.length === 0) return null;
    return this.#flush();
  }

  /** Whether the journal took the last commit (JournalHealth). */
  get available(): boolean {
    return this.health.available;
  }

  /** Stops retrying carried changes (the agent is stopping). */
  close(): void {
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#retry = null;
  }

  /** Tells `listener` every committed event that `filter` selects, until unsubscribed. */
  subscribe(filter: WatchFilter, listener: Listener): () => void {
    const entry = { filter, listener };
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  #pending(): Batch {
    if (this.#batch === null) {
      let settle: (err?: unknown) => void = () => {};
      const done = new Promise<void>((resolve, reject) => {
        settle = (err) => (err === undefined ? resolve() : reject(err));
      });
      done.catch(() => {}); // observed by the callers that await it
      this.#batch = { changes: [], done, settle };
      setImmediate(() => {
        if (this.#batch?.done === done) this.#flush();
      });
    }
    return this.#batch;
  }

  #flush(): unknown {
    const batch = this.#batch;
    this.#batch = null;
    const changes = [...this.#carried, ...(batch?.changes ?? [])];
    const ops = changes.flatMap((c) => (c.op ? [c.op] : []));
    try {
      // While unavailable, even an empty commit writes: its success is what clears the state.
      this.journal.apply(ops, this.revision(), !this.health.available);
    } catch (err) {
      this.#failed(changes, err);
      const cause = err instanceof Error ? err.message : String(err);
      batch?.settle(
        new Rejection(
          "JOURNAL_UNAVAILABLE",
          `the journal cannot be written (${cause}): nothing was added; removals took ` +
            `effect and are journaled once it can be written again`,
          [],
          { cause },
        ),
      );
      return err;
    }
    this.#carried = [];
    this.health.carried = 0;
    if (!this.health.available) {
      this.health.available = true;
      this.health.error = this.health.cause = null;
      this.health.sinceMs = null;
      this.observe(this.health);
    }
    for (const { event } of changes) {
      if (!event) continue;
      for (const { filter, listener } of this.#listeners) {
        if (matches(event.registration, filter)) listener(event);
      }
    }
    batch?.settle();
    return null;
  }

  /** Undoes what can be, keeps the rest for the next commit, and says the journal is down. */
  #failed(changes: Change[], err: unknown): void {
    const undone = new Set<string>();
    for (const c of [...changes].reverse()) {
      if (!c.undo) continue;
      c.undo();
      if (c.event) undone.add(c.event.registration.id);
    }
    // A registration added and removed in the failed batch: neither is told, the removal
    // of a row that was never written is harmless.
    this.#carried = changes.filter((c) =>
      !c.undo && !(c.event && undone.has(c.event.registration.id))
    );
    this.health.carried = this.#carried.filter((c) => c.op).length;
    const cause = journalFailureCause(err);
    this.health.failures.set(cause, (this.health.failures.get(cause) ?? 0) + 1);
    const wasAvailable = this.health.available;
    this.health.available = false;
    this.health.error = err instanceof Error ? err.message : String(err);
    this.health.cause = cause;
    this.health.sinceMs ??= Date.now();
    if (wasAvailable) this.observe(this.health, err);
    this.#scheduleRetry();
  }

  /**
   * While unavailable, a commit is tried every retryMs, so kept removals reach the journal
   * and the state clears without waiting for the next request.
   */
  #scheduleRetry(): void {
    if (this.#retry !== null) return;
    const timer = setTimeout(() => {
      this.#retry = null;
      if (this.health.available || this.#batch !== null) return;
      this.#flush();
    }, this.retryMs);
    Deno.unrefTimer(timer);
    this.#retry = timer;
  }
}
