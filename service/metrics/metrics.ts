// The agent's metrics: one prom-client registry holding the data-plane, control-plane, RPC,
// agent and process metrics. A scrape takes each snapshot once (native counters, the
// registry's state, /proc) and renders; nothing between scrapes costs anything but the RPC
// counters.
import { service as healthService } from "grpc-health-check";
import { Registry as PromRegistry } from "prom-client";
import { api } from "../api/proto.ts";
import type { PciDevice } from "../devices/types.ts";
import { histogramBoundsNs, type NativeEngine } from "../native/engine.ts";
import type { Registry, ReplayReport } from "../registry/registry.ts";
import { type AgentSnapshot, registerAgentMetrics } from "./agent.ts";
import { registerControlPlaneMetrics, registerJournalMetrics } from "./control_plane.ts";
import { DataPlaneMetrics } from "./data_plane.ts";
import { RpcMetrics } from "./grpc.ts";
import { registerProcessMetrics } from "./process.ts";

/** What the metrics read from the agent (service/agent.ts's Agent satisfies it). */
export interface MetricsSource {
  readonly engine: Pick<NativeEngine, "closed" | "info" | "workerStats" | "registrationStats">;
  readonly inventory: { list(): PciDevice[] };
  readonly registry: Pick<Registry, "counters" | "limits" | "watch" | "journalHealth">;
  readonly replay: ReplayReport | null;
  readonly rearmMs: number | null;
  readonly ready: boolean;
}

export interface MetricsOptions {
  /** Per-ioeventfd series and ioeventd_ioeventfd_info (config perIoeventfdMetrics). */
  perIoeventfd: boolean;
}

export class AgentMetrics {
  readonly registry = new PromRegistry();
  readonly rpc: RpcMetrics;
  readonly dataPlane: DataPlaneMetrics;
  readonly #process: { refresh(): void };
  #source: MetricsSource | null = null;
  #agent: AgentSnapshot = {
    ready: false,
    rearmMs: null,
    replay: null,
    devices: [],
    engine: null,
    lastScrapeSeconds: null,
  };
  #scraping: Promise<string> | null = null;

  constructor(options: MetricsOptions) {
    this.dataPlane = new DataPlaneMetrics(this.registry, {
      perIoeventfd: options.perIoeventfd,
      histogramBoundsNs: histogramBoundsNs(),
    });
    registerControlPlaneMetrics(this.registry, () => this.#source?.registry.counters ?? null);
    registerJournalMetrics(this.registry, () => this.#source?.registry.journalHealth ?? null);
    this.rpc = new RpcMetrics(this.registry);
    this.rpc.initialise([api().ioeventd.v1.IoeventfdService.service, healthService]);
    registerAgentMetrics(this.registry, () => this.#agent);
    this.#process = registerProcessMetrics(this.registry);
  }

  /** Starts reading from the agent; call track() once its journal replay has run. */
  bind(source: MetricsSource): void {
    this.#source = source;
  }

  /** Follows the registry's ioeventfds from now on (after the replay, which emits no events). */
  async track(): Promise<void> {
    if (this.#source) await this.dataPlane.track(this.#source.registry);
  }

  stop(): void {
    this.dataPlane.stop();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text. Concurrent scrapes share one rendering. */
  scrape(): Promise<string> {
    this.#scraping ??= this.#render().finally(() => (this.#scraping = null));
    return this.#scraping;
  }

  async #render(): Promise<string> {
    const started = performance.now();
    const src = this.#source;
    const engine = src && !src.engine.closed ? src.engine : null;
    const devices = src?.inventory.list() ?? [];
    this.#agent = {
      ready: src?.ready ?? false,
      rearmMs: src?.rearmMs ?? null,
      replay: src?.replay ?? null,
      devices,
      engine: engine?.info() ?? null,
      lastScrapeSeconds: this.#agent.lastScrapeSeconds,
    };
    if (src && engine) {
      this.dataPlane.update({
        registrations: engine.registrationStats(),
        workers: engine.workerStats(),
        devices,
        maxPerDevice: src.registry.limits.maxPerDevice,
      });
    }
    this.#process.refresh();
    const text = await this.registry.metrics();
    this.#agent.lastScrapeSeconds = (performance.now() - started) / 1000;
    return text;
  }
}
