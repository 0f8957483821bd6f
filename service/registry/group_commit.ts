// Group commit and the watch fan-out. Changes staged during one turn of the event loop are
// committed in one fsync'd journal transaction on the next turn; only then are the callers
// answered (their promise resolves) and the watchers told, in commit order. So nothing a
// caller or a watcher was told can be lost by a crash, and nothing is told before it is
// durable.
import { setImmediate } from "node:timers";
import { Rejection } from "../rejection/rejection.ts";
import type { Journal, JournalOp } from "./journal.ts";
import { matches, type RegistryEvent, type WatchFilter } from "./registration.ts";

export type Listener = (event: RegistryEvent) => void;

interface Batch {
  ops: JournalOp[];
  events: RegistryEvent[];
  done: Promise<void>;
  settle: (err?: unknown) => void;
}

export class GroupCommit {
  #batch: Batch | null = null;
  readonly #listeners = new Set<{ filter: WatchFilter; listener: Listener }>();

  /**
   * `onFailure`: the journal could not commit (disk full, I/O error). The in-memory state is
   * then ahead of the disk; the agent must stop (crash-only) so that its successor replays
   * what was really committed. Callers of that batch are answered with ENGINE_FAILURE.
   */
  constructor(
    private readonly journal: Journal,
    private readonly onFailure: (err: unknown) => void,
  ) {}

  /** Journal operations for the next commit. */
  stage(...ops: JournalOp[]): void {
    this.#pending().ops.push(...ops);
  }

  /** An event told to the watchers once the next commit is on disk. */
  emit(event: RegistryEvent): void {
    this.#pending().events.push(event);
  }

  /** Resolves once what was staged so far is on disk (at once when nothing is pending). */
  committed(): Promise<void> {
    return this.#batch?.done ?? Promise.resolve();
  }

  /** Resolves when no commit is pending: a commit boundary. */
  async settled(): Promise<void> {
    while (this.#batch) await this.#batch.done;
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
      batch.settle(new Rejection("ENGINE_FAILURE", `journal write failed: ${err}`));
      this.onFailure(err);
      return;
    }
    for (const event of batch.events) {
      for (const { filter, listener } of this.#listeners) {
        if (matches(event.registration, filter)) listener(event);
      }
    }
    batch.settle();
  }
}
