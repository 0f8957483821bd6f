// The agent's metrics: one prom-client registry holding the data-plane, control-plane, RPC,
// agent and process metrics. A scrape takes each snapshot once (native counters, the
// registry's state, /proc) and renders; nothing between scrapes costs anything but the RPC
// counters.
//
// Two expositions of the same metrics: the Prometheus text format (0.0.4) and OpenMetrics
// 1.0.0 (what Prometheus asks for first; exemplars show only there). The HTTP endpoint picks
// one per request from its Accept header (http.ts negotiate).
import { service as healthService } from "grpc-health-check";
import { type Metric, Registry as PromRegistry } from "prom-client";
import { api } from "../api/proto.ts";
import type { PciDevice } from "../devices/types.ts";
import { histogramBoundsNs, type NativeEngine, processStats } from "../native/engine.ts";
import type { Registry, ReplayReport } from "../registry/registry.ts";
import { type AgentSnapshot, registerAgentMetrics } from "./agent.ts";
import { registerControlPlaneMetrics, registerJournalMetrics } from "./control_plane.ts";
import { DataPlaneMetrics } from "./data_plane.ts";
import { RpcMetrics } from "./grpc.ts";
import { registerProcessMetrics } from "./process.ts";
import { tracingDisabledReason } from "../tracing/setup.ts";
import { type ExpositionFormat, requestedFormat } from "./http.ts";

export const PROMETHEUS_CONTENT_TYPE = PromRegistry.PROMETHEUS_CONTENT_TYPE;
export const OPENMETRICS_CONTENT_TYPE = PromRegistry.OPENMETRICS_CONTENT_TYPE;

/**
 * An OpenMetrics rendering of another registry's metrics. prom-client's own OpenMetrics
 * registry renames every counter it renders (strips `_total` from the metric object itself),
 * which would break the Prometheus text rendered from the same objects afterwards; this view
 * strips the suffix from a copy of each counter's collected data instead.
 */
export class OpenMetricsView {
  /** prom-client's formatter in OpenMetrics mode (its getMetricsAsString, untyped there). */
  readonly #formatter = new (PromRegistry as unknown as new (contentType: string) => {
    getMetricsAsString(metric: unknown): Promise<string>;
  })(PromRegistry.OPENMETRICS_CONTENT_TYPE);

  constructor(private readonly source: PromRegistry) {}

  readonly contentType: string = PromRegistry.OPENMETRICS_CONTENT_TYPE;

  async metrics(): Promise<string> {
    const parts = await Promise.all(
      this.source.getMetricsAsArray().map((metric) =>
        this.#formatter.getMetricsAsString({
          get: async () => {
            const got = await (metric as unknown as Metric).get() as unknown as {
              name: string;
              type: string;
            };
            return got.type === "counter" ? { ...got, name: got.name.replace(/_total$/, "") } : got;
          },
        })
      ),
    );
    return `${parts.join("\n")}\n# EOF\n`;
  }
}

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
  /** Trace-id exemplars on the RPC latency histogram; default: when tracing is on. */
  exemplars?: boolean;
  /** Owners with series of their own; default MAX_OWNER_SERIES (owners.ts). */
  ownerSeriesCap?: number;
}

/** Whether this environment turns tracing on (service/tracing/setup.ts decides the same). */
function tracingOn(): boolean {
  try {
    return tracingDisabledReason(Deno.env.toObject()) === null;
  } catch {
    return false; // no env permission: no tracing either
  }
}

export class AgentMetrics {
  readonly registry = new PromRegistry();
  readonly openMetrics = new OpenMetricsView(this.registry);
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
  readonly #scraping = new Map<ExpositionFormat, Promise<string>>();
  /** Renders run one after the other: they update the same samples in place. */
  #renders: Promise<unknown> = Promise.resolve();

  constructor(options: MetricsOptions) {
    this.dataPlane = new DataPlaneMetrics(this.registry, {
      perIoeventfd: options.perIoeventfd,
      histogramBoundsNs: histogramBoundsNs(),
      ownerSeriesCap: options.ownerSeriesCap,
    });
    registerControlPlaneMetrics(this.registry, () => this.#source?.registry.counters ?? null);
    registerJournalMetrics(this.registry, () => this.#source?.registry.journalHealth ?? null);
    this.rpc = new RpcMetrics(this.registry, { exemplars: options.exemplars ?? tracingOn() });
    this.rpc.initialise([api().ioeventd.v1.IoeventfdService.service, healthService]);
    registerAgentMetrics(this.registry, () => this.#agent);
    this.#process = registerProcessMetrics(this.registry, processStats);
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

  /** The Prometheus text format's; http.ts answers each request with its format's own. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The exposition text in `format`; without one, the format the HTTP request being served
   * negotiated (http.ts), else Prometheus text. Concurrent scrapes of a format share one
   * rendering.
   */
  scrape(format: ExpositionFormat = requestedFormat() ?? "prometheus"): Promise<string> {
    let scraping = this.#scraping.get(format);
    if (!scraping) {
      scraping = this.#renders.then(() => this.#render(format)).finally(() =>
        this.#scraping.delete(format)
      );
      this.#renders = scraping.catch(() => {});
      this.#scraping.set(format, scraping);
    }
    return scraping;
  }

  async #render(format: ExpositionFormat): Promise<string> {
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
    const text = format === "openmetrics"
      ? await this.openMetrics.metrics()
      : await this.registry.metrics();
    this.#agent.lastScrapeSeconds = (performance.now() - started) / 1000;
    return text;
  }
}
