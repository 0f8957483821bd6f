// Tracing is configured only by the standard OpenTelemetry environment variables: it is on
// when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or _TRACES_ENDPOINT) and
// OTEL_SDK_DISABLED is not true, and then exports spans with OTLP/HTTP (JSON). Off, it costs
// nothing: the SDK is not even loaded and no interceptor is installed. Deno's built-in
// OpenTelemetry (OTEL_DENO) is not used: it cannot see grpc-js calls.
import type { ServerInterceptor } from "@grpc/grpc-js";
import type { Sampler } from "@opentelemetry/sdk-trace";
import { hostname } from "node:os";
import type { Logger } from "../log.ts";
import { VERSION } from "../version.ts";

export interface Tracing {
  /** The grpc-js server interceptor making one span per RPC. */
  readonly interceptor: ServerInterceptor;
  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void>;
}

type Env = Record<string, string | undefined>;

/** Why tracing is off with this environment, or null when it is on. */
export function tracingDisabledReason(env: Env): string | null {
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") {
    return "OTEL_SDK_DISABLED";
  }
  const exporters = (env.OTEL_TRACES_EXPORTER ?? "otlp").split(",").map((s) => s.trim());
  if (!exporters.includes("otlp")) return "OTEL_TRACES_EXPORTER does not name otlp";
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    return "no OTLP endpoint";
  }
  return null;
}

export async function startTracing(
  log: Logger,
  env: Env = Deno.env.toObject(),
): Promise<Tracing | null> {
  if (tracingDisabledReason(env) !== null) return null;
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol && protocol !== "http/json") {
    log.log("warn", "OTLP protocol not supported, exporting http/json instead", { protocol });
  }
  try {
    return await load(log, env);
  } catch (err) {
    // Telemetry must never keep the agent from serving.
    log.log("error", "tracing disabled: OpenTelemetry failed to start", { error: String(err) });
    return null;
  }
}

async function load(log: Logger, env: Env): Promise<Tracing> {
  const [sdk, otlp, resources, core, { tracingInterceptor }] = await Promise.all([
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/core"),
    import("./interceptor.ts"),
  ]);
  // Defaults first: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override them.
  const resource = resources.defaultResource()
    .merge(resources.resourceFromAttributes({
      "service.name": "ioeventd",
      "service.version": VERSION,
      "host.name": hostname(),
    }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  // The exporter reads the OTEL_EXPORTER_OTLP_* variables itself (endpoint, headers, timeout);
  // this SDK generation no longer reads the sampler's and batch processor's, so they are here.
  const provider = new sdk.TracerProvider({
    resource,
    sampler: samplerFromEnv(sdk, env),
    spanProcessors: [
      new sdk.BatchSpanProcessor({
        exporter: new otlp.OTLPTraceExporter(),
        scheduledDelayMillis: positive(env.OTEL_BSP_SCHEDULE_DELAY),
        exportTimeoutMillis: positive(env.OTEL_BSP_EXPORT_TIMEOUT),
        maxQueueSize: positive(env.OTEL_BSP_MAX_QUEUE_SIZE),
        maxExportBatchSize: positive(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE),
      }),
    ],
  });
  const tracer = provider.getTracer("ioeventd", VERSION);
  log.log("info", "tracing enabled", {
    endpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT,
  });
  return {
    interceptor: tracingInterceptor(tracer, new core.W3CTraceContextPropagator()),
    shutdown: () => provider.shutdown(),
  };
}

function positive(value: string | undefined): number | undefined {
  const n = Number(value);
  return value !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG; the default follows the caller's decision. */
function samplerFromEnv(sdk: typeof import("@opentelemetry/sdk-trace"), env: Env): Sampler {
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG ?? "1");
  const ratio = Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : 1;
  switch ((env.OTEL_TRACES_SAMPLER ?? "").trim().toLowerCase()) {
    case "always_on":
      return new sdk.AlwaysOnSampler();
    case "always_off":
      return new sdk.AlwaysOffSampler();
    case "traceidratio":
      return new sdk.TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_off":
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(ratio) });
    default:
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
  }
}
