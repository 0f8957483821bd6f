// The validation rules as a table: each row is a request and the reason (or acceptance) a
// caller gets. The device is plain data shaped like the inventory's output.
import assert from "node:assert/strict";
import type { Bar, PciDevice } from "../../service/devices/types.ts";
import {
  parseU64,
  type RawSpec,
  sameSources,
  validateOwner,
  validateSpec,
  WIDTHS,
} from "../../service/registry/validation.ts";

function bar(index: number, length: number, over: Partial<Bar> = {}): Bar {
  return {
    index,
    start: 0xf0000000 + index * 0x1000000,
    length,
    kind: "memory",
    is64bit: false,
    prefetchable: false,
    resourcePath: `/sim/resource${index}`,
    mappable: true,
    eligible: true,
    ineligibleReason: null,
    ...over,
  };
}

const absent = (i: number, reason: Bar["ineligibleReason"] = "ABSENT") =>
  bar(i, 0, { kind: "absent", eligible: false, ineligibleReason: reason, resourcePath: null });

const gpu: PciDevice = {
  address: "0000:65:00.0",
  sysfsPath: "/sim/0000:65:00.0",
  vendorId: 0x10de,
  deviceId: 0x2330,
  subsystemVendorId: null,
  subsystemDeviceId: null,
  classCode: 0x030200,
  revision: 0xa1,
  driver: "vfio-pci",
  iommuGroup: 7,
  numaNode: 0,
  bars: [
    bar(0, 16 << 20),
    bar(1, 256 << 20, { is64bit: true, prefetchable: true }),
    absent(2, "UPPER_HALF_OF_64BIT"),
    bar(3, 32 << 20, { is64bit: true, prefetchable: true }),
    absent(4, "UPPER_HALF_OF_64BIT"),
    bar(5, 128, { kind: "io", eligible: false, ineligibleReason: "IO_BAR" }),
  ],
  msix: {
    capabilityOffset: 0x48,
    tableSize: 16,
    table: { bar: 0, offset: 0xb90000, length: 256 },
    pba: { bar: 0, offset: 0xba0000, length: 8 },
    enabled: true,
    functionMask: false,
  },
  memoryDecode: true,
  configError: null,
  configProblem: null,
  resourceError: null,
  managed: true,
  unmanagedReason: null,
  simulated: true,
};
const unmanaged: PciDevice = {
  ...gpu,
  address: "0000:66:00.0",
  managed: false,
  unmanagedReason: "NOT_VFIO_BOUND",
};
const devices = new Map([gpu, unmanaged].map((d) => [d.address, d]));
const ctx = { device: (a: string) => devices.get(a), widths: WIDTHS };
const ok: RawSpec = {
  device: "0000:65:00.0",
  bar: 0,
  offset: 0x88704,
  width: 4,
  data: 0,
  source: { pid: 100, fd: 5 },
};

const cases: [string, Partial<RawSpec>, string | null, string?][] = [
  ["NVIDIA MSI re-arm: 4 bytes of 0 at BAR0+0x88704", {}, null],
  ["each width, aligned", { width: 8, offset: 0x88708, data: "0xffffffffffffffff" }, null],
  ["1-byte at an odd offset", { width: 1, offset: 0x88705, data: 0xff }, null],
  ["upper-case short address", { device: "65:00.0" }, null],
  ["decimal string offset", { offset: "559876" }, null],
  ["last bytes of the BAR", { offset: (16 << 20) - 8, width: 8 }, null],
  ["width 3", { width: 3 }, "WIDTH_UNSUPPORTED", "spec.width"],
  ["width 16", { width: 16 }, "WIDTH_UNSUPPORTED", "spec.width"],
  ["width 0", { width: 0 }, "WIDTH_UNSUPPORTED", "spec.width"],
  ["negative offset", { offset: -4 }, "INVALID_ARGUMENT", "spec.offset"],
  ["offset above 2^64", { offset: "18446744073709551616" }, "INVALID_ARGUMENT", "spec.offset"],
  ["offset as float", { offset: 1.5 }, "INVALID_ARGUMENT", "spec.offset"],
  ["misaligned 4-byte", { offset: 0x88702 }, "UNALIGNED", "spec.offset"],
  ["misaligned 8-byte", { offset: 0x88704, width: 8 }, "UNALIGNED", "spec.offset"],
  ["one past the BAR", { offset: 16 << 20 }, "OUT_OF_BAR", "spec.offset"],
  ["2 bytes ending exactly at the BAR end", { offset: (16 << 20) - 2, width: 2 }, null],
  ["last byte of the BAR", { offset: (16 << 20) - 1, width: 1 }, null],
  ["huge offset", { offset: "0xfffffffffffffff8", width: 8 }, "OUT_OF_BAR", "spec.offset"],
  ["first MSI-X table entry", { offset: 0xb90000 }, "OVERLAPS_MSIX_TABLE", "spec.offset"],
  ["last byte of the table", { offset: 0xb900ff, width: 1 }, "OVERLAPS_MSIX_TABLE", "spec.offset"],
  ["just after the table", { offset: 0xb90100 }, null],
  ["just before the table", { offset: 0xb8fffc }, null],
  ["MSI-X PBA", { offset: 0xba0000, width: 8 }, "OVERLAPS_MSIX_PBA", "spec.offset"],
  ["same offset in another BAR", { bar: 1, offset: 0xb90000 }, null],
  ["BAR 6", { bar: 6 }, "BAR_OUT_OF_RANGE", "spec.bar"],
  ["BAR -1", { bar: -1 }, "BAR_OUT_OF_RANGE", "spec.bar"],
  ["upper half of a 64-bit BAR", { bar: 2 }, "BAR_NOT_MAPPABLE", "spec.bar"],
  ["I/O BAR", { bar: 5, offset: 0 }, "BAR_NOT_MAPPABLE", "spec.bar"],
  ["data wider than width", { width: 1, offset: 0, data: 0x100 }, "DATA_OUT_OF_RANGE", "spec.data"],
  [
    "data of 2^64",
    { width: 8, offset: 0, data: "18446744073709551616" },
    "DATA_OUT_OF_RANGE",
    "spec.data",
  ],
  ["unknown device", { device: "0000:01:00.0" }, "DEVICE_NOT_FOUND", "spec.device"],
  ["malformed device", { device: "gpu0" }, "INVALID_ARGUMENT", "spec.device"],
  ["unmanaged device", { device: "0000:66:00.0" }, "DEVICE_NOT_MANAGED", "spec.device"],
  ["pid 0", { source: { pid: 0, fd: 3 } }, "INVALID_ARGUMENT", "spec.source.pid"],
  ["negative fd", { source: { pid: 1, fd: -1 } }, "INVALID_ARGUMENT", "spec.source.fd"],
  ["no source", { source: undefined }, "INVALID_ARGUMENT", "spec.source.pid"],
  [
    "wrong type of width",
    { width: "four" as unknown as number },
    "WIDTH_UNSUPPORTED",
    "spec.width",
  ],
  ["bad label key", { labels: { "-x": "y" } }, "INVALID_LABEL", 'spec.labels["-x"]'],
  ["a VFIO device (pid, fd)", { vfioDevice: { pid: 100, fd: 20 } }, null],
  ["vfio_device null (proto: unset)", { vfioDevice: null }, null],
  ["vfio_device fd 0, decimal strings", { vfioDevice: { pid: "7", fd: "0" } }, null],
  [
    "vfio_device pid 0",
    { vfioDevice: { pid: 0, fd: 3 } },
    "INVALID_ARGUMENT",
    "spec.vfio_device.pid",
  ],
  [
    "vfio_device negative fd",
    { vfioDevice: { pid: 1, fd: -1 } },
    "INVALID_ARGUMENT",
    "spec.vfio_device.fd",
  ],
  [
    "vfio_device without pid",
    { vfioDevice: { fd: 3 } },
    "INVALID_ARGUMENT",
    "spec.vfio_device.pid",
  ],
  [
    "vfio_device not a message",
    { vfioDevice: "0000:65:00.0" },
    "INVALID_ARGUMENT",
    "spec.vfio_device.pid",
  ],
];

for (const [name, change, reason, field] of cases) {
  Deno.test(`validation: ${name} → ${reason ?? "accepted"}`, () => {
    const result = validateSpec({ ...ok, ...change }, ctx);
    if (reason === null) {
      assert.ok(result.ok, JSON.stringify(!result.ok && result.violations));
    } else {
      assert.ok(!result.ok, "expected a rejection");
      assert.equal(result.violations[0].reason, reason);
      assert.equal(result.violations[0].field, field);
      assert.ok(result.violations[0].description.length > 0);
    }
  });
}

Deno.test("validation: every shape error is reported at once", () => {
  const result = validateSpec({ device: "x", bar: 9, width: 3, offset: -1, source: {} }, ctx);
  assert.ok(!result.ok);
  const fields = result.violations.map((v) => v.field).sort();
  assert.deepEqual(fields, [
    "spec.bar",
    "spec.device",
    "spec.offset",
    "spec.source.fd",
    "spec.source.pid",
    "spec.width",
  ]);
});

Deno.test("validation: shape and device faults together: every field, in the documented order", () => {
  // Data too large for the width and an offset past the BAR: both fields, offset first.
  const result = validateSpec({ ...ok, width: 1, offset: 16 << 20, data: 0x100 }, ctx);
  assert.ok(!result.ok);
  assert.deepEqual(
    result.violations.map((v) => [v.field, v.reason]),
    [["spec.offset", "OUT_OF_BAR"], ["spec.data", "DATA_OUT_OF_RANGE"]],
  );
  // A bad width does not hide an unknown device, and the device comes first.
  const two = validateSpec({ ...ok, device: "0000:01:00.0", width: 3, bar: 9 }, ctx);
  assert.ok(!two.ok);
  assert.deepEqual(
    two.violations.map((v) => [v.field, v.reason]),
    [
      ["spec.device", "DEVICE_NOT_FOUND"],
      ["spec.bar", "BAR_OUT_OF_RANGE"],
      ["spec.width", "WIDTH_UNSUPPORTED"],
    ],
  );
  // The MSI-X table, a bad label and a negative fd, all at once.
  const three = validateSpec(
    { ...ok, offset: 0xb90000, labels: { "-x": "y" }, source: { pid: 1, fd: -1 } },
    ctx,
  );
  assert.ok(!three.ok);
  assert.deepEqual(three.violations.map((v) => v.field), [
    "spec.offset",
    "spec.source.fd",
    'spec.labels["-x"]',
  ]);
});

Deno.test("validation: every combination of faults reports one violation per judgeable field", () => {
  const faults: [keyof RawSpec, unknown, string][] = [
    ["device", "0000:01:00.0", "spec.device"],
    ["bar", 9, "spec.bar"],
    ["width", 3, "spec.width"],
    ["offset", (16 << 20) + 4, "spec.offset"],
    ["data", "18446744073709551616", "spec.data"],
    ["source", { pid: 0, fd: 1 }, "spec.source.pid"],
  ];
  for (let mask = 1; mask < 1 << faults.length; mask++) {
    const raw: RawSpec = { ...ok };
    const want: string[] = [];
    faults.forEach(([key, value, field], i) => {
      if (mask & (1 << i)) {
        (raw as Record<string, unknown>)[key] = value;
        want.push(field);
      }
    });
    const r = validateSpec(raw, ctx);
    assert.ok(!r.ok, `mask ${mask}`);
    const got = r.violations.map((v) => v.field);
    // A field that depends on a faulty one (the offset on the device, BAR or width) may be
    // unjudgeable; every other faulty field is reported, in order, once.
    const judgeable = want.filter((f) =>
      f !== "spec.offset" ||
      !want.some((w) => ["spec.device", "spec.bar", "spec.width"].includes(w))
    );
    for (const f of judgeable) assert.ok(got.includes(f), `mask ${mask}: ${f} missing in ${got}`);
    assert.equal(new Set(got).size, got.length, `mask ${mask}: a field twice`);
  }
});

Deno.test("validation: vfio_device is kept on the spec, null when absent; sameSources", () => {
  const plain = validateSpec(ok, ctx);
  const vfio = validateSpec({ ...ok, vfioDevice: { pid: 100, fd: "20" } }, ctx);
  const other = validateSpec({ ...ok, vfioDevice: { pid: 100, fd: 21 } }, ctx);
  assert.ok(plain.ok && vfio.ok && other.ok);
  assert.equal(plain.value.vfioDevice, null);
  assert.deepEqual(vfio.value.vfioDevice, { pid: 100, fd: 20 });
  assert.equal(sameSources(plain.value, plain.value), true);
  assert.equal(sameSources(vfio.value, { ...vfio.value }), true);
  assert.equal(sameSources(plain.value, vfio.value), false, "with and without a VFIO device");
  assert.equal(sameSources(vfio.value, other.value), false, "another VFIO fd");
  // Shape errors of both descriptors come together, with their own paths.
  const both = validateSpec({ ...ok, source: { pid: 0, fd: 1 }, vfioDevice: { pid: 1 } }, ctx);
  assert.ok(!both.ok);
  assert.deepEqual(both.violations.map((v) => v.field).sort(), [
    "spec.source.pid",
    "spec.vfio_device.fd",
  ]);
});

Deno.test("validation: reconcile field paths carry the index", () => {
  const result = validateSpec({ ...ok, width: 3 }, ctx, "desired[4].");
  assert.ok(!result.ok);
  assert.equal(result.violations[0].field, "desired[4].width");
});

Deno.test("validation: owners and numbers", () => {
  assert.deepEqual(validateOwner("vm-42", "owner"), []);
  assert.equal(validateOwner("", "owner")[0].reason, "INVALID_OWNER");
  assert.equal(validateOwner("a b", "owner")[0].reason, "INVALID_OWNER");
  assert.equal(validateOwner("x".repeat(129), "owner")[0].reason, "INVALID_OWNER");
  assert.equal(parseU64("0xffffffffffffffff"), (1n << 64n) - 1n);
  assert.equal(parseU64(Number.MAX_SAFE_INTEGER + 2), null);
  assert.equal(parseU64("1e3"), null);
});
