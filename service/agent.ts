// The agent: wires the inventory, the native engine, the registry (with its journal) and
// the API together, and owns start-up (replay before serving: rearm.ts), the hand-over to a
// successor (service/upgrade/) and graceful shutdown.
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { Buffer } from "node:buffer";
import { hostname } from "node:os";
import { dirname } from "node:path";
import type { AgentInfo } from "./api/generated/ioeventd/v1/AgentInfo.ts";
import { timestampFromMs } from "./api/convert.ts";
import { ApiServer } from "./api/server.ts";
import { type AgentConfig, auditLogPath, upgradeSocketPath } from "./config.ts";
import { type Inventory, type InventoryChange, isEmptyChange } from "./devices/inventory.ts";
import type { Logger } from "./log.ts";
import type { MetricsHttpServer } from "./metrics/http.ts";
import { AgentMetrics } from "./metrics/metrics.ts";
import { detectBackends, type NativeEngine, POLL_MODES } from "./native/engine.ts";
import { NativeHandover } from "./native/handover.ts";
import { sdNotify } from "./native/succession.ts";
import { type Rearmed, rearmFromJournal } from "./rearm.ts";
import type { Journal } from "./registry/journal.ts";
import type { Registry, ReplayReport } from "./registry/registry.ts";
import { registerSecurityMetrics } from "./security/metrics.ts";
import { registryLookup, type ReloadReport, Security } from "./security/security.ts";
import { startTracing, type Tracing } from "./tracing/setup.ts";
import { UpgradeListener } from "./upgrade/predecessor.ts";
import { predecessorHost } from "./upgrade/predecessor_host.ts";
import type { ReleaseReport } from "./upgrade/protocol.ts";
import {
  bindAddress,
  publicAddress,
  PublishedSockets,
  unixPath,
} from "./upgrade/unix_listeners.ts";
import { API_VERSIONS, buildRevision, VERSION } from "./version.ts";

/** Longest sun_path Linux accepts, NUL included. */
const UNIX_PATH_MAX = 108;

function prepareUnixSocket(address: string): void {
  const path = unixPath(address);
  // The private name it is bound under (<path>.<pid>, unix_listeners.ts) must fit too.
  if (Buffer.byteLength(unixPath(bindAddress(address))) >= UNIX_PATH_MAX) {
    throw new Error(`socket path ${path} is longer than ${UNIX_PATH_MAX - 1} bytes`);
  }
  // A directory the agent creates is its own: only its user may reach it. One it was given
  // (a shared /run/…, a 1777 directory) keeps its mode: the socket itself is made 0600.
  const dir = dirname(path);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.chmodSync(dir, 0o700); // the umask may have taken bits off; never added any
  }
  // A socket left there (a crash, or a predecessor's) is replaced by a rename, not removed.
  const bound = unixPath(bindAddress(address));
  if (existsSync(bound) && lstatSync(bound).isSocket()) rmSync(bound);
  if (existsSync(path) && !lstatSync(path).isSocket()) {
    throw new Error(`listener path ${path} exists and is not a socket`);
  }
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
  /** Where this agent listens for its successor (null until serving). */
  #upgrade: UpgradeListener | null = null;
  readonly #published = new PublishedSockets();
  /** Resolves once this agent handed over to a successor: it must then stop and exit. */
  readonly handedOver: Promise<void>;
  #resolveHandedOver: () => void = () => {};
  /** Set once handed over: the successor writes the journal and serves the data plane. */
  #released = false;
  /** What the predecessor reported when this agent took over from it (null: plain start). */
  tookOver: (ReleaseReport & { predecessorRevision: bigint }) | null = null;

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
  ) {
    this.handedOver = new Promise((resolve) => (this.#resolveHandedOver = resolve));
  }

  /** Replay done, the API serving and the journal taking commits: what /readyz reports. */
  get ready(): boolean {
    return this.notReady === null;
  }

  /** Why the agent is not ready (the /readyz body), or null when it is. */
  get notReady(): string | null {
    if (this.#released) return "handed over to a successor";
    if (this.replay === null) return "journal replay not done";
    if (!this.serving) return "not serving";
    const journal = this.registry.journalHealth;
    // Degraded, not down: reads and every armed ioeventfd work; creates are refused.
    if (!journal.available) return `journal unavailable: ${journal.error}`;
    return null;
  }

  /**
   * Starts the agent around what `rearmFromJournal` prepared (every journaled ioeventfd
   * armed again, with only the modules that takes loaded: service/rearm.ts); without it,
   * does that first.
   */
  static async start(config: AgentConfig, log: Logger, early?: Rearmed): Promise<Agent> {
    const r = early ?? await rearmFromJournal(config, log);
    const { inventory, inheritance, journal, engine, registry, intake, phases } = r;
    const metrics = new AgentMetrics({ perIoeventfd: config.perIoeventfdMetrics });
    const tracing = await startTracing(log);
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
      // Unix listeners bound under a private name, then renamed over their path.
      listen: config.listen.map(bindAddress),
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
    agent.replay = r.replay;
    agent.rearmMs = r.rearmMs;
    // The probes' server started before the replay; from now on it serves this agent.
    agent.metricsHttp = r.probes.attach({
      metrics: () => metrics.scrape(),
      contentType: metrics.contentType,
      ready: () => agent!.ready,
      notReady: () => agent!.notReady,
    });
    phases.agent_setup = performance.now() - (r.t0 + r.rearmMs);
    await metrics.track();
    const replayed = agent.replay;
    log.log("info", "journal replayed", {
      rearmed: replayed.rearmed,
      adopted: replayed.adopted,
      taking_over: inheritance !== null,
      orphaned: replayed.orphaned.length,
      dropped: replayed.dropped,
      replay_ms: Math.round(replayed.durationMs),
      rearm_ms: Math.round(agent.rearmMs),
      // From the runtime's start (the process's, but for the exec of deno itself).
      rearmed_since_process_start_ms: Math.round(r.t0 + r.rearmMs),
      startup_ms: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round(v)])),
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
    // Taking over: no mutation until the predecessor has stopped writing (a delete must be
    // a barrier for both agents' writes); reads are answered meanwhile, mutations get
    // SHUTTING_DOWN (UNAVAILABLE, retryable) for that moment.
    if (inheritance !== null) registry.stopAccepting();
    // A TCP port cannot be shared with the predecessor (grpc-js has no SO_REUSEPORT): taking
    // over, it is bound once the predecessor has let it go; Unix sockets are renamed over.
    const now = inheritance === null
      ? config.listen
      : config.listen.filter((a) => a.startsWith("unix:"));
    await server.start(now.map(bindAddress));
    for (const address of now) {
      // Only the agent's user may connect, whatever the directory's mode.
      if (address.startsWith("unix:")) Deno.chmodSync(unixPath(bindAddress(address)), 0o600);
    }
    // From the rename on, new connections reach this agent (a predecessor's stay with it).
    agent.#published.publish(now);
    server.bound.splice(0, server.bound.length, ...server.bound.map(publicAddress));
    agent.#onHangup = () => void agent!.reload();
    Deno.addSignalListener("SIGHUP", agent.#onHangup);
    server.setServing(true);
    agent.serving = true;
    if (inheritance !== null) {
      // Armed and serving: only now does the predecessor stop writing.
      const report = await inheritance.armed();
      if (report === null) {
        log.log("warn", "the predecessor died before it released; serving alone");
      }
      const released = report ?? { triggers: 0n, signals: 0n, kernelEntriesLeft: 0 };
      registry.resumeAccepting();
      const tcp = config.listen.filter((a) => !a.startsWith("unix:"));
      if (tcp.length > 0) await agent.#bindAfterPredecessor(tcp);
      agent.tookOver = { ...released, predecessorRevision: inheritance.revision };
      if (agent.metricsHttp === null && config.metricsListen) {
        void agent.#bindMetricsAfterPredecessor(() => {
          agent!.metricsHttp = r.probes.bind();
          return agent!.metricsHttp !== null;
        });
      }
      log.log("info", "took over: the predecessor writes no more", {
        predecessor_triggers: String(released.triggers),
        predecessor_signals: String(released.signals),
        kernel_entries_adopted: agent.replay.adopted,
        rearm_ms: Math.round(agent.rearmMs),
      });
    }
    // Source exits and device changes from here on (queued by the engine until now): while
    // taking over, they wait for the mutations the registry takes once released.
    agent.#watchEngine();
    inventory.startPeriodic(config.rescanIntervalMs, (change) => agent!.#devicesChanged(change));
    const host = predecessorHost({
      registry,
      journal,
      engine,
      released: () => (agent!.#released = true),
      handedOver: () => agent!.#resolveHandedOver(),
    });
    prepareUnixSocket(`unix://${upgradeSocketPath(config)}`); // its directory, 0700
    agent.#upgrade = UpgradeListener.open(upgradeSocketPath(config), host, log);
    // systemd (Type=notify): ready only now, every journaled ioeventfd armed. A successor
    // is the service's main process from here on.
    try {
      sdNotify(inheritance !== null ? `MAINPID=${Deno.pid}\nREADY=1` : "READY=1");
    } catch (err) {
      log.log("warn", "sd_notify failed", { error: String(err) });
    }
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

  /** Binds TCP gRPC listeners once the predecessor has closed its own (it drains, then exits). */
  async #bindAfterPredecessor(addresses: string[]): Promise<void> {
    const deadline = Date.now() + this.config.shutdownGraceMs + 5_000;
    for (const address of addresses) {
      // Wait for the port itself, then bind once: a grpc-js server keeps a failed bind's entry
      // for a while, and binding the address again meanwhile fails ("already bound").
      while (!tcpPortFree(address) && Date.now() <= deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await this.server.start([address]);
    }
    this.server.bound.splice(0, this.server.bound.length, ...this.server.bound.map(publicAddress));
  }

  /** Binds the metrics port once the predecessor has let it go (it drains, then exits). */
  async #bindMetricsAfterPredecessor(bind: () => boolean): Promise<void> {
    const deadline = Date.now() + this.config.shutdownGraceMs + 5_000;
    while (!bind()) {
      if (Date.now() > deadline) {
        this.log.log("error", "metrics port still held by the predecessor; metrics off", {
          listen: this.config.metricsListen,
        });
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * How this agent came up: "hand-over" (it took over from a running agent: no pause),
   * "gap" (it re-armed journaled registrations nobody served meanwhile: a restart or a
   * crash paused their doorbells), "fresh" (nothing journaled).
   */
  get startKind(): "hand-over" | "gap" | "fresh" {
    if (this.tookOver !== null) return "hand-over";
    const r = this.replay;
    return r !== null && r.rearmed + r.needsSource.length + r.orphaned.length > 0 ? "gap" : "fresh";
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
          "take-over",
          // How this agent came up, for the rollout gate (ioeventctl fleet rollout-gate).
          `start:${this.startKind}`,
        ],
      },
      startedAt: timestampFromMs(this.startedAtMs),
      ready: this.replay !== null,
      warnings,
    };
  }

  /**
   * Handed over, staying (afterHandOver "linger", Kubernetes): everything stops but the
   * /healthz and /readyz endpoints (alive, not ready), until SIGTERM.
   */
  async retire(): Promise<void> {
    const http = this.metricsHttp;
    this.metricsHttp = null; // kept open: the kubelet's probes
    await this.stop();
    this.metricsHttp = http;
  }

  /**
   * Graceful stop: refuse mutations, finish in-flight calls, close the journal. After a
   * hand-over the journal is the successor's: nothing more is written to it.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.serving = false;
      if (this.#onHangup) Deno.removeSignalListener("SIGHUP", this.#onHangup);
      this.registry.stopAccepting();
      await this.#upgrade?.close();
      if (this.#handoverTimer !== null) clearInterval(this.#handoverTimer);
      this.inventory.stop();
      // The paths stay while a successor's sockets are there (renamed over ours).
      this.#published.unpublish();
      await this.server.stop(this.config.shutdownGraceMs);
      await this.tracing?.shutdown();
      await this.metricsHttp?.close();
      this.metrics.stop();
      if (!this.#released) await this.registry.closeJournal(); // the last group commit is on disk
      this.journal.close();
      this.security.close();
      // What this agent wrote over its life (a restart's successor adds its own to it):
      // disarmed first (a barrier each), so the count is final; closing would drop them
      // all the same. Kernel-served ones count nothing here.
      let triggers = 0n;
      if (!this.#released) {
        const ids = this.registry.all()
          .filter((r) => r.nativeId !== null && r.backend !== "kernel")
          .map((r) => r.nativeId!);
        for (const o of this.engine.unregisterMany(ids)) if (o.ok) triggers += o.final.triggers;
      }
      // The eventfds stay open in their owners: the kernel keeps counting signals until the
      // next agent re-arms them. Closing the engine only drops our duplicates.
      this.engine.close();
      // Unused handles are closed; handed-over registrations wait for a re-send.
      this.handover?.close();
      this.#handoverPort.current = null;
      await this.#eventsDone;
      this.log.log("info", this.#released ? "ioeventd stopped (handed over)" : "ioeventd stopped", {
        triggers: String(triggers),
      });
    })();
    return this.#stopping;
  }
}

/** Whether the TCP `host:port` of a gRPC listen address can be bound now (probed, then let go). */
function tcpPortFree(address: string): boolean {
  const at = address.lastIndexOf(":");
  const hostname = address.slice(0, at).replace(/^dns:/, "").replace(/^\[|\]$/g, "");
  try {
    Deno.listen({ hostname: hostname || "0.0.0.0", port: Number(address.slice(at + 1)) }).close();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) return false;
    return true; // anything else is the bind's own error to report
  }
}
