// The agent: wires the inventory, the native engine, the registry (with its journal) and
// the API together, and owns start-up (replay before serving) and graceful shutdown.
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { Buffer } from "node:buffer";
import { hostname } from "node:os";
import { dirname } from "node:path";
import type { AgentInfo } from "./api/generated/ioeventd/v1/AgentInfo.ts";
import { timestampFromMs } from "./api/convert.ts";
import { ApiServer } from "./api/server.ts";
import { type AgentConfig, journalPath, REAL_SYSFS, simulatedSysfsRoot } from "./config.ts";
import { Inventory, isEmptyChange } from "./devices/inventory.ts";
import { DevicePolicy } from "./devices/policy.ts";
import { createSimulatedHost } from "./devices/simulate.ts";
import type { Logger } from "./log.ts";
import { NativeEngine, POLL_MODES } from "./native/engine.ts";
import { Journal } from "./registry/journal.ts";
import { Registry, type ReplayReport } from "./registry/registry.ts";
import { WIDTHS } from "./registry/validation.ts";
import { API_VERSIONS, buildRevision, VERSION } from "./version.ts";

/** Longest sun_path Linux accepts, NUL included. */
const UNIX_PATH_MAX = 108;

function prepareUnixSocket(address: string): void {
  const path = address.replace(/^unix:(\/\/)?/, "");
  if (Buffer.byteLength(path) >= UNIX_PATH_MAX) {
    throw new Error(`socket path ${path} is longer than ${UNIX_PATH_MAX - 1} bytes`);
  }
  // Only the agent's user may reach the socket's directory.
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  Deno.chmodSync(dirname(path), 0o700);
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
  replay: ReplayReport | null = null;
  /** Time from start to every journaled ioeventfd armed again. */
  rearmMs: number | null = null;
  #stopping: Promise<void> | null = null;
  #eventsDone: Promise<void> | null = null;

  private constructor(
    readonly config: AgentConfig,
    readonly log: Logger,
    readonly inventory: Inventory,
    readonly engine: NativeEngine,
    readonly journal: Journal,
    readonly registry: Registry,
    readonly server: ApiServer,
  ) {}

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
    });
    await inventory.scan();

    const engine = NativeEngine.open({
      workers: config.workers,
      canaryPeriodUs: config.canaryPeriodUs,
      pollMode: config.pollMode,
      spinBudgetUs: config.spinBudgetUs,
    });
    const journal = Journal.open(journalPath(config));
    const registry = new Registry(
      engine,
      journal,
      inventory,
      { maxPerDevice: config.maxPerDevice, maxPerOwner: config.maxPerOwner },
      WIDTHS,
    );
    let agent: Agent | null = null;
    const server = new ApiServer({
      registry,
      devices: inventory,
      agentInfo: () => agent!.info(),
    }, { listen: config.listen, reflection: config.reflection });
    agent = new Agent(config, log, inventory, engine, journal, registry, server);

    // Re-arm before serving: a caller never sees a half-recovered agent.
    agent.replay = registry.replay();
    agent.rearmMs = performance.now() - t0;
    log.log("info", "journal replayed", {
      rearmed: agent.replay.rearmed,
      orphaned: agent.replay.orphaned.length,
      dropped: agent.replay.dropped,
      replay_ms: Math.round(agent.replay.durationMs),
      rearm_ms: Math.round(agent.rearmMs),
    });

    for (const address of config.listen) {
      if (address.startsWith("unix:")) prepareUnixSocket(address);
      else log.log("warn", "plaintext TCP listener enabled", { address });
    }
    await server.start();
    server.setServing(true);
    agent.#watchEngine();
    inventory.startPeriodic(config.rescanIntervalMs, (change) => {
      if (isEmptyChange(change)) return;
      const orphaned = registry.devicesChanged([...change.removed, ...change.changed]);
      log.log("warn", "devices changed", { ...change, orphaned: orphaned.map((r) => r.id) });
    });
    log.log("info", "ioeventd serving", {
      version: VERSION,
      listen: server.bound,
      devices: inventory.list().length,
      managed: inventory.list().filter((d) => d.managed).length,
      workers: config.workers,
      poll_mode: config.pollMode,
    });
    return agent;
  }

  #watchEngine(): void {
    this.#eventsDone = (async () => {
      for await (const event of this.engine.events()) {
        const removed = this.registry.sourceExited(event.pid, event.startTime);
        this.log.log("info", "source process exited", {
          pid: event.pid,
          removed: removed.map((r) => r.id),
        });
      }
    })();
  }

  info(): AgentInfo {
    const warnings = this.config.listen.filter((a) => !a.startsWith("unix:"))
      .map((a) => `plaintext TCP listener ${a}: callers are not authenticated`);
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
        backends: ["user-mmap"],
        pollModes: [...POLL_MODES],
        pollMode: this.config.pollMode,
        workers: this.config.workers,
        features: ["reconcile", "watch", "request-id", "source-exit-cleanup", "journal"],
      },
      startedAt: timestampFromMs(this.startedAtMs),
      ready: this.replay !== null,
      warnings,
    };
  }

  /** Graceful stop: refuse mutations, finish in-flight calls, close the journal. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.registry.stopAccepting();
      this.inventory.stop();
      await this.server.stop(this.config.shutdownGraceMs);
      this.journal.close();
      // The eventfds stay open in their owners: the kernel keeps counting signals until the
      // next agent re-arms them. Closing the engine only drops our duplicates.
      this.engine.close();
      await this.#eventsDone;
      this.log.log("info", "ioeventd stopped", {});
    })();
    return this.#stopping;
  }
}
