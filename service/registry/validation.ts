// The one place where an ioeventfd request is judged. The API, the CLI and the journal
// replay all come through here, so a rule holds everywhere or nowhere. It keeps the
// kernel's VFIO_DEVICE_IOEVENTFD rules and adds the ones the kernel leaves out (alignment,
// the MSI-X PBA, data that does not fit the width).
import { normalizePciAddress } from "../devices/pci_address.ts";
import type { PciDevice, Region } from "../devices/types.ts";
import { type Reason, Rejection, type Violation } from "../rejection/rejection.ts";

export type Width = 1 | 2 | 4 | 8;
export const WIDTHS: readonly Width[] = [1, 2, 4, 8];

export interface Source {
  pid: number;
  /** -1 for a handed-over descriptor (then `handle` names it). */
  fd: number;
  /**
   * A handle from the agent's hand-over intake (handover_port.ts), instead of (pid, fd):
   * once taken, `pid` is the sender's and `fd` -1.
   */
  handle?: string;
}

/** The form of a hand-over handle: "h-" and 32 hex digits. */
export const HANDLE = /^h-[0-9a-f]{32}$/;

function sameSource(a: Source, b: Source): boolean {
  if (a.handle || b.handle) return (a.handle ?? "") === (b.handle ?? "");
  return a.pid === b.pid && a.fd === b.fd;
}

/** A request that passed validation: every value parsed and within range. */
export interface Spec {
  device: string;
  bar: number;
  offset: bigint;
  width: Width;
  data: bigint;
  source: Source;
  labels: Record<string, string>;
  /**
   * The VMM's VFIO device descriptor for `device`, taken with pidfd_getfd: the kernel
   * (VFIO_DEVICE_IOEVENTFD) or the engine through the VFIO BAR mapping performs the write.
   * Absent or null: the engine writes through the sysfs resourceN mmap.
   */
  vfioDevice?: Source | null;
}

/** What callers send before validation: anything (proto output, CLI JSON, journal rows). */
export interface RawSpec {
  device?: unknown;
  bar?: unknown;
  offset?: unknown;
  width?: unknown;
  data?: unknown;
  source?: unknown;
  labels?: unknown;
  /** Optional; absent or null means "no VFIO device" (proto: `vfio_device`). */
  vfioDevice?: unknown;
}

export interface ValidationContext {
  device(address: string): PciDevice | undefined;
  /** Widths the write backend can perform as one store. */
  widths: readonly number[];
}

export type Validated<T> = { ok: true; value: T } | { ok: false; violations: Violation[] };

const U64_MAX = (1n << 64n) - 1n;
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/;
const PRINTABLE = /^[\x21-\x7e]+$/;

/** The kernel's identity of an ioeventfd: (device, bar, offset, width, data). */
export function keyOf(
  k: { device: string; bar: number; offset: bigint; width: number; data: bigint },
): string {
  return `${k.device}/${k.bar}/${k.offset}/${k.width}/${k.data}`;
}

/**
 * Whether two specs take their descriptors from the same places: the same eventfd source
 * and the same VFIO device (or none). With the same key, such specs are the same entry (a
 * request_id repeat, an entry ReconcileOwner keeps); otherwise a different one.
 */
export function sameSources(a: Spec, b: Spec): boolean {
  const av = a.vfioDevice ?? null;
  const bv = b.vfioDevice ?? null;
  return sameSource(a.source, b.source) &&
    (av === null ? bv === null : bv !== null && sameSource(av, bv));
}

/** A uint64 given as number, decimal/hex string or bigint; null when not one. */
export function parseU64(value: unknown): bigint | null {
  let n: bigint;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) return null;
    n = BigInt(value);
  } else if (typeof value === "string" && /^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(value)) {
    n = BigInt(value);
  } else return null;
  return n >= 0n && n <= U64_MAX ? n : null;
}

function smallInt(value: unknown, min: number, max: number): number | null {
  const n = typeof value === "string" && /^-?[0-9]{1,10}$/.test(value) ? Number(value) : value;
  return typeof n === "number" && Number.isInteger(n) && n >= min && n <= max ? n : null;
}

function overlaps(bar: number, offset: bigint, width: number, region: Region): boolean {
  if (region.bar !== bar || region.length <= 0) return false;
  const start = BigInt(region.offset);
  const end = start + BigInt(region.length);
  return offset < end && offset + BigInt(width) > start;
}

function hex(n: bigint | number): string {
  return `0x${n.toString(16)}`;
}

export function validateOwner(owner: unknown, field: string): Violation[] {
  if (typeof owner !== "string" || owner.length < 1 || owner.length > 128) {
    return [{ field, reason: "INVALID_OWNER", description: "owner must be 1..128 characters" }];
  }
  if (!PRINTABLE.test(owner)) {
    return [{
      field,
      reason: "INVALID_OWNER",
      description: "owner must be printable ASCII without spaces",
    }];
  }
  return [];
}

export function validateRequestId(requestId: unknown, field: string): Violation[] {
  if (requestId === undefined || requestId === "") return [];
  if (typeof requestId !== "string" || requestId.length > 128 || !PRINTABLE.test(requestId)) {
    return [{
      field,
      reason: "INVALID_ARGUMENT",
      description: "request_id must be at most 128 printable characters",
    }];
  }
  return [];
}

export function validateLabels(labels: unknown, field: string): Validated<Record<string, string>> {
  if (labels === undefined || labels === null) return { ok: true, value: {} };
  if (typeof labels !== "object" || Array.isArray(labels)) {
    return {
      ok: false,
      violations: [{ field, reason: "INVALID_LABEL", description: "labels must be a map" }],
    };
  }
  const entries = Object.entries(labels as Record<string, unknown>);
  const violations: Violation[] = [];
  if (entries.length > 32) {
    violations.push({ field, reason: "INVALID_LABEL", description: "at most 32 labels" });
  }
  for (const [key, value] of entries) {
    if (!LABEL_KEY.test(key)) {
      violations.push({
        field: `${field}[${JSON.stringify(key)}]`,
        reason: "INVALID_LABEL",
        description:
          "label keys are 1..63 characters of [A-Za-z0-9._/-], alphanumeric at both ends",
      });
    } else if (typeof value !== "string" || value.length > 255) {
      violations.push({
        field: `${field}[${JSON.stringify(key)}]`,
        reason: "INVALID_LABEL",
        description: "label values are strings of at most 255 characters",
      });
    }
  }
  return violations.length > 0
    ? { ok: false, violations }
    : { ok: true, value: Object.fromEntries(entries) as Record<string, string> };
}

/**
 * A `source` or `vfio_device`: a handle (pid and fd then ignored), or (pid > 0, fd >= 0).
 * null when malformed (reported through `bad`).
 */
function sourceOf(
  raw: unknown,
  name: string,
  bad: (field: string, reason: Reason, description: string) => void,
): Source | null {
  const src = typeof raw === "object" && raw !== null
    ? raw as { pid?: unknown; fd?: unknown; handle?: unknown }
    : null;
  if (src !== null && src.handle !== undefined && src.handle !== null && src.handle !== "") {
    if (typeof src.handle !== "string" || !HANDLE.test(src.handle)) {
      bad(
        `${name}.handle`,
        "INVALID_ARGUMENT",
        `${name}.handle must be a hand-over handle (h-<32 hex digits>)`,
      );
      return null;
    }
    return { pid: 0, fd: -1, handle: src.handle };
  }
  const pid = src !== null ? smallInt(src.pid, 1, 2 ** 31 - 1) : null;
  const fd = src !== null ? smallInt(src.fd, 0, 2 ** 31 - 1) : null;
  if (pid === null) bad(`${name}.pid`, "INVALID_ARGUMENT", `${name}.pid must be a process id > 0`);
  if (fd === null) {
    bad(`${name}.fd`, "INVALID_ARGUMENT", `${name}.fd must be a file descriptor >= 0`);
  }
  return pid !== null && fd !== null ? { pid, fd } : null;
}

/** A spec's values as far as they are well-formed (null where not), and what is wrong. */
interface Shape {
  device: string | null;
  bar: number | null;
  width: Width | null;
  offset: bigint | null;
  data: bigint | null;
  source: Source | null;
  vfioDevice: Source | null;
  labels: Record<string, string>;
  violations: Violation[];
}

function shapeOf(raw: RawSpec, at: string): Shape {
  const violations: Violation[] = [];
  const bad = (field: string, reason: Reason, description: string) =>
    violations.push({ field: `${at}${field}`, reason, description });

  const device = typeof raw.device === "string" ? normalizePciAddress(raw.device) : null;
  if (device === null) {
    bad("device", "INVALID_ARGUMENT", "device must be a PCI address like 0000:65:00.0");
  }
  const bar = smallInt(raw.bar, 0, 5);
  if (bar === null) bad("bar", "BAR_OUT_OF_RANGE", "bar must be 0..5");
  const anyWidth = smallInt(raw.width, 0, 2 ** 31);
  const width = anyWidth !== null && (WIDTHS as readonly number[]).includes(anyWidth)
    ? anyWidth as Width
    : null;
  if (width === null) bad("width", "WIDTH_UNSUPPORTED", "width must be 1, 2, 4 or 8 bytes");
  const offset = parseU64(raw.offset ?? 0);
  if (offset === null) {
    bad("offset", "INVALID_ARGUMENT", "offset must be an unsigned 64-bit integer");
  }
  let data = parseU64(raw.data ?? 0);
  if (data === null) bad("data", "DATA_OUT_OF_RANGE", "data must be an unsigned 64-bit integer");
  else if (width !== null && data >> BigInt(8 * width) !== 0n) {
    bad("data", "DATA_OUT_OF_RANGE", `data ${hex(data)} does not fit in ${width} bytes`);
    data = null;
  }
  const source = sourceOf(raw.source, "source", bad);
  // Optional, same shape as `source`: only presence switches the backend.
  const vfioDevice = raw.vfioDevice !== undefined && raw.vfioDevice !== null
    ? sourceOf(raw.vfioDevice, "vfio_device", bad)
    : null;
  const labels = validateLabels(raw.labels, `${at}labels`);
  if (!labels.ok) violations.push(...labels.violations);
  return {
    device,
    bar,
    width,
    offset,
    data,
    source,
    vfioDevice,
    labels: labels.ok ? labels.value : {},
    violations,
  };
}

/** Every value has the right type and range; nothing about the device yet (the CLI checks
 * this locally before it sends anything). */
export function validateShape(raw: RawSpec, at = "spec."): Validated<Spec> {
  const s = shapeOf(raw, at);
  if (s.violations.length > 0) return { ok: false, violations: s.violations };
  return {
    ok: true,
    value: {
      device: s.device!,
      bar: s.bar!,
      offset: s.offset!,
      width: s.width!,
      data: s.data!,
      source: s.source!,
      labels: s.labels,
      vfioDevice: s.vfioDevice,
    },
  };
}

/**
 * The order in which a spec's fields are judged, and so the order of a rejection's field
 * violations (the first one gives ErrorInfo.reason). The proto documents the same order.
 */
const FIELD_ORDER = [
  "device",
  "bar",
  "width",
  "offset",
  "data",
  "source",
  "vfio_device",
  "labels",
] as const;

function rank(field: string, at: string): number {
  const name = field.slice(at.length).split(/[.[]/)[0];
  const i = (FIELD_ORDER as readonly string[]).indexOf(name);
  return i < 0 ? FIELD_ORDER.length : i;
}

/**
 * The device rules, for each field that is well-formed: the device exists and is managed;
 * the BAR can take ioeventfds; the width is one this host writes; the offset is aligned,
 * inside the BAR and clear of the MSI-X table and PBA (the first of these that fails).
 */
function checkAgainstDevice(s: Shape, ctx: ValidationContext, at: string): Violation[] {
  const out: Violation[] = [];
  const bad = (field: string, reason: Reason, description: string) =>
    out.push({ field: `${at}${field}`, reason, description });
  if (s.width !== null && !ctx.widths.includes(s.width)) {
    bad("width", "WIDTH_UNSUPPORTED", `this host does not perform ${s.width}-byte writes`);
  }
  if (s.device === null) return out;
  const dev = ctx.device(s.device);
  if (!dev) {
    bad("device", "DEVICE_NOT_FOUND", `no PCI device ${s.device} on this host`);
    return out;
  }
  if (!dev.managed) {
    bad(
      "device",
      "DEVICE_NOT_MANAGED",
      `device ${s.device} is not managed by ioeventd (${dev.unmanagedReason ?? "policy"})`,
    );
    return out;
  }
  if (s.bar === null) return out;
  const bar = dev.bars[s.bar];
  if (!bar || !bar.eligible) {
    bad(
      "bar",
      "BAR_NOT_MAPPABLE",
      `BAR ${s.bar} of ${s.device} cannot take ioeventfds (${bar?.ineligibleReason ?? "ABSENT"})`,
    );
    return out;
  }
  const { offset, width } = s;
  if (offset === null || width === null) return out;
  if (offset % BigInt(width) !== 0n) {
    bad("offset", "UNALIGNED", `offset ${hex(offset)} is not a multiple of the width ${width}`);
  } else if (offset + BigInt(width) > BigInt(bar.length)) {
    bad(
      "offset",
      "OUT_OF_BAR",
      `offset ${hex(offset)} + ${width} is beyond BAR ${s.bar} (${hex(bar.length)} bytes)`,
    );
  } else if (dev.msix && overlaps(s.bar, offset, width, dev.msix.table)) {
    const t = dev.msix.table;
    bad(
      "offset",
      "OVERLAPS_MSIX_TABLE",
      `write overlaps the MSI-X vector table (BAR ${t.bar} ${hex(t.offset)}..${
        hex(t.offset + t.length)
      })`,
    );
  } else if (dev.msix && overlaps(s.bar, offset, width, dev.msix.pba)) {
    const p = dev.msix.pba;
    bad(
      "offset",
      "OVERLAPS_MSIX_PBA",
      `write overlaps the MSI-X pending-bit array (BAR ${p.bar} ${hex(p.offset)}..${
        hex(p.offset + p.length)
      })`,
    );
  }
  return out;
}

/**
 * Validates one ioeventfd request. `at` prefixes field paths ("spec." for a create,
 * "desired[3]." in a reconcile). Every violated field is reported, in FIELD_ORDER; a field
 * reports its first failing rule (for the offset: alignment, then bounds, then MSI-X).
 */
export function validateSpec(raw: RawSpec, ctx: ValidationContext, at = "spec."): Validated<Spec> {
  if (raw === null || typeof raw !== "object") {
    return {
      ok: false,
      violations: [{
        field: at.replace(/\.$/, ""),
        reason: "INVALID_ARGUMENT",
        description: "spec is required",
      }],
    };
  }
  const s = shapeOf(raw, at);
  const violations = [...s.violations, ...checkAgainstDevice(s, ctx, at)]
    .map((v, i) => ({ v, i }))
    .sort((a, b) => rank(a.v.field, at) - rank(b.v.field, at) || a.i - b.i)
    .map(({ v }) => v);
  if (violations.length > 0) return { ok: false, violations };
  return validateShape(raw, at);
}

/**
 * The device rules: a spec that fails one of them has lost its device, not its shape; they
 * are the causes an ioeventfd is ORPHANED by (Ioeventfd.orphan_cause, the metrics' label).
 */
export const ORPHAN_CAUSES: readonly Reason[] = [
  "DEVICE_NOT_FOUND",
  "DEVICE_NOT_MANAGED",
  "BAR_NOT_MAPPABLE",
  "WIDTH_UNSUPPORTED",
  "OUT_OF_BAR",
  "OVERLAPS_MSIX_TABLE",
  "OVERLAPS_MSIX_PBA",
];
const DEVICE_REASONS: ReadonlySet<Reason> = new Set(ORPHAN_CAUSES);

/**
 * Why an accepted spec may no longer be written, judged against the device as it is now: the
 * first device rule it fails (e.g. OVERLAPS_MSIX_TABLE after the table moved onto it), or
 * null when it still passes them all. Its shape was checked when it was accepted.
 */
export function orphanCause(spec: Spec, ctx: ValidationContext): Reason | null {
  const raw: RawSpec = { ...spec };
  const v = validateSpec(raw, ctx);
  if (v.ok) return null;
  return v.violations.find((x) => DEVICE_REASONS.has(x.reason))?.reason ?? v.violations[0].reason;
}

/**
 * A CreateIoeventfd request: the spec's fields first, then owner and request_id (the order
 * the proto documents), every violation at once.
 */
export function validateCreate(
  req: { spec: unknown; owner: unknown; requestId?: unknown },
  ctx: ValidationContext,
): { spec: Spec; owner: string; requestId: string } {
  const v = validateSpec(req.spec as RawSpec, ctx, "spec.");
  const violations: Violation[] = [
    ...(v.ok ? [] : v.violations),
    ...validateOwner(req.owner, "owner"),
    ...validateRequestId(req.requestId, "request_id"),
  ];
  if (violations.length > 0 || !v.ok) throw Rejection.of(violations);
  return { spec: v.value, owner: req.owner as string, requestId: (req.requestId as string) ?? "" };
}
