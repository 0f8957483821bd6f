// PCI addresses ("domain:bus:device.function") as sysfs names them.

// Domains are usually 4 hex digits; VMD and some hypervisors use longer ones.
const FULL = /^([0-9a-f]{4,8}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;
// lspci's default form without the domain, e.g. "65:00.0"; it means domain 0000.
const SHORT = /^([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;

/**
 * Canonical lowercase "dddd:bb:dd.f" for an address written in either case, with or without
 * the domain; null if the text is not a PCI address.
 */
export function normalizePciAddress(text: string): string | null {
  const trimmed = text.trim();
  const full = FULL.exec(trimmed);
  const short = full ? null : SHORT.exec(trimmed);
  const parts = full ? full.slice(1) : short ? ["0000", ...short.slice(1)] : null;
  if (parts === null) return null;
  const [domain, bus, device, fn] = parts;
  // Device numbers are 5 bits.
  if (parseInt(device, 16) > 0x1f) return null;
  return `${domain}:${bus}:${device}.${fn}`.toLowerCase();
}

export interface PciAddressParts {
  domain: number;
  bus: number;
  device: number;
  fn: number;
}

/** Numeric parts of an address; null if it is not a PCI address. */
export function parsePciAddress(text: string): PciAddressParts | null {
  const canonical = normalizePciAddress(text);
  if (canonical === null) return null;
  const [domain, bus, rest] = canonical.split(":");
  const [device, fn] = rest.split(".");
  return {
    domain: parseInt(domain, 16),
    bus: parseInt(bus, 16),
    device: parseInt(device, 16),
    fn: parseInt(fn, 16),
  };
}
