// The rejection vocabulary, shared by every layer that refuses a request (validation, the
// registry, the security interceptor): a machine-readable reason, the gRPC status code it
// maps to, and the request fields at fault. The API turns a Rejection into google.rpc.Status
// details; the CLI and the audit log read them back.

/** Canonical gRPC status code names (the API layer maps them to numbers). */
export type StatusCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "OUT_OF_RANGE"
  | "UNAVAILABLE"
  | "INTERNAL";

/** Every rejection reason, with the status code it carries (documented in the proto). */
export const REASONS = {
  DEVICE_NOT_FOUND: "NOT_FOUND",
  DEVICE_NOT_MANAGED: "FAILED_PRECONDITION",
  BAR_OUT_OF_RANGE: "INVALID_ARGUMENT",
  BAR_NOT_MAPPABLE: "FAILED_PRECONDITION",
  WIDTH_UNSUPPORTED: "INVALID_ARGUMENT",
  UNALIGNED: "INVALID_ARGUMENT",
  OUT_OF_BAR: "OUT_OF_RANGE",
  OVERLAPS_MSIX_TABLE: "INVALID_ARGUMENT",
  OVERLAPS_MSIX_PBA: "INVALID_ARGUMENT",
  DATA_OUT_OF_RANGE: "INVALID_ARGUMENT",
  DUPLICATE: "ALREADY_EXISTS",
  REQUEST_ID_REUSED: "ALREADY_EXISTS",
  LIMIT_REACHED: "RESOURCE_EXHAUSTED",
  SOURCE_PROCESS_GONE: "FAILED_PRECONDITION",
  SOURCE_FD_INVALID: "FAILED_PRECONDITION",
  SOURCE_NOT_EVENTFD: "FAILED_PRECONDITION",
  SOURCE_ACCESS_DENIED: "PERMISSION_DENIED",
  INVALID_OWNER: "INVALID_ARGUMENT",
  INVALID_LABEL: "INVALID_ARGUMENT",
  NOT_FOUND: "NOT_FOUND",
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  INVALID_PAGE_TOKEN: "INVALID_ARGUMENT",
  ENGINE_FAILURE: "INTERNAL",
  SHUTTING_DOWN: "UNAVAILABLE",
  PERMISSION_DENIED: "PERMISSION_DENIED",
  RATE_LIMITED: "RESOURCE_EXHAUSTED",
  VFIO_DEVICE_INVALID: "FAILED_PRECONDITION",
  JOURNAL_UNAVAILABLE: "UNAVAILABLE",
  WATCH_TOO_SLOW: "RESOURCE_EXHAUSTED",
} as const satisfies Record<string, StatusCode>;

export type Reason = keyof typeof REASONS;

export interface Violation {
  /** Request field path, e.g. "spec.offset" or "desired[2].width". */
  field: string;
  reason: Reason;
  description: string;
}

export class Rejection extends Error {
  readonly code: StatusCode;
  constructor(
    readonly reason: Reason,
    message: string,
    readonly violations: Violation[] = [],
    readonly metadata: Record<string, string> = {},
  ) {
    super(message);
    this.name = "Rejection";
    this.code = REASONS[reason];
  }

  /** The first violation decides reason and code; all of them are reported. */
  static of(violations: Violation[], metadata: Record<string, string> = {}): Rejection {
    const first = violations[0];
    const message = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
    return new Rejection(first.reason, message, violations, metadata);
  }
}
