// Generators for the fuzz test: request fields that are mostly almost right (the edges of
// real BARs, the MSI-X regions, widths next to the valid ones) mixed with anything at all
// (wrong types, huge and negative numbers, lone surrogates), and raw protobuf bytes with
// wrong wire types, overlong varints and invalid UTF-8 in string fields.
import fc from "fast-check";
import type { PciDevice } from "../../service/devices/types.ts";
import { WIDTHS } from "../../service/registry/validation.ts";

export const U64 = 1n << 64n;

/** Anything a JSON, CLI or proto-loader caller could put in a field. */
export const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    undefined,
    true,
    false,
    Number.NaN,
    Infinity,
    -Infinity,
    -0,
    0.5,
    -1,
    -(2 ** 63),
    2 ** 64,
    Number.MAX_VALUE,
    Number.MAX_SAFE_INTEGER + 2,
    "",
    " 4",
    "0x",
    "-1",
    "1e3",
    "0x1g",
    "\u0000",
    "\ud800",
    "a\udfffb",
    "\uff10",
    "18446744073709551616",
    "0x10000000000000000",
    "99999999999999999999",
    "constructor",
    "__proto__",
    -1n,
    U64,
  ),
  fc.integer(),
  fc.double(),
  fc.bigInt(),
  fc.string(),
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
  fc.object({ maxDepth: 1, maxKeys: 3 }),
);

/** The offsets where mistakes live on these devices: BAR ends, MSI-X edges, u64 ends. */
export function interestingOffsets(devices: PciDevice[]): bigint[] {
  const out = new Set<bigint>([0n, 1n, 2n, 4n, U64 - 8n, U64 - 1n, U64, 1n << 63n]);
  for (const d of devices) {
    for (const b of d.bars) {
      if (b.length <= 0) continue;
      const len = BigInt(b.length);
      for (const delta of [-16n, -8n, -4n, -2n, -1n, 0n, 4n, 8n]) out.add(len + delta);
    }
    for (const r of d.msix ? [d.msix.table, d.msix.pba] : []) {
      const start = BigInt(r.offset);
      const end = start + BigInt(r.length);
      for (const at of [start - 8n, start - 4n, start - 1n, start, end - 4n, end - 1n, end]) {
        out.add(at);
      }
    }
  }
  return [...out].filter((o) => o >= -8n);
}

export interface SourceChoice {
  pids: number[];
  fds: number[];
}

/**
 * A raw spec: aimed at a real BAR (an aligned offset in it or at its edges) or made of
 * fields chosen independently — each usually plausible, sometimes anything, sometimes
 * missing.
 */
export function rawSpec(
  devices: PciDevice[],
  source: SourceChoice,
): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(
    { weight: 1, arbitrary: aimedSpec(devices, source) },
    { weight: 1, arbitrary: looseSpec(devices, source) },
  );
}

function aimedSpec(
  devices: PciDevice[],
  source: SourceChoice,
): fc.Arbitrary<Record<string, unknown>> {
  const targets = devices.flatMap((d) =>
    d.bars.filter((b) => b.eligible).map((b) => ({
      device: d.address,
      bar: b.index,
      length: b.length,
    }))
  );
  return fc.constantFrom(...targets).chain((target) =>
    fc.record({
      device: fc.constant(target.device),
      bar: fc.constant(target.bar),
      width: fc.constantFrom(...WIDTHS),
      offset: fc.oneof(
        { weight: 4, arbitrary: fc.nat({ max: target.length / 8 - 1 }).map((n) => String(n * 8)) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(-8, -4, -2, -1, 0, 4).map((d) => String(target.length + d)),
        },
      ),
      data: fc.nat({ max: 255 }).map(String),
      source: fc.record({
        pid: fc.constantFrom(...source.pids),
        fd: fc.constantFrom(...source.fds),
      }),
      labels: fc.constantFrom(undefined, { vm: "a" }, { "team/x": "b" }),
    })
  );
}

function looseSpec(
  devices: PciDevice[],
  source: SourceChoice,
): fc.Arbitrary<Record<string, unknown>> {
  const offsets = interestingOffsets(devices);
  const number = (n: bigint) =>
    fc.constantFrom<unknown>(n, String(n), `0x${n.toString(16)}`, Number(n));
  return fc.record({
    device: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...devices.map((d) => d.address)) },
      { weight: 1, arbitrary: fc.constantFrom("65:00.0", "0000:65:00.1", "ffff:ff:1f.7") },
      { weight: 1, arbitrary: junk },
    ),
    bar: fc.oneof(
      { weight: 8, arbitrary: fc.integer({ min: 0, max: 6 }) },
      { weight: 1, arbitrary: junk },
    ),
    width: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom<unknown>(...WIDTHS) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(0, 3, 5, 6, 7, 16, 32, -4, "4", 4.5) },
      { weight: 1, arbitrary: junk },
    ),
    offset: fc.oneof(
      { weight: 5, arbitrary: fc.nat({ max: 1 << 21 }).map((n) => String(n & ~7)) },
      { weight: 4, arbitrary: fc.constantFrom(...offsets).chain(number) },
      { weight: 2, arbitrary: fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }).chain(number) },
      { weight: 1, arbitrary: junk },
    ),
    data: fc.oneof(
      { weight: 6, arbitrary: fc.nat({ max: 255 }).map(String) },
      {
        weight: 2,
        arbitrary: fc.constantFrom<unknown>(
          "256",
          "65535",
          "65536",
          "4294967296",
          String(U64 - 1n),
        ),
      },
      { weight: 1, arbitrary: fc.bigInt({ min: -1n, max: U64 }).map(String) },
      { weight: 1, arbitrary: junk },
    ),
    source: fc.oneof(
      {
        weight: 8,
        arbitrary: fc.record({
          pid: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...source.pids) }, junk),
          fd: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...source.fds) }, junk),
        }),
      },
      { weight: 1, arbitrary: junk },
    ),
    labels: fc.oneof(
      { weight: 6, arbitrary: fc.constant(undefined) },
      {
        weight: 2,
        arbitrary: fc.dictionary(fc.string({ maxLength: 70 }), fc.string(), { maxKeys: 3 }),
      },
      { weight: 1, arbitrary: junk },
    ),
  }, { requiredKeys: [] });
}

// ---- raw protobuf ----

function varint(v: bigint): number[] {
  let x = BigInt.asUintN(64, v);
  const out: number[] = [];
  do {
    const byte = Number(x & 0x7fn);
    x >>= 7n;
    out.push(x > 0n ? byte | 0x80 : byte);
  } while (x > 0n);
  return out;
}

const invalidUtf8 = fc.constantFrom(
  [0xc3, 0x28],
  [0xff],
  [0xed, 0xa0, 0x80], // an encoded surrogate
  [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
  [0xe2, 0x82],
  [0x00],
);

const utf8 = (s: string) => [...new TextEncoder().encode(s)];

/** Bytes of a string field: text that may be valid, with invalid UTF-8 spliced in. */
const stringBytes = (plausible: string[]) =>
  fc.oneof(
    fc.constantFrom(...plausible).map(utf8),
    fc.tuple(fc.constantFrom(...plausible), invalidUtf8, fc.nat({ max: 12 })).map(
      ([s, bad, at]) => {
        const b = utf8(s);
        return [...b.slice(0, at), ...bad, ...b.slice(at)];
      },
    ),
    fc.uint8Array({ maxLength: 40 }).map((a) => [...a]),
  );

type Wire = 0 | 1 | 2 | 5;

/** One field; usually with its declared wire type, sometimes with another. */
function fieldBytes(
  no: number,
  wire: Wire,
  payload: fc.Arbitrary<number[]>,
): fc.Arbitrary<number[]> {
  return fc.tuple(
    fc.oneof({ weight: 8, arbitrary: fc.constant(wire) }, fc.constantFrom<Wire>(0, 1, 2, 5)),
    payload,
    fc.nat({ max: 20 }),
  ).map(([w, p, len]) => {
    const tag = varint(BigInt((no << 3) | w));
    if (w === 2) return [...tag, ...varint(BigInt(p.length)), ...p];
    if (w === 0) return [...tag, ...(p.length > 0 ? p : [0])];
    const fixed = w === 1 ? 8 : 4;
    return [...tag, ...Array.from({ length: fixed }, (_, i) => p[i] ?? len)];
  });
}

const varintPayload = fc.oneof(
  fc.bigInt({ min: 0n, max: U64 - 1n }).map(varint),
  fc.constantFrom(varint(0n), varint(4n), varint(8n), varint(-1n)),
  fc.constant(Array(11).fill(0xff)), // an overlong varint
);

const message = (fields: fc.Arbitrary<number[]>[]) =>
  fc.array(fc.oneof(...fields), { maxLength: 8 }).map((parts) => parts.flat());

function specBytes(devices: string[]): fc.Arbitrary<number[]> {
  const source = message([fieldBytes(1, 0, varintPayload), fieldBytes(2, 0, varintPayload)]);
  const label = message([
    fieldBytes(1, 2, stringBytes(["k", "a.b/c", ""])),
    fieldBytes(2, 2, stringBytes(["v", ""])),
  ]);
  return message([
    fieldBytes(1, 2, stringBytes(devices)),
    fieldBytes(2, 0, varintPayload),
    fieldBytes(3, 0, varintPayload),
    fieldBytes(4, 0, varintPayload),
    fieldBytes(5, 0, varintPayload),
    fieldBytes(6, 2, source),
    fieldBytes(7, 2, label),
  ]);
}

export interface RawCall {
  method: string;
  bytes: Uint8Array;
}

/** Raw request bytes for the unary methods: structured garbage, or plain random bytes. */
export function rawCall(devices: string[]): fc.Arbitrary<RawCall> {
  const owners = ["vm-a", "vm-b", "", "x".repeat(200)];
  const spec = specBytes(devices);
  const byMethod: [string, fc.Arbitrary<number[]>][] = [
    [
      "CreateIoeventfd",
      message([
        fieldBytes(1, 2, spec),
        fieldBytes(2, 2, stringBytes(owners)),
        fieldBytes(3, 2, stringBytes(["r-1", ""])),
      ]),
    ],
    [
      "DeleteIoeventfd",
      message([
        fieldBytes(1, 2, stringBytes(["ioe-0000000000000000", ""])),
        fieldBytes(2, 2, spec),
      ]),
    ],
    [
      "ReconcileOwner",
      message([
        fieldBytes(1, 2, stringBytes(owners)),
        fieldBytes(2, 2, spec),
        fieldBytes(3, 0, varintPayload),
      ]),
    ],
    ["GetIoeventfd", message([fieldBytes(1, 2, stringBytes(["ioe-1", ""]))])],
    [
      "ListIoeventfds",
      message([
        fieldBytes(1, 2, stringBytes(devices)),
        fieldBytes(2, 2, stringBytes(owners)),
        fieldBytes(4, 0, varintPayload),
        fieldBytes(5, 2, stringBytes(["djE6", "!!", ""])),
      ]),
    ],
    ["GetDevice", message([fieldBytes(1, 2, stringBytes(devices))])],
  ];
  return fc.tuple(
    fc.constantFrom(...byMethod),
    fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, fc.uint8Array({ maxLength: 64 })),
  ).chain(([[method, structured], random]) =>
    (random ? fc.constant([...random]) : structured).map((b) => ({
      method,
      bytes: Uint8Array.from(b),
    }))
  );
}
