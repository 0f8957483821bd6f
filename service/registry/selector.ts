// What DeleteIoeventfd names: an id, or the kernel's key (device, bar, offset, width, data).
import { normalizePciAddress } from "../devices/pci_address.ts";
import { Rejection } from "../rejection/rejection.ts";
import type { Registration } from "./registration.ts";
import type { RegistrationIndex } from "./registration_index.ts";
import { keyOf, parseU64, type RawSpec } from "./validation.ts";

export interface Selector {
  id?: string;
  key?: RawSpec;
}

/** The registration `selector` names; NOT_FOUND or INVALID_ARGUMENT otherwise. */
export function findBySelector(index: RegistrationIndex, selector: Selector): Registration {
  if (selector.id) {
    const r = index.byId(selector.id);
    if (!r) {
      throw new Rejection("NOT_FOUND", `no ioeventfd ${selector.id}`, [
        { field: "id", reason: "NOT_FOUND", description: `no ioeventfd with id ${selector.id}` },
      ]);
    }
    return r;
  }
  const k = selector.key;
  if (!k) {
    throw Rejection.of([{
      field: "selector",
      reason: "INVALID_ARGUMENT",
      description: "give an id or a key",
    }]);
  }
  const device = typeof k.device === "string" ? normalizePciAddress(k.device) : null;
  const offset = parseU64(k.offset ?? 0);
  const data = parseU64(k.data ?? 0);
  const bar = Number(k.bar ?? 0);
  const width = Number(k.width ?? 0);
  if (device === null || offset === null || data === null) {
    throw Rejection.of([{
      field: "key",
      reason: "INVALID_ARGUMENT",
      description: "key needs a PCI address and unsigned offset and data",
    }]);
  }
  const key = keyOf({ device, bar, offset, width, data });
  const r = index.byKey(key);
  if (!r) {
    throw Rejection.of([{
      field: "key",
      reason: "NOT_FOUND",
      description: `no ioeventfd with key ${key}`,
    }]);
  }
  return r;
}
