// The creates of one event-loop turn, armed together. CreateIoeventfd calls that arrive in the
// same turn are planned one by one in arrival order (mutations.ts planCreate: every rule, the
// sources taken), then armed with one registerMany (one control operation per worker instead
// of a worker round trip each, which the JS thread would wait for), then indexed and staged
// into the same group commit. Callers are answered once that commit is on disk, as before.
//
// While a turn is planned, each planned create holds its key, its request id and its share of
// the limits through a placeholder in the index, so the next create of the turn is judged as if
// it were already armed; nothing outside this synchronous flush ever sees a placeholder.
import { setImmediate } from "node:timers";
import { Rejection } from "../rejection/rejection.ts";
import {
  armedCreate,
  type CreateRequest,
  planCreate,
  type PlannedCreate,
  type RegistryChanges,
} from "./mutations.ts";
import type { Registration } from "./registration.ts";

export interface CreateResult {
  registration: Registration;
  created: boolean;
}

/** What the batch needs of the registry (registry.ts). */
export interface CreateBatchHost {
  changes: RegistryChanges;
  /** Resolves once what is staged now is on disk (GroupCommit.committed). */
  committed(): Promise<void>;
  /** Counts a refusal (RegistryCounters.rejected). */
  rejected(err: unknown): void;
  /** A committed create's handed-over handles: the intake's copies are closed. */
  consumeHandles(handles: readonly string[]): void;
}

interface Queued {
  req: CreateRequest;
  resolve(result: CreateResult): void;
  reject(err: unknown): void;
}

/** A planned create, and the creates of the same turn that repeated its request_id. */
interface Planned {
  queued: Queued;
  planned: PlannedCreate;
  handles: string[];
  followers: Queued[];
}

interface Answer {
  queued: Queued;
  result: CreateResult;
  handles: string[];
}

export class CreateBatch {
  #queue: Queued[] = [];

  constructor(private readonly host: CreateBatchHost) {}

  /** Resolves once armed and journaled (with the others of this turn); rejects a Rejection. */
  submit(req: CreateRequest): Promise<CreateResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ req, resolve, reject });
      if (this.#queue.length === 1) setImmediate(() => this.flush());
    });
  }

  /** Plans, arms and stages every create queued so far (at the end of a turn, or a stop). */
  flush(): void {
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    const c = this.host.changes;
    const planned: Planned[] = [];
    const answers: Answer[] = [];
    const byPlaceholder = new Map<Registration, Planned>();
    for (const queued of queue) {
      try {
        const plan = planCreate(c, queued.req);
        const handles = [...c.sources.usedHandles];
        if (plan.kind === "planned") {
          const p = { queued, planned: plan.planned, handles, followers: [] };
          c.index.add(plan.planned.placeholder);
          byPlaceholder.set(plan.planned.placeholder, p);
          planned.push(p);
        } else if (byPlaceholder.has(plan.registration)) {
          // Its request_id repeats one planned in this turn: it gets what that one gets.
          byPlaceholder.get(plan.registration)!.followers.push(queued);
        } else {
          answers.push({
            queued,
            result: { registration: plan.registration, created: false },
            handles,
          });
        }
      } catch (err) {
        this.#refuse(queued, err);
      } finally {
        c.sources.usedHandles.clear(); // a refused create used no handle: it stays usable
        c.sources.current = undefined;
      }
    }
    for (const p of planned) c.index.remove(p.planned.placeholder);

    let armed: ReturnType<RegistryChanges["arming"]["armTaken"]>;
    try {
      armed = c.arming.armTaken(planned.map(({ planned: p }) => ({ ...p, at: "spec." })));
    } catch (err) {
      const why = err instanceof Rejection ? err : new Rejection("ENGINE_FAILURE", String(err));
      armed = planned.map(() => why);
    }
    planned.forEach((p, i) => {
      const outcome = armed[i];
      c.sources.releaseVfio(p.planned.vfio); // the data plane holds its own descriptor
      if (outcome instanceof Rejection) {
        c.sources.release(p.planned.source);
        for (const q of [p.queued, ...p.followers]) this.#refuse(q, outcome);
        return;
      }
      const registration = armedCreate(p.planned, outcome);
      c.add([registration]);
      answers.push({
        queued: p.queued,
        result: { registration, created: true },
        handles: p.handles,
      });
      for (const queued of p.followers) {
        answers.push({ queued, result: { registration, created: false }, handles: [] });
      }
    });

    const committed = this.host.committed();
    for (const a of answers) {
      committed.then(() => {
        this.host.consumeHandles(a.handles);
        a.queued.resolve(a.result);
      }, (err) => this.#refuse(a.queued, err));
    }
  }

  #refuse(queued: Queued, err: unknown): void {
    this.host.rejected(err);
    queued.reject(err);
  }
}
