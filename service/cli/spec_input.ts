// An ioeventfd spec or key from flags or from a reconcile file. Every field of the key and
// the source is required (the CLI arms device memory: nothing defaults to 0), every number
// goes through numbers.ts, and the rest is the agent's own shape check (validateShape in
// service/registry/validation.ts), run locally so a mistake fails before any call. All the
// problems of one spec are reported at once, named as the user wrote them: `--offset` for
// a flag, `desired[1].offset` for a file.
import type { IoeventfdKey } from "../api/generated/ioeventd/v1/IoeventfdKey.ts";
import type { IoeventfdSpec } from "../api/generated/ioeventd/v1/IoeventfdSpec.ts";
import { type Spec, validateShape } from "../registry/validation.ts";
import { UsageError } from "./errors.ts";
import { numberProblem, readNumber } from "./numbers.ts";

/** A field by the path validateShape names it with. */
type Path =
  | "device"
  | "bar"
  | "offset"
  | "width"
  | "data"
  | "source.pid"
  | "source.fd"
  | "vfio_device.pid"
  | "vfio_device.fd";

const KEY: Path[] = ["device", "bar", "offset", "width", "data"];
const SPEC: Path[] = [...KEY, "source.pid", "source.fd"];
const NUMERIC: Path[] = [
  "bar",
  "offset",
  "width",
  "data",
  "source.pid",
  "source.fd",
  "vfio_device.pid",
  "vfio_device.fd",
];
const U64: Path[] = ["offset", "data"];

/** The fields as given, flat, before any parsing. */
export type Fields = Partial<Record<Path, unknown>> & { labels?: unknown };

/** How a message names a field: a flag (`--pid`) or a path in a file (`desired[1].source.pid`). */
type Namer = (path: string) => string;

export const flagName: Namer = (path) => {
  const label = path.match(/^labels\[(.*)\]$/);
  if (label) return `--label ${JSON.parse(label[1])}`;
  if (path === "labels") return "--label";
  return "--" + path.replace("source.", "").replace("vfio_device.", "vfio-");
};

export function fileName(at: string): Namer {
  return (path) => `${at}.${path.replace("vfio_device", "vfioDevice")}`;
}

const given = (v: unknown) => v !== undefined && v !== null;

function checked(fields: Fields, required: Path[], name: Namer): Spec {
  const problems: string[] = [];
  const reported = new Set<string>();
  for (const path of required) {
    if (!given(fields[path])) {
      problems.push(`${name(path)}: required`);
      reported.add(path);
    }
  }
  const value: Fields = { ...fields };
  for (const path of NUMERIC) {
    if (!given(fields[path])) continue;
    const n = readNumber(fields[path]);
    if (n === null) {
      problems.push(numberProblem(name(path), fields[path]));
      reported.add(path);
    } else {
      // uint64 fields stay bigint; the others become numbers for the shape check's ranges
      // (one too large for a number stays bigint, which the check refuses by name).
      value[path] = U64.includes(path) || n > BigInt(Number.MAX_SAFE_INTEGER) ? n : Number(n);
    }
  }
  const vfio = given(fields["vfio_device.pid"]) || given(fields["vfio_device.fd"]);
  const shape = validateShape({
    device: value.device,
    bar: value.bar,
    offset: value.offset,
    width: value.width,
    data: value.data,
    source: { pid: value["source.pid"], fd: value["source.fd"] },
    labels: value.labels,
    // Either half alone is still a VFIO device, and the missing half is reported.
    vfioDevice: vfio ? { pid: value["vfio_device.pid"], fd: value["vfio_device.fd"] } : undefined,
  }, "");
  if (!shape.ok) {
    for (const v of shape.violations) {
      if (!reported.has(v.field)) problems.push(`${name(v.field)}: ${v.description}`);
    }
  }
  if (problems.length > 0) throw new UsageError(problems.join("\n"));
  if (!shape.ok) throw new Error("unreachable: shape violations were all reported");
  return shape.value;
}

function toApi(spec: Spec): IoeventfdSpec {
  return { ...spec, offset: spec.offset.toString(), data: spec.data.toString() };
}

/** A full spec (create, each entry of a reconcile file); throws UsageError with every problem. */
export function checkedSpec(fields: Fields, name: Namer): IoeventfdSpec {
  return toApi(checked(fields, SPEC, name));
}

/** The kernel's key (delete by key): device, bar, offset, width and data, all required. */
export function checkedKey(fields: Fields, name: Namer): IoeventfdKey {
  // The source is no part of a key: a valid stand-in keeps the shape check to the key.
  const spec = checked({ ...fields, "source.pid": 1, "source.fd": 0 }, KEY, name);
  return {
    device: spec.device,
    bar: spec.bar,
    offset: spec.offset.toString(),
    width: spec.width,
    data: spec.data.toString(),
  };
}

/** Whether any field of a key was given (a key delete rather than a delete without arguments). */
export function anyKeyField(fields: Fields): boolean {
  return KEY.some((path) => given(fields[path]));
}

/** A reconcile file's entry as flat fields; not an object is a usage error naming it. */
export function fieldsOfEntry(entry: unknown, at: string): Fields {
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
    throw new UsageError(`${at}: must be an object (a spec)`);
  }
  const e = entry as Record<string, unknown>;
  const pair = (v: unknown) =>
    v !== null && typeof v === "object" ? v as Record<string, unknown> : {};
  const source = pair(e.source);
  const vfio = pair(e.vfioDevice);
  return {
    device: e.device,
    bar: e.bar,
    offset: e.offset,
    width: e.width,
    data: e.data,
    "source.pid": source.pid,
    "source.fd": source.fd,
    "vfio_device.pid": vfio.pid,
    "vfio_device.fd": vfio.fd,
    labels: e.labels,
  };
}
