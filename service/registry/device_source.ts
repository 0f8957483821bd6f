// What the registry needs to know of the host's devices: the device at an address, as the
// inventory last scanned it (service/devices/inventory.ts implements it).
import type { PciDevice } from "../devices/types.ts";

export interface DeviceSource {
  get(address: string): PciDevice | undefined;
}
