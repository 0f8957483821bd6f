// Start-up up to "every journaled ioeventfd armed again", with only the modules that takes
// loaded (the native plugin, the inventory, the journal, the registry): the gRPC server,
// the metrics, security and tracing are imported after it (main.ts), so a restarted agent's
// doorbells wait for Deno's start and these imports only (README "Upgrades": where start-up
// goes). Taking over from a running agent (service/upgrade/), it asks that agent to freeze
// first and arms beside it. The probes' HTTP server starts before the replay (alive, not
// ready) and is handed to the agent once it exists.
import { existsSync, mkdirSync } from "node:fs";
import {
  type AgentConfig,
  journalPath,
  REAL_SYSFS,
  simulatedSysfsRoot,
  upgradeSocketPath,
} from "./config.ts";
import { Inventory } from "./devices/inventory.ts";
import { DevicePolicy } from "./devices/policy.ts";
import { createSimulatedHost } from "./devices/simulate.ts";
import type { Logger } from "./log.ts";
import { CONTENT_TYPES, type HttpEndpoints, MetricsHttpServer } from "./metrics/http.ts";
import { NativeEngine } from "./native/engine.ts";
import type { NativeHandover } from "./native/handover.ts";
import { adoptKernel } from "./native/succession.ts";
import { NO_HANDOVER } from "./registry/handover_port.ts";
import { Journal } from "./registry/journal.ts";
import { type JournalHealth, Registry, type ReplayReport } from "./registry/registry.ts";
import { WIDTHS } from "./registry/validation.ts";
import { Inheritance } from "./upgrade/successor.ts";

/** The probes' server before the agent exists: alive, not ready. */
export interface EarlyProbes {
  /** Serves `endpoints` from now on; the server (null: none, or not bound yet). */
  attach(endpoints: HttpEndpoints): MetricsHttpServer | null;
  /** Binds now (after a predecessor let the port go); null while it still holds it. */
  bind(): MetricsHttpServer | null;
}

/** What start-up has done by the time everything is armed again. */
export interface Rearmed {
  /** performance.now() when start-up began: Deno's start plus the imports. */
  t0: number;
  /** ms spent in each step so far. */
  phases: Record<string, number>;
  inventory: Inventory;
  /** The predecessor this agent takes over from (null: a plain start). */
  inheritance: Inheritance | null;
  journal: Journal;
  engine: NativeEngine;
  registry: Registry;
  /** The hand-over intake, opened by the agent once serving. */
  intake: { current: NativeHandover | null };
  replay: ReplayReport & { journalError: string | null };
  /** From t0 to every journaled ioeventfd armed. */
  rearmMs: number;
  probes: EarlyProbes;
}

function startProbes(config: AgentConfig, inheritance: Inheritance | null): EarlyProbes {
  let late: HttpEndpoints | null = null;
  const endpoints: HttpEndpoints = {
    metrics: () => late?.metrics() ?? Promise.resolve(""),
    get contentType() {
      return late?.contentType ?? CONTENT_TYPES.prometheus;
    },
    ready: () => late?.ready() ?? false,
    notReady: () => late === null ? "journal replay not done" : late.notReady?.() ?? null,
  };
  let server: MetricsHttpServer | null = null;
  const bind = (deferrable: boolean): MetricsHttpServer | null => {
    if (!config.metricsListen || server !== null) return server;
    try {
      server = MetricsHttpServer.start(config.metricsListen, endpoints);
    } catch (err) {
      // The predecessor holds the port and SO_REUSEPORT is not available (no
      // --unstable-net): bound once it has released it.
      if (deferrable && err instanceof Deno.errors.AddrInUse) return null;
      // Deno says "Address already in use (os error 98)" and not which address.
      const why = err instanceof Deno.errors.AddrInUse
        ? "address already in use (another process listens there)"
        : err instanceof Error
        ? err.message
        : String(err);
      throw new Error(`metrics listener ${config.metricsListen}: ${why}`, { cause: err });
    }
    return server;
  };
  bind(inheritance !== null);
  return {
    attach(e) {
      late = e;
      return server;
    },
    bind: () => bind(true),
  };
}

/** Everything up to the re-arm; a failure leaves a predecessor serving as before. */
export async function rearmFromJournal(config: AgentConfig, log: Logger): Promise<Rearmed> {
  const t0 = performance.now();
  const phases: Record<string, number> = { runtime_and_imports: t0 };
  let mark = t0;
  const phase = (name: string) => {
    const now = performance.now();
    phases[name] = now - mark;
    mark = now;
  };
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const roots = config.sysfsRoots.map((path) => ({ path, simulated: path !== REAL_SYSFS }));
  if (config.simulate) {
    const root = simulatedSysfsRoot(config);
    if (!existsSync(root)) {
      const created = await createSimulatedHost(root);
      log.log("info", "created simulated host", { root, devices: created });
    }
    roots.unshift({ path: root, simulated: true });
  }
  const inventory = new Inventory({
    roots,
    policy: new DevicePolicy({ allow: config.allow, deny: config.deny }),
    log,
  });
  await inventory.scan();
  phase("inventory");
  // An agent already running on this state directory hands over to this one: it freezes
  // its mutations and closes the journal first, so that the journal has one writer.
  const inheritance = await Inheritance.takeOver(upgradeSocketPath(config), config.takeOver, log);
  phase("plugin_load_and_take_over"); // the first native call loads the plugin
  try {
    // A damaged or missing journal refuses the start (JournalDamaged) before the engine or
    // a port is opened.
    const journal = Journal.open(journalPath(config));
    journal.observer = {
      walLost: (wal, err) =>
        log.log(
          "error",
          "journal WAL lost while running: checkpointed into the journal, reopened",
          {
            wal,
            error: String(err),
          },
        ),
    };
    const engine = NativeEngine.open({
      workers: config.workers,
      canaryPeriodUs: config.canaryPeriodUs,
      pollMode: config.pollMode,
      spinBudgetUs: config.spinBudgetUs,
      shard: config.shard,
      cpus: config.cpus,
    });
    phase("journal_and_engine_open");
    // The intake opens after the replay (a re-sent eventfd then finds what waits for it);
    // the registry sees it through this port from the start.
    const intake: { current: NativeHandover | null } = { current: null };
    const registry = new Registry(
      engine,
      journal,
      inventory,
      { maxPerDevice: config.maxPerDevice, maxPerOwner: config.maxPerOwner },
      WIDTHS,
      (health: JournalHealth) => {
        // Never an exit: reads, deletes and armed ioeventfds keep working; creates are
        // refused with JOURNAL_UNAVAILABLE until a commit succeeds again (retried).
        if (health.available) log.log("info", "journal available again", {});
        else {
          log.log("error", "journal unavailable: commits fail; creates are refused", {
            error: health.error,
            cause: health.cause,
          });
        }
      },
      {
        take: (handle, owner, kind) => {
          if (intake.current === null) return NO_HANDOVER.take(handle, owner, kind);
          return intake.current.take(handle, owner, kind);
        },
        consume: (handle) => intake.current?.consume(handle),
        received: () => intake.current?.received() ?? [],
        takingOver: inheritance !== null,
        inherited: (id) => inheritance?.take(id) ?? null,
        adoptKernel: (request) => ({ id: adoptKernel(engine.handle, request), backend: "kernel" }),
      },
    );
    // Probes answer during a long replay: alive, not ready.
    const probes = startProbes(config, inheritance);
    // Re-arm before serving: a caller never sees a half-recovered agent. Taking over, the
    // predecessor still writes meanwhile: each wake-up's count is read by exactly one of
    // the two (a non-blocking read; a worker writes only when it read a count).
    const replay = registry.replay();
    const rearmMs = performance.now() - t0;
    phase("replay");
    return {
      t0,
      phases,
      inventory,
      inheritance,
      journal,
      engine,
      registry,
      intake,
      replay,
      rearmMs,
      probes,
    };
  } catch (err) {
    inheritance?.close(); // the predecessor resumes
    throw err;
  }
}
