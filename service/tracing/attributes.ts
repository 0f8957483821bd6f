// Span attributes naming what an RPC is about: the device and the owner (and the ioeventfd),
// read from whichever request or response fields carry them.
import { normalizePciAddress } from "../devices/pci_address.ts";

export const ATTR_DEVICE = "ioeventd.device";
export const ATTR_OWNER = "ioeventd.owner";
export const ATTR_IOEVENTFD_ID = "ioeventd.ioeventfd.id";

type Fields = Record<string, unknown>;

function fields(value: unknown): Fields | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Fields
    : null;
}

function text(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

/**
 * Device, owner and ioeventfd id of a decoded ioeventd.v1 message: `spec.device` (create),
 * `key.device` (delete by key), `device` (list, watch), `address` (get device), `owner`, `id`;
 * in a DeleteIoeventfdResponse, those of the `deleted` ioeventfd.
 */
export function messageAttributes(message: unknown): Record<string, string> {
  const m = fields(fields(message)?.deleted) ?? fields(message);
  if (m === null) return {};
  const out: Record<string, string> = {};
  const device = text(fields(m.spec)?.device) ?? text(fields(m.key)?.device) ?? text(m.device) ??
    text(m.address);
  if (device !== null) out[ATTR_DEVICE] = normalizePciAddress(device) ?? device;
  const owner = text(m.owner);
  if (owner !== null) out[ATTR_OWNER] = owner;
  const id = text(m.id);
  if (id !== null) out[ATTR_IOEVENTFD_ID] = id;
  return out;
}
