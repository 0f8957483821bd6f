import assert from "node:assert/strict";
import {
  findCapability,
  MAX_CAPABILITIES,
  parseConfigSpace,
  PCI_STATUS_CAP_LIST,
} from "../../service/devices/config_space.ts";
import { ConfigSpaceBuilder } from "../../service/devices/config_space_builder.ts";
import {
  encodeMsixCapabilityBody,
  MSIX_CAPABILITY_ID,
  type MsixLayout,
  parseMsixCapability,
} from "../../service/devices/msix.ts";

const CAP_PM = 0x01;
const CAP_MSI = 0x05;
const CAP_PCIE = 0x10;

function gpuHeader(size = 256): ConfigSpaceBuilder {
  return new ConfigSpaceBuilder(size)
    .identity({
      vendorId: 0x10de,
      deviceId: 0x2330,
      classCode: 0x030200,
      revision: 0xa1,
      subsystemVendorId: 0x10de,
      subsystemDeviceId: 0x16c1,
    })
    .command(0x0006);
}

function withMsix(layout: MsixLayout, size = 256): Uint8Array {
  return gpuHeader(size)
    .capability(0x40, CAP_PM, [0x03, 0, 0x08, 0, 0, 0])
    .capability(0x48, CAP_MSI, new Array(10).fill(0))
    .capability(0x60, CAP_PCIE, new Array(0x3a).fill(0))
    .capability(0xa0, MSIX_CAPABILITY_ID, encodeMsixCapabilityBody(layout))
    .build();
}

function msixOf(bytes: Uint8Array) {
  const config = parseConfigSpace(bytes);
  assert.equal(config.error, null);
  const offset = findCapability(config, MSIX_CAPABILITY_ID);
  assert.notEqual(offset, null, "MSI-X capability found");
  const parsed = parseMsixCapability(bytes, offset!);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.msix;
}

Deno.test("header fields are read from config space", () => {
  const config = parseConfigSpace(gpuHeader().build());
  assert.deepEqual(config.header, {
    vendorId: 0x10de,
    deviceId: 0x2330,
    command: 0x0006,
    status: 0,
    revision: 0xa1,
    classCode: 0x030200,
    headerType: 0,
    subsystemVendorId: 0x10de,
    subsystemDeviceId: 0x16c1,
  });
  assert.equal(config.error, null);
});

Deno.test("a device without MSI-X lists its other capabilities and no MSI-X", () => {
  const bytes = gpuHeader()
    .capability(0x40, CAP_PM, [0x03, 0])
    .capability(0x50, CAP_MSI)
    .capability(0x70, CAP_PCIE)
    .build();
  const config = parseConfigSpace(bytes);
  assert.equal(config.error, null);
  assert.deepEqual(config.capabilities, [
    { id: CAP_PM, offset: 0x40 },
    { id: CAP_MSI, offset: 0x50 },
    { id: CAP_PCIE, offset: 0x70 },
  ]);
  assert.equal(findCapability(config, MSIX_CAPABILITY_ID), null);
});

for (let bar = 0; bar <= 5; bar++) {
  Deno.test(`MSI-X table and PBA in BAR ${bar}`, () => {
    const msix = msixOf(withMsix({
      tableSize: 16,
      tableBar: bar,
      tableOffset: 0xb90000,
      pbaBar: bar,
      pbaOffset: 0xba0000,
      enabled: true,
    }));
    assert.deepEqual(msix, {
      capabilityOffset: 0xa0,
      tableSize: 16,
      table: { bar, offset: 0xb90000, length: 16 * 16 },
      pba: { bar, offset: 0xba0000, length: 8 },
      enabled: true,
      functionMask: false,
    });
  });
}

Deno.test("MSI-X table and PBA in different BARs, function masked, not enabled", () => {
  const msix = msixOf(withMsix({
    tableSize: 65,
    tableBar: 4,
    tableOffset: 0x0,
    pbaBar: 2,
    pbaOffset: 0x3000,
    functionMask: true,
  }));
  assert.deepEqual(msix.table, { bar: 4, offset: 0, length: 65 * 16 });
  // 65 pending bits need two 64-bit words.
  assert.deepEqual(msix.pba, { bar: 2, offset: 0x3000, length: 16 });
  assert.equal(msix.enabled, false);
  assert.equal(msix.functionMask, true);
});

Deno.test("MSI-X with the largest table (2048 entries) and a high offset", () => {
  const msix = msixOf(withMsix({
    tableSize: 2048,
    tableBar: 1,
    tableOffset: 0xfff0_0000,
    pbaBar: 1,
    pbaOffset: 0xffff_fff8,
  }));
  assert.deepEqual(msix.table, { bar: 1, offset: 0xfff0_0000, length: 32768 });
  assert.deepEqual(msix.pba, { bar: 1, offset: 0xffff_fff8, length: 256 });
});

Deno.test("an MSI-X BAR indicator above 5 is an error, not a BAR", () => {
  const bytes = withMsix({ tableSize: 4, tableBar: 6, tableOffset: 0, pbaBar: 0, pbaOffset: 0 });
  const parsed = parseMsixCapability(bytes, 0xa0);
  assert.equal(parsed.ok, false);
  assert.match(!parsed.ok ? parsed.error : "", /BAR indicator 6/);
});

Deno.test("a capability loop a -> b -> a is reported and does not hang", () => {
  const bytes = gpuHeader().capability(0x40, CAP_PM).capability(0x50, CAP_MSI).u8(0x51, 0x40)
    .build();
  const config = parseConfigSpace(bytes);
  assert.equal(config.problem, "MALFORMED");
  assert.match(config.error ?? "", /loops.*0x40/);
  assert.deepEqual(config.capabilities.map((c) => c.offset), [0x40, 0x50]);
});

Deno.test("a capability pointing at itself is a loop", () => {
  const bytes = gpuHeader().capability(0x40, CAP_PM).u8(0x41, 0x40).build();
  assert.match(parseConfigSpace(bytes).error ?? "", /loops/);
});

Deno.test("a capability pointer into the header (< 0x40) is an error", () => {
  const bytes = gpuHeader().capability(0x40, CAP_PM).u8(0x41, 0x10).build();
  const config = parseConfigSpace(bytes);
  assert.equal(config.problem, "MALFORMED");
  assert.match(config.error ?? "", /points into the header \(0x10 < 0x40\)/);
});

Deno.test("a capability pointer beyond the end of the file is an error", () => {
  const bytes = gpuHeader(0x80).capability(0x40, CAP_PM).u8(0x41, 0xc0).build();
  const config = parseConfigSpace(bytes);
  assert.equal(config.problem, "TRUNCATED");
  assert.match(config.error ?? "", /0xc0, beyond the 128 bytes read/);
});

Deno.test("pointer low bits are masked off (~3)", () => {
  const bytes = gpuHeader().capability(0x40, CAP_PM).u8(0x41, 0x53).u8(0x50, CAP_MSI).build();
  const config = parseConfigSpace(bytes);
  assert.equal(config.error, null);
  assert.deepEqual(config.capabilities, [{ id: CAP_PM, offset: 0x40 }, {
    id: CAP_MSI,
    offset: 0x50,
  }]);
});

Deno.test("a full list of 48 capabilities is accepted", () => {
  const builder = gpuHeader();
  for (let offset = 0x40; offset < 0x100; offset += 4) builder.capability(offset, 0x09);
  const config = parseConfigSpace(builder.build());
  assert.equal(config.error, null);
  assert.equal(config.capabilities.length, MAX_CAPABILITIES);
});

Deno.test("the 64 bytes non-root readers get: header read, capability walk fails clearly", () => {
  const full = withMsix({ tableSize: 4, tableBar: 0, tableOffset: 0, pbaBar: 0, pbaOffset: 0x800 });
  const config = parseConfigSpace(full.slice(0, 64));
  assert.equal(config.header?.vendorId, 0x10de);
  assert.equal(config.problem, "TRUNCATED");
  assert.match(config.error ?? "", /truncated.*needs root/);
});

Deno.test("config cut in the middle of the MSI-X capability", () => {
  const full = withMsix({ tableSize: 4, tableBar: 0, tableOffset: 0, pbaBar: 0, pbaOffset: 0x800 });
  const cut = full.slice(0, 0xa0 + 6);
  const config = parseConfigSpace(cut);
  assert.equal(config.error, null, "the capability header itself is complete");
  const parsed = parseMsixCapability(cut, findCapability(config, MSIX_CAPABILITY_ID)!);
  assert.equal(parsed.ok, false);
  assert.match(!parsed.ok ? parsed.error : "", /truncated: MSI-X capability at 0xa0 needs 12/);
});

Deno.test("a config shorter than the header has no header and says so", () => {
  const config = parseConfigSpace(gpuHeader().build(20));
  assert.equal(config.header, null);
  assert.equal(config.problem, "TRUNCATED");
  assert.match(config.error ?? "", /20 bytes/);
});

Deno.test("status bit 4 clear: no capabilities even if the pointer is set", () => {
  const bytes = gpuHeader().capability(0x40, CAP_PM).build();
  const withoutList = bytes.slice();
  withoutList[0x06] &= ~PCI_STATUS_CAP_LIST;
  const config = parseConfigSpace(withoutList);
  assert.equal(config.error, null);
  assert.deepEqual(config.capabilities, []);
});
