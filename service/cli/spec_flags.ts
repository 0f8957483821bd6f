// An ioeventfd spec from flags or a file, checked locally with the agent's own shape rules
// (service/registry/validation.ts), so a typo fails before any call.
import type { IoeventfdSpec } from "../api/generated/ioeventd/v1/IoeventfdSpec.ts";
import { type RawSpec, validateShape } from "../registry/validation.ts";
import { type CliValues, labelsOf, UsageError } from "./options.ts";

export function specFromFlags(v: CliValues): RawSpec {
  return {
    device: v.device,
    bar: v.bar,
    offset: v.offset,
    width: v.width,
    data: v.data,
    source: { pid: v.pid, fd: v.fd },
    labels: labelsOf(v.label),
    // Either flag alone is still a VFIO device, and the missing one is reported.
    vfioDevice: v["vfio-pid"] !== undefined || v["vfio-fd"] !== undefined
      ? { pid: v["vfio-pid"], fd: v["vfio-fd"] }
      : undefined,
  };
}

/** The flag behind a shape field: "source.pid" → --pid, "vfio_device.fd" → --vfio-fd. */
function flagOf(field: string): string {
  return "--" + field.replace("source.", "").replace("vfio_device.", "vfio-");
}

/** Parses flags locally with the agent's own shape rules, so typos fail before any call. */
export function shapeChecked(raw: RawSpec): IoeventfdSpec {
  const v = validateShape(raw, "");
  if (!v.ok) {
    throw new UsageError(
      v.violations.map((x) => `${flagOf(x.field)}: ${x.description}`).join("\n"),
    );
  }
  return { ...v.value, offset: v.value.offset.toString(), data: v.value.data.toString() };
}
