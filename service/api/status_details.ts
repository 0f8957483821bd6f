// Rejections on the wire: the gRPC status code, a readable message, and a google.rpc.Status
// with ErrorInfo (the machine-readable reason) and BadRequest (the offending fields) in the
// standard `grpc-status-details-bin` trailer, so any gRPC client can read them.
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { Rejection, type StatusCode } from "../rejection/rejection.ts";
import { statusTypes } from "./proto.ts";

export const ERROR_DOMAIN = "ioeventd.v1";

const CODES: Record<StatusCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  OUT_OF_RANGE: grpc.status.OUT_OF_RANGE,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  INTERNAL: grpc.status.INTERNAL,
};

export function grpcCode(code: StatusCode): grpc.status {
  return CODES[code];
}

/** Any error thrown by a handler, as the ServiceError grpc-js sends. */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const e = err instanceof Rejection
    ? err
    : new Rejection("ENGINE_FAILURE", `internal error: ${(err as Error)?.message ?? err}`);
  const { Status, ErrorInfo, BadRequest } = statusTypes();
  const any = (type: string, bytes: Uint8Array) => ({
    type_url: `type.googleapis.com/${type}`,
    value: bytes,
  });
  const details = [
    any(
      "google.rpc.ErrorInfo",
      ErrorInfo.encode(
        ErrorInfo.fromObject({ reason: e.reason, domain: ERROR_DOMAIN, metadata: e.metadata }),
      ).finish(),
    ),
  ];
  if (e.violations.length > 0) {
    details.push(any(
      "google.rpc.BadRequest",
      BadRequest.encode(BadRequest.fromObject({
        fieldViolations: e.violations.map((v) => ({
          field: v.field,
          description: v.description,
          reason: v.reason,
        })),
      })).finish(),
    ));
  }
  const code = grpcCode(e.code);
  const status = Status.encode(Status.fromObject({ code, message: e.message, details })).finish();
  const metadata = new grpc.Metadata();
  metadata.set("grpc-status-details-bin", Buffer.from(status));
  return { code, details: e.message, metadata };
}

export interface DecodedStatus {
  code: number;
  message: string;
  reason: string;
  metadata: Record<string, string>;
  violations: { field: string; description: string; reason: string }[];
}

/** Reads the details back from a failed call (the CLI and the tests use this). */
export function decodeStatus(err: grpc.ServiceError): DecodedStatus | null {
  const raw = err.metadata?.get("grpc-status-details-bin")?.[0];
  if (!raw || typeof raw === "string") return null;
  const { Status, ErrorInfo, BadRequest } = statusTypes();
  const status = Status.toObject(Status.decode(raw), { defaults: true }) as {
    code: number;
    message: string;
    details: { type_url: string; value: Uint8Array }[];
  };
  const out: DecodedStatus = {
    code: status.code,
    message: status.message,
    reason: "",
    metadata: {},
    violations: [],
  };
  for (const d of status.details) {
    if (d.type_url.endsWith("/google.rpc.ErrorInfo")) {
      const info = ErrorInfo.toObject(ErrorInfo.decode(d.value), { defaults: true }) as {
        reason: string;
        metadata: Record<string, string>;
      };
      out.reason = info.reason;
      out.metadata = info.metadata;
    } else if (d.type_url.endsWith("/google.rpc.BadRequest")) {
      const bad = BadRequest.toObject(BadRequest.decode(d.value), { defaults: true }) as {
        fieldViolations: { field: string; description: string; reason: string }[];
      };
      out.violations = bad.fieldViolations;
    }
  }
  return out;
}
