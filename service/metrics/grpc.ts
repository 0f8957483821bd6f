// RPC metrics, named and labelled as go-grpc-prometheus does (grpc_server_*; grpc_type,
// grpc_service, grpc_method, grpc_code) so that stock gRPC dashboards and alerts work.
// Recorded by a grpc-js server interceptor, and pre-initialised to zero for every method.
//
// Refused calls are also counted by method and ErrorInfo reason
// (ioeventd_requests_rejected_total), read from the status details every rejection carries.
// With tracing on, the latency histogram's buckets carry exemplars: the trace id of the
// caller's W3C traceparent (the trace the agent's span joins), shown in the OpenMetrics
// exposition only.
import * as grpc from "@grpc/grpc-js";
import { Counter, Histogram, type Registry as PromRegistry } from "prom-client";
import { statusTypes } from "../api/proto.ts";
import { REASONS } from "../rejection/rejection.ts";

/** gRPC status codes as Go's codes.Code.String() spells them: the grpc_code values. */
export const CODE_NAMES: readonly string[] = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

/** Unary calls of this agent take well under a millisecond: buckets start below that. */
const HANDLING_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** The methods that change registrations: their rejection series exist from the start. */
export const MUTATIONS = ["CreateIoeventfd", "DeleteIoeventfd", "ReconcileOwner"];
const SERVICE = "ioeventd.v1.IoeventfdService";

/** The ErrorInfo reason of a refused call's status details, as a bounded label value. */
export function rejectionReason(metadata: grpc.Metadata | undefined): string {
  const raw = metadata?.get("grpc-status-details-bin")?.[0];
  if (!raw || typeof raw === "string") return "NONE";
  try {
    const { Status, ErrorInfo } = statusTypes();
    const status = Status.decode(raw) as unknown as {
      details: { type_url: string; value: Uint8Array }[];
    };
    for (const d of status.details ?? []) {
      if (!d.type_url.endsWith("/google.rpc.ErrorInfo")) continue;
      const { reason } = ErrorInfo.decode(d.value) as unknown as { reason: string };
      return /^[A-Z][A-Z0-9_]{0,63}$/.test(reason) ? reason : "OTHER";
    }
  } catch { /* not a google.rpc.Status */ }
  return "NONE";
}

/** The trace id of a W3C traceparent ("00-<32 hex>-<16 hex>-<flags>"), if valid. */
export function traceIdOf(metadata: grpc.Metadata): string | null {
  const v = metadata.get("traceparent")[0];
  if (typeof v !== "string") return null;
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(v.trim());
  return m && !/^0+$/.test(m[1]) ? m[1] : null;
}

export interface RpcMetricsOptions {
  /**
   * Exemplars (trace_id) on grpc_server_handling_seconds; the registry must render
   * OpenMetrics for them to show (AgentMetrics' OpenMetrics view does).
   */
  exemplars?: boolean;
}

type Labels = "grpc_type" | "grpc_service" | "grpc_method";
type CodeLabels = Labels | "grpc_code";

/** What a method looks like to grpc-js: its path and streaming flags. */
export interface MethodShape {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
}

/** "/pkg.Service/Method" → its labels; the RPC type from the streaming flags. */
export function methodLabels(m: MethodShape): Record<Labels, string> {
  const [, service = "unknown", method = "unknown"] = /^\/([^/]*)\/(.*)$/.exec(m.path) ?? [];
  const type = m.requestStream
    ? (m.responseStream ? "bidi_stream" : "client_stream")
    : (m.responseStream ? "server_stream" : "unary");
  return { grpc_type: type, grpc_service: service, grpc_method: method };
}

/** The metric children of one method, resolved once so a call does no label hashing. */
interface MethodMetrics {
  labels: Record<Labels, string>;
  started: { inc(): void };
  received: { inc(): void };
  sent: { inc(): void };
  handling: { observe(v: number): void };
  handled: ({ inc(): void } | undefined)[];
}

export class RpcMetrics {
  readonly #started: Counter<Labels>;
  readonly #handled: Counter<CodeLabels>;
  readonly #handling: Histogram<Labels>;
  readonly #received: Counter<Labels>;
  readonly #sent: Counter<Labels>;
  readonly #rejected: Counter<"grpc_method" | "reason">;
  readonly #exemplars: boolean;
  readonly #methods = new Map<string, MethodMetrics>();

  constructor(registry: PromRegistry, options: RpcMetricsOptions = {}) {
    this.#exemplars = options.exemplars ?? false;
    const labelNames: Labels[] = ["grpc_type", "grpc_service", "grpc_method"];
    const registers = [registry];
    this.#started = new Counter({
      name: "grpc_server_started_total",
      help: "RPCs started on the server.",
      labelNames,
      registers,
    });
    this.#handled = new Counter({
      name: "grpc_server_handled_total",
      help: "RPCs completed on the server, whatever their outcome, by status code.",
      labelNames: [...labelNames, "grpc_code"],
      registers,
    });
    // prom-client refuses exemplars on a metric registered in a Prometheus-format registry
    // at construction; registered afterwards, the Prometheus text leaves them out and the
    // OpenMetrics view shows them.
    this.#handling = new Histogram({
      name: "grpc_server_handling_seconds",
      help: "Time from an RPC's start to its status sent (or its cancellation).",
      labelNames,
      buckets: HANDLING_BUCKETS,
      registers: [],
      enableExemplars: this.#exemplars,
    });
    registry.registerMetric(this.#handling);
    this.#rejected = new Counter({
      name: "ioeventd_requests_rejected_total",
      help: "Calls of ioeventd.v1.IoeventfdService answered with an error, by method and " +
        "ErrorInfo reason: a create or reconcile the registry refused (DUPLICATE, " +
        "LIMIT_REACHED, ...), a delete of nothing (DeleteIoeventfd, NOT_FOUND), a security " +
        "refusal (PERMISSION_DENIED, RATE_LIMITED, ...). NONE: no ErrorInfo (e.g. cancelled).",
      labelNames: ["grpc_method", "reason"],
      registers,
    });
    for (const grpc_method of MUTATIONS) {
      for (const reason of Object.keys(REASONS)) this.#rejected.inc({ grpc_method, reason }, 0);
    }
    this.#received = new Counter({
      name: "grpc_server_msg_received_total",
      help: "Request messages received by the server.",
      labelNames,
      registers,
    });
    this.#sent = new Counter({
      name: "grpc_server_msg_sent_total",
      help: "Response messages sent by the server (watch events included).",
      labelNames,
      registers,
    });
  }

  /** Creates every series of these services' methods at zero, every status code included. */
  initialise(services: readonly grpc.ServiceDefinition[]): void {
    for (const service of services) {
      for (const method of Object.values(service)) {
        const m = this.#method(method);
        for (let code = 0; code < CODE_NAMES.length; code++) this.#handledChild(m, code);
        this.#handling.zero(m.labels);
      }
    }
  }

  /** The grpc-js server interceptor that records every call. */
  readonly interceptor: grpc.ServerInterceptor = (descriptor, call) => {
    const m = this.#method(descriptor);
    const started = performance.now();
    let finished = false;
    let traceId: string | null = null;
    const finish = (code: number, metadata?: grpc.Metadata) => {
      if (finished) return;
      finished = true;
      this.#handledChild(m, code).inc();
      const seconds = (performance.now() - started) / 1000;
      if (traceId !== null) {
        this.#handling.observe({
          labels: m.labels,
          value: seconds,
          exemplarLabels: { trace_id: traceId },
        } as never);
      } else {
        m.handling.observe(seconds);
      }
      if (
        code !== grpc.status.OK && code !== grpc.status.CANCELLED &&
        m.labels.grpc_service === SERVICE
      ) {
        this.#rejected.inc({
          grpc_method: m.labels.grpc_method,
          reason: rejectionReason(metadata),
        });
      }
    };
    m.started.inc();
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            if (this.#exemplars) traceId = traceIdOf(metadata);
            nextMetadata(metadata);
          },
          onReceiveMessage: (message, nextMessage) => {
            m.received.inc();
            nextMessage(message);
          },
          onCancel: () => finish(grpc.status.CANCELLED),
        }),
      sendMessage: (message, next) => {
        m.sent.inc();
        next(message);
      },
      sendStatus: (status, next) => {
        finish(status.code ?? grpc.status.UNKNOWN, status.metadata ?? undefined);
        next(status);
      },
    });
  };

  #method(shape: MethodShape): MethodMetrics {
    let m = this.#methods.get(shape.path);
    if (!m) {
      const labels = methodLabels(shape);
      m = {
        labels,
        started: this.#started.labels(labels),
        received: this.#received.labels(labels),
        sent: this.#sent.labels(labels),
        handling: this.#handling.labels(labels),
        handled: [],
      };
      this.#started.inc(labels, 0);
      this.#received.inc(labels, 0);
      this.#sent.inc(labels, 0);
      this.#methods.set(shape.path, m);
    }
    return m;
  }

  #handledChild(m: MethodMetrics, code: number): { inc(): void } {
    const c = code >= 0 && code < CODE_NAMES.length ? code : grpc.status.UNKNOWN;
    let child = m.handled[c];
    if (!child) {
      const labels = { ...m.labels, grpc_code: CODE_NAMES[c] };
      this.#handled.inc(labels, 0);
      child = m.handled[c] = this.#handled.labels(labels);
    }
    return child;
  }
}
