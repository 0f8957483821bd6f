// The agent: wires the inventory, the native engine, the registry (with its journal) and
// the API together, and owns start-up (replay before serving) and graceful shutdown.
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { Buffer } from "node:buffer";
import { hostname } from "node:os";
import { dirname } from "node:path";
import type { AgentInfo } from "./api/generated/ioeventd/v1/AgentInfo.ts";
import { timestampFromMs } from "./api/convert.ts";
import { ApiServer } from "./api/server.ts";
import {
  type AgentConfig,
  auditLogPath,
  journalPath,
  REAL_SYSFS,
  simulatedSysfsRoot,
} from "./config.ts";
import { Inventory, type InventoryChange, isEmptyChange } from "./devices/inventory.ts";
import { DevicePolicy } from "./devices/policy.ts";
import { createSimulatedHost } from "./devices/simulate.ts";
import type { Logger } from "./log.ts";
import { MetricsHttpServer } from "./metrics/http.ts";
import { AgentMetrics } from "./metrics/metrics.ts";
import { detectBackends, NativeEngine, POLL_MODES } from "./native/engine.ts";
import { NativeHandover } from "./native/handover.ts";
import { Journal } from "./registry/journal.ts";
import { type JournalHealth, Registry, type ReplayReport } from "./registry/registry.ts";
import { NO_HANDOVER } from "./registry/handover_port.ts";
import { WIDTHS } from "./registry/validation.ts";
import { registerSecurityMetrics } from "./security/metrics.ts";
import { registryLookup, type ReloadReport, Security } from "./security/security.ts";
import { startTracing, type Tracing } from "./tracing/setup.ts";
import { API_VERSIONS, buildRevision, VERSION } from "./version.ts";

/** Longest sun_path Linux accepts, NUL included. */
const UNIX_PATH_MAX = 108;

function prepareUnixSocket(address: string): void {
  const path = address.replace(/^unix:(\/\/)?/, "");
  if (Buffer.byteLength(path) >= UNIX_PATH_MAX) {
    throw new Error(`socket path ${path} is longer than ${UNIX_PATH_MAX - 1} bytes`);
  }
  // A directory the agent creates is its own: only its user may reach it. One it was given
  // (a shared /run/…, a 1777 directory) keeps its mode: the socket itself is made 0600.
  const dir = dirname(path);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.chmodSync(dir, 0o700); // the umask may have taken bits off; never added any
  }
  if (existsSync(path) && lstatSync(path).isSocket()) rmSync(path); // stale, from a crash
}

function machineId(): string {
  try {
    return readFileSync("/etc/machine-id", "utf8").trim();
  } catch {
    return "";
  }
}

export class Agent {
  readonly startedAtMs = Date.now();
  replay: (ReplayReport & { journalError: string | null }) | null = null;
  /** Time from start to every journaled ioeventfd armed again. */
  rearmMs: number | null = null;
  /** True from the API serving until a stop begins. */
  serving = false;
  /** The /metrics, /healthz and /readyz server; null when metricsListen is "". */
  metricsHttp: MetricsHttpServer | null = null;
  #stopping: Promise<void> | null = null;
  #eventsDone: Promise<void> | null = null;
  #onHangup: (() => void) | null = null;
  /** The hand-over intake (null: handoverSocket ""), opened once the replay is done. */
  handover: NativeHandover | null = null;
  #handoverTimer: ReturnType<typeof setInterval> | null = null;
  #handoverPort: { current: NativeHandover | null } = { current: null };

  private constructor(
    readonly config: AgentConfig,
    readonly log: Logger,
    readonly inventory: Inventory,
    readonly engine: NativeEngine,
    readonly journal: Journal,
    readonly registry: Registry,
    readonly server: ApiServer,
    readonly metrics: AgentMetrics,
    readonly tracing: Tracing | null,
    readonly security: Security,
  ) {}

  /** Replay done, the API serving and the journal taking commits: what /readyz reports. */
  get ready(): boolean {
    return this.notReady === null;
  }

  /** Why the agent is not ready (the /readyz body), or null when it is. */
  get notReady(): string | null {
    if (this.replay === null) return "journal replay not done";
    if (!this.serving) return "not serving";
    const journal = this.registry.journalHealth;
    // Degraded, not down: reads and every armed ioeventfd work; creates are refused.
    if (!journal.available) return `journal unavailable: ${journal.error}`;
    return null;
  }

  static async start(config: AgentConfig, log: Logger): Promise<Agent> {
    const t0 = performance.now();
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
    // First: a damaged or missing journal refuses the start (JournalDamaged) before the
    // engine or a port is opened.
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
    const metrics = new AgentMetrics({ perIoeventfd: config.perIoeventfdMetrics });
    const tracing = await startTracing(log);
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
      },
    );
    const security = new Security(
      {
        tls: config.tls,
        policyFile: config.policyFile,
        auditLog: auditLogPath(config),
        rateLimitPerSecond: config.rateLimitPerSecond,
        rateLimitBurst: config.rateLimitBurst,
        maxStreamsPerIdentity: config.maxStreamsPerIdentity,
        unlimitedIdentities: config.unlimitedIdentities,
      },
      registryLookup(registry),
      log,
    );
    registerSecurityMetrics(metrics.registry, security.counters);
    let agent: Agent | null = null;
    const server = new ApiServer({
      registry,
      devices: inventory,
      agentInfo: () => agent!.info(),
      rescan: async () => agent!.#devicesChanged(await inventory.scan()),
    }, {
      listen: config.listen,
      reflection: config.reflection,
      // Security last (innermost): metrics and traces see the calls it refuses.
      interceptors: [
        metrics.rpc.interceptor,
        ...(tracing ? [tracing.interceptor] : []),
        security.interceptor,
      ],
      credentialsFor: (address) => security.credentialsFor(address),
      maxMessageBytes: config.maxMessageBytes,
    });
    agent = new Agent(
      config,
      log,
      inventory,
      engine,
      journal,
      registry,
      server,
      metrics,
      tracing,
      security,
    );
    metrics.bind(agent);
    // Probes answer during a long replay: alive, not ready.
    if (config.metricsListen) {
      try {
        agent.metricsHttp = MetricsHttpServer.start(config.metricsListen, {
          metrics: () => metrics.scrape(),
          contentType: metrics.contentType,
          ready: () => agent!.ready,
          notReady: () => agent!.notReady,
        });
      } catch (err) {
        // Deno says "Address already in use (os error 98)" and not which address.
        const why = err instanceof Deno.errors.AddrInUse
          ? "address already in use (another process listens there)"
          : err instanceof Error
          ? err.message
          : String(err);
        throw new Error(`metrics listener ${config.metricsListen}: ${why}`, { cause: err });
      }
    }

    // Re-arm before serving: a caller never sees a half-recovered agent.
    agent.replay = registry.replay();
    agent.rearmMs = performance.now() - t0;
    await metrics.track();
    const replayed = agent.replay;
    log.log("info", "journal replayed", {
      rearmed: replayed.rearmed,
      orphaned: replayed.orphaned.length,
      dropped: replayed.dropped,
      replay_ms: Math.round(replayed.durationMs),
      rearm_ms: Math.round(agent.rearmMs),
      revision: String(registry.revision),
    });
    if (replayed.journalError !== null) {
      log.log("warn", "journal unavailable at start: dropped entries are removed later", {
        error: replayed.journalError,
      });
    }

    for (const address of config.listen) {
      if (address.startsWith("unix:")) prepareUnixSocket(address);
    }
    if (config.handoverSocket) {
      prepareUnixSocket(`unix://${config.handoverSocket}`);
      agent.handover = intake.current = NativeHandover.open({
        path: config.handoverSocket,
        mode: config.handoverSocketMode,
        ttlMs: config.handoverTtlMs,
        maxHandles: config.handoverMaxHandles,
        maxPerUid: config.handoverMaxHandles,
      });
      agent.#handoverPort = intake;
      agent.#watchHandover();
    }
    for (const warning of security.warnings(config.listen)) log.log("warn", warning);
    await server.start();
    for (const address of config.listen) {
      // Only the agent's user may connect, whatever the directory's mode.
      if (address.startsWith("unix:")) Deno.chmodSync(address.replace(/^unix:(\/\/)?/, ""), 0o600);
    }
    agent.#onHangup = () => void agent!.reload();
    Deno.addSignalListener("SIGHUP", agent.#onHangup);
    server.setServing(true);
    agent.serving = true;
    agent.#watchEngine();
    inventory.startPeriodic(config.rescanIntervalMs, (change) => agent!.#devicesChanged(change));
    log.log("info", "ioeventd serving", {
      version: VERSION,
      listen: server.bound,
      metrics: agent.metricsHttp ? `${agent.metricsHttp.hostname}:${agent.metricsHttp.port}` : null,
      devices: inventory.list().length,
      managed: inventory.list().filter((d) => d.managed).length,
      workers: config.workers,
      poll_mode: config.pollMode,
      simulated_host: config.simulate,
    });
    return agent;
  }

  /** A scan found differences: vanished or no-longer-managed devices orphan their ioeventfds. */
  #devicesChanged(change: InventoryChange): void {
    if (isEmptyChange(change)) return;
    const orphaned = this.registry.devicesChanged([...change.removed, ...change.changed]);
    this.log.log("warn", "devices changed", { ...change, orphaned: orphaned.map((r) => r.id) });
  }

  #watchEngine(): void {
    this.#eventsDone = (async () => {
      for await (const event of this.engine.events()) {
        const removed = await this.registry.sourceExited(event.pid, event.startTime);
        this.log.log("info", "source process exited", {
          pid: event.pid,
          removed: removed.map((r) => r.id),
        });
      }
    })();
  }

  /**
   * Every 100 ms: descriptors handed over since re-arm what waits for them (NEEDS_SOURCE);
   * every second, those whose sender exited are removed (SOURCE_EXIT).
   */
  #watchHandover(): void {
    let ticks = 0;
    this.#handoverTimer = setInterval(() => {
      const intake = this.#handoverPort.current;
      if (intake === null) return;
      const rearmed = this.registry.handoverReceived(intake.received());
      if (rearmed.length > 0) {
        this.log.log("info", "re-armed from a hand-over", { ids: rearmed.map((r) => r.id) });
      }
      if (++ticks % 10 === 0) {
        void this.registry.needsSourceGone().then((gone) => {
          if (gone.length > 0) {
            this.log.log("info", "source process exited while waiting for its hand-over", {
              removed: gone.map((r) => r.id),
            });
          }
        }).catch(() => {});
      }
    }, 100);
  }

  /** SIGHUP: certificates, policy and the audit file are read again (security.ts). */
  reload(): ReloadReport {
    return this.security.reload();
  }

  info(): AgentInfo {
    const warnings = this.security.warnings(this.config.listen);
    return {
      version: VERSION,
      build: buildRevision(),
      hostname: hostname(),
      machineId: machineId(),
      apiVersions: API_VERSIONS,
      limits: { maxPerDevice: this.config.maxPerDevice, maxPerOwner: this.config.maxPerOwner },
      capabilities: {
        widths: [...this.registry.ctx.widths],
        eightByteWrites: this.registry.ctx.widths.includes(8),
        eightByteWritesReason: Deno.build.arch === "x86_64"
          ? "x86_64 performs an 8-byte MMIO store as one instruction"
          : "not a 64-bit MMIO platform",
        // Detected on this host (a VFIO container with a type1 IOMMU, vfio-pci), not assumed.
        backends: detectBackends().backends,
        pollModes: [...POLL_MODES],
        pollMode: this.config.pollMode,
        workers: this.config.workers,
        features: [
          "reconcile",
          "watch",
          "request-id",
          "source-exit-cleanup",
          "journal",
          ...(this.handover ? ["handover"] : []),
        ],
      },
      startedAt: timestampFromMs(this.startedAtMs),
      ready: this.replay !== null,
      warnings,
    };
  }

  /** Graceful stop: refuse mutations, finish in-flight calls, close the journal. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.serving = false;
      if (this.#onHangup) Deno.removeSignalListener("SIGHUP", this.#onHangup);
      this.registry.stopAccepting();
      if (this.#handoverTimer !== null) clearInterval(this.#handoverTimer);
      this.inventory.stop();
      await this.server.stop(this.config.shutdownGraceMs);
      await this.tracing?.shutdown();
      await this.metricsHttp?.close();
      this.metrics.stop();
      await this.registry.closeJournal(); // the last group commit is on disk
      this.journal.close();
      this.security.close();
      // The eventfds stay open in their owners: the kernel keeps counting signals until the
      // next agent re-arms them. Closing the engine only drops our duplicates.
      this.engine.close();
      // Unused handles are closed; handed-over registrations wait for a re-send.
      this.handover?.close();
      this.#handoverPort.current = null;
      await this.#eventsDone;
      this.log.log("info", "ioeventd stopped", {});
    })();
    return this.#stopping;
  }
}
