// Builds config space images byte by byte: simulated devices write them to disk and tests craft
// broken ones (loops, bad pointers) from them.

import { CONFIG_STANDARD_SIZE, PCI_CAPABILITY_LIST, PCI_STATUS_CAP_LIST } from "./config_space.ts";
import type { ResourceSpec } from "./resource_table.ts";

export interface ConfigIdentity {
  vendorId: number;
  deviceId: number;
  classCode: number;
  revision: number;
  subsystemVendorId: number;
  subsystemDeviceId: number;
}

const BAR_REGISTERS = 0x10;

export class ConfigSpaceBuilder {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  // Where the next capability's offset is linked in: 0x34, then each capability's next byte.
  #linkAt = PCI_CAPABILITY_LIST;

  constructor(size: number = CONFIG_STANDARD_SIZE) {
    this.#bytes = new Uint8Array(size);
    this.#view = new DataView(this.#bytes.buffer);
  }

  u8(offset: number, value: number): this {
    this.#view.setUint8(offset, value & 0xff);
    return this;
  }

  u16(offset: number, value: number): this {
    this.#view.setUint16(offset, value & 0xffff, true);
    return this;
  }

  u32(offset: number, value: number): this {
    this.#view.setUint32(offset, value >>> 0, true);
    return this;
  }

  /** Ids, class and revision of a type 0 (endpoint) header. */
  identity(id: ConfigIdentity): this {
    return this.u16(0x00, id.vendorId)
      .u16(0x02, id.deviceId)
      .u8(0x08, id.revision)
      .u8(0x09, id.classCode)
      .u8(0x0a, id.classCode >> 8)
      .u8(0x0b, id.classCode >> 16)
      .u8(0x0e, 0x00)
      .u16(0x2c, id.subsystemVendorId)
      .u16(0x2e, id.subsystemDeviceId);
  }

  command(value: number): this {
    return this.u16(0x04, value);
  }

  status(value: number): this {
    return this.u16(0x06, value);
  }

  /** The BAR register(s) for a BAR of this shape; a 64-bit BAR also fills slot index + 1. */
  bar(index: number, spec: ResourceSpec): this {
    const at = BAR_REGISTERS + index * 4;
    if (spec.kind === "io") return this.u32(at, (spec.start & ~0x3) | 0x1);
    const low = (spec.start % 0x1_0000_0000) & ~0xf;
    const type = (spec.is64bit ? 0x4 : 0) | (spec.prefetchable ? 0x8 : 0);
    this.u32(at, low | type);
    if (spec.is64bit) this.u32(at + 4, Math.floor(spec.start / 0x1_0000_0000));
    return this;
  }

  /**
   * Appends a capability at `offset`: links it from the previous one (or from 0x34), sets the
   * status register's capability-list bit, writes id, next = 0 and `body` after the header.
   */
  capability(offset: number, id: number, body: Uint8Array | number[] = []): this {
    this.u8(this.#linkAt, offset);
    this.u16(0x06, this.#view.getUint16(0x06, true) | PCI_STATUS_CAP_LIST);
    this.u8(offset, id).u8(offset + 1, 0);
    this.#bytes.set(body, offset + 2);
    this.#linkAt = offset + 1;
    return this;
  }

  /** A copy of the image, optionally cut to its first `length` bytes. */
  build(length: number = this.#bytes.length): Uint8Array {
    return this.#bytes.slice(0, length);
  }
}
