// One server span per RPC, following OpenTelemetry's RPC semantic conventions (rpc.system,
// rpc.service, rpc.method, rpc.grpc.status_code), continuing the caller's trace when the
// metadata carries a W3C traceparent. Explicit, because OpenTelemetry's gRPC
// auto-instrumentation does not see grpc-js as Deno loads it.
import * as grpc from "@grpc/grpc-js";
import {
  type Attributes,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapPropagator,
  type Tracer,
} from "@opentelemetry/api";
import { messageAttributes } from "./attributes.ts";

/** Reads propagation headers (traceparent, tracestate) from gRPC metadata. */
export const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get(metadata, key) {
    const values = metadata.get(key).filter((v): v is string => typeof v === "string");
    return values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
  },
};

/** Codes a server span reports as an error (the conventions leave the others unset). */
const SERVER_ERRORS = new Set<number>([
  grpc.status.UNKNOWN,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.UNIMPLEMENTED,
  grpc.status.INTERNAL,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

function splitPath(path: string): { service: string; method: string } {
  const m = /^\/([^/]*)\/(.*)$/.exec(path);
  return { service: m?.[1] ?? "unknown", method: m?.[2] ?? path };
}

export function tracingInterceptor(
  tracer: Tracer,
  propagator: TextMapPropagator,
): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const { service, method } = splitPath(descriptor.path);
    const startTime = Date.now();
    let span: Span | null = null;
    /** Request attributes set so far (or waiting for the span, should a message come first). */
    const known: Attributes = {};
    let ended = false;
    const annotate = (attributes: Record<string, string>, overwrite: boolean) => {
      for (const [key, value] of Object.entries(attributes)) {
        if (!overwrite && known[key] !== undefined) continue;
        known[key] = value;
        span?.setAttribute(key, value);
      }
    };
    const end = (code: number, message?: string) => {
      if (ended || span === null) return;
      ended = true;
      span.setAttribute("rpc.grpc.status_code", code);
      if (SERVER_ERRORS.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, message });
      span.end();
    };
    let responses = 0;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const parent = propagator.extract(ROOT_CONTEXT, metadata, metadataGetter);
            span = tracer.startSpan(`${service}/${method}`, {
              kind: SpanKind.SERVER,
              startTime,
              attributes: {
                "rpc.system": "grpc",
                "rpc.service": service,
                "rpc.method": method,
                ...known,
              },
            }, parent);
            nextMetadata(metadata);
          },
          onReceiveMessage: (message, nextMessage) => {
            annotate(messageAttributes(message), true);
            nextMessage(message);
          },
          onCancel: () => end(grpc.status.CANCELLED, "cancelled by the client"),
        }),
      sendMessage: (message, next) => {
        // The first answer of a unary call names what it made or found (CreateIoeventfd's id,
        // owner and device); stream events are left out, they are many and about others.
        if (!descriptor.responseStream && responses++ === 0) {
          annotate(messageAttributes(message), false);
        }
        next(message);
      },
      sendStatus: (status, next) => {
        end(status.code ?? grpc.status.UNKNOWN, status.details);
        next(status);
      },
    });
  };
}
