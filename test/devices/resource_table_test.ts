import assert from "node:assert/strict";
import {
  formatResourceTable,
  parseResourceTable,
  ResourceTableError,
} from "../../service/devices/resource_table.ts";

const ZERO = "0x0000000000000000 0x0000000000000000 0x0000000000000000";

function shapes(text: string) {
  return parseResourceTable(text).map((b) => ({
    index: b.index,
    kind: b.kind,
    start: b.start,
    length: b.length,
    is64bit: b.is64bit,
    prefetchable: b.prefetchable,
    upperHalfOf64bit: b.upperHalfOf64bit,
  }));
}

Deno.test("64-bit BAR pairs: the upper slot is an absent upper half", () => {
  // A GPU as the kernel prints it: BAR0 32-bit, BAR1 and BAR3 64-bit prefetchable, BAR5 I/O,
  // then the ROM and the six SR-IOV lines.
  const text = [
    "0x00000000fa000000 0x00000000faffffff 0x0000000000040200",
    "0x0000038000000000 0x000003800fffffff 0x000000000014220c",
    ZERO,
    "0x0000038010000000 0x0000038011ffffff 0x000000000014220c",
    ZERO,
    "0x000000000000e000 0x000000000000e07f 0x0000000000040101",
    "0x00000000fb000000 0x00000000fb07ffff 0x0000000000046200",
    ...new Array(6).fill(ZERO),
  ].join("\n") + "\n";
  assert.deepEqual(shapes(text), [
    {
      index: 0,
      kind: "memory",
      start: 0xfa000000,
      length: 16 * 2 ** 20,
      is64bit: false,
      prefetchable: false,
      upperHalfOf64bit: false,
    },
    {
      index: 1,
      kind: "memory",
      start: 0x38000000000,
      length: 256 * 2 ** 20,
      is64bit: true,
      prefetchable: true,
      upperHalfOf64bit: false,
    },
    {
      index: 2,
      kind: "absent",
      start: 0,
      length: 0,
      is64bit: false,
      prefetchable: false,
      upperHalfOf64bit: true,
    },
    {
      index: 3,
      kind: "memory",
      start: 0x38010000000,
      length: 32 * 2 ** 20,
      is64bit: true,
      prefetchable: true,
      upperHalfOf64bit: false,
    },
    {
      index: 4,
      kind: "absent",
      start: 0,
      length: 0,
      is64bit: false,
      prefetchable: false,
      upperHalfOf64bit: true,
    },
    {
      index: 5,
      kind: "io",
      start: 0xe000,
      length: 128,
      is64bit: false,
      prefetchable: false,
      upperHalfOf64bit: false,
    },
  ]);
});

Deno.test("a 32-bit BAR does not swallow the next slot", () => {
  const text = [
    "0x00000000f0000000 0x00000000f001ffff 0x0000000000040200",
    "0x00000000f0020000 0x00000000f0023fff 0x0000000000040200",
    ...new Array(5).fill(ZERO),
  ].join("\n");
  const bars = parseResourceTable(text);
  assert.equal(bars[1].kind, "memory");
  assert.equal(bars[1].length, 16 * 1024);
  assert.equal(bars[1].upperHalfOf64bit, false);
});

Deno.test("a 64-bit BAR that the kernel left unassigned still owns its upper slot", () => {
  const text = [
    ZERO,
    ZERO,
    "0x0000000000000000 0x0000000000000000 0x0000000000140204",
    ZERO,
    ...new Array(3).fill(ZERO),
  ].join("\n");
  const bars = parseResourceTable(text);
  assert.equal(bars[2].kind, "absent");
  assert.equal(bars[3].upperHalfOf64bit, true);
});

Deno.test("the 7-line resource file of a virtio device (this kind of VM)", () => {
  const text = "0x0000004000000000 0x000000400007ffff 0x0000000000140204\n" +
    new Array(6).fill(ZERO).join("\n") + "\n";
  const bars = parseResourceTable(text);
  assert.equal(bars.length, 6);
  assert.deepEqual([bars[0].kind, bars[0].start, bars[0].length], [
    "memory",
    0x4000000000,
    512 * 1024,
  ]);
  assert.equal(bars[1].upperHalfOf64bit, true);
  assert.deepEqual(bars.slice(2).map((b) => b.kind), ["absent", "absent", "absent", "absent"]);
});

Deno.test("malformed or short resource files are rejected with the reason", () => {
  assert.throws(
    () => parseResourceTable(ZERO + "\n" + ZERO),
    (e) => e instanceof ResourceTableError && /cut short: 2 of the 6/.test(e.message),
  );
  assert.throws(
    () => parseResourceTable(["garbage", ...new Array(6).fill(ZERO)].join("\n")),
    /line 1 is malformed/,
  );
  assert.throws(
    () =>
      parseResourceTable(
        ["0x0020000000000000 0x0020000000000fff 0x0000000000040200", ...new Array(6).fill(ZERO)]
          .join("\n"),
      ),
    /2\^53/,
  );
});

Deno.test("what formatResourceTable writes parses back to the same BARs", () => {
  const text = formatResourceTable([
    { kind: "memory", start: 0xd2000000, length: 16 * 2 ** 20 },
    { kind: "memory", start: 0x9d0000000000, length: 2 ** 28, is64bit: true, prefetchable: true },
    undefined,
    undefined,
    undefined,
    { kind: "io", start: 0x7000, length: 128 },
  ]);
  assert.equal(text.trim().split("\n").length, 13);
  assert.match(text, /^0x00000000d2000000 0x00000000d2ffffff 0x0000000000040200\n/);
  const bars = parseResourceTable(text);
  assert.deepEqual(bars.map((b) => [b.kind, b.start, b.length]), [
    ["memory", 0xd2000000, 16 * 2 ** 20],
    ["memory", 0x9d0000000000, 2 ** 28],
    ["absent", 0, 0],
    ["absent", 0, 0],
    ["absent", 0, 0],
    ["io", 0x7000, 128],
  ]);
  assert.equal(bars[2].upperHalfOf64bit, true);
});
