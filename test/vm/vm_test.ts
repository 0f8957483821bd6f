// The VM tier (test/vm/README.md): a real Linux kernel in QEMU with an ivshmem-plain device
// whose BAR2 is a file of this host, and the native plugin inside driving each backend —
// user-mmap (sysfs resource2), vfio-mmap (VFIO region mmap), kernel (VFIO_DEVICE_IOEVENTFD)
// and the fallback between the last two. The guest reports on the serial console; the
// bytes are checked here, in the backing file, against a plan this file computes itself.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BAR_BYTES = 1 << 20;
const FILL = 0x5a;
const WIDTHS = [1, 2, 4, 8];
const BOOT_TIMEOUT_MS = 150_000;

/** Where each case writes (the guest driver follows the same plan). */
const PLAN = [
  { case: "sysfs", code: 1, base: 0x1000, backend: "user-mmap" },
  { case: "vfio-mmap", code: 2, base: 0x2000, backend: "vfio-mmap" },
  { case: "kernel", code: 3, base: 0x3000, backend: "kernel" },
  { case: "auto at the kernel limit", code: 4, base: 0x4000, backend: "vfio-mmap" },
  { case: "auto below the limit", code: 5, base: 0x4800, backend: "kernel" },
] as const;

/** Rules the real kernel (or the engine, for user space) must be seen enforcing. */
const REQUIRED_FACTS = [
  "vfio_probe sees the container and vfio-pci",
  "vfio_acquire from the holder (pidfd_getfd)",
  "vfio_acquire of its stdin",
  "bounds: offset = BAR length",
  "alignment: 4 bytes at 0x1002",
  "duplicate eventfd",
  "bounds: offset = region size",
  "engine: duplicate key (kernel-only)",
  "engine: duplicate key (auto)",
  "engine: same address, other data",
  "raw: same key again",
  "raw: same key, other eventfd",
  "raw: de-assign again",
  "raw: 4 bytes at size-2 (bounds)",
  "raw: offset = size (bounds)",
  "raw: width 3",
  "raw: region 7 (config space)",
  "raw: misaligned 4 bytes at 0x3802 (no alignment rule)",
  "raw: limit reached",
  "engine kernel-only at the limit",
  "raw: key free after unregister",
  "hand-over: the key registered again",
  "hand-over: the new engine adopts it",
  "hand-over: a write after the old engine closed",
  "hand-over: key free after the adopter's unregister",
  "raw: first table entry",
  "raw: PBA is not protected",
  "engine auto: 4 bytes on the table",
  "engine auto: 8 bytes on the table",
];

function dataFor(code: number, width: number): bigint {
  return 0x8877_6655_4433_2200n + (BigInt(code) << 4n) + BigInt(width);
}

function le(value: bigint, width: number): number[] {
  return Array.from({ length: width }, (_, i) => Number((value >> BigInt(8 * i)) & 0xffn));
}

function hex(bytes: Iterable<number>): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

type Flavor = "stable" | "newer";

async function buildGuest(flavor: Flavor): Promise<{ kernel: string; initrd: string; ms: number }> {
  const t0 = performance.now();
  const out = await new Deno.Command("bash", {
    args: [join(ROOT, "test/vm/build_guest.sh"), flavor],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`test/vm/build_guest.sh failed:\n${err}\n${text}`);
  const kv = Object.fromEntries(
    text.split("\n").filter((l) => l.includes("=")).map((l) => {
      const i = l.indexOf("=");
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
  assert.ok(kv.KERNEL && kv.INITRD, `build_guest.sh printed no paths:\n${text}\n${err}`);
  return { kernel: kv.KERNEL, initrd: kv.INITRD, ms: performance.now() - t0 };
}

/** TCG unless IOEVENTD_VM_ACCEL says otherwise (see README: nested KVM may not run it). */
function accelArgs(): string[] {
  const accel = Deno.env.get("IOEVENTD_VM_ACCEL") ?? "tcg";
  if (accel === "kvm") return ["-machine", "q35,accel=kvm,kernel-irqchip=split"];
  return ["-machine", "q35,accel=tcg", "-cpu", "max"];
}

async function boot(kernel: string, initrd: string, barFile: string) {
  const args = [
    ...accelArgs(),
    "-m",
    "256M",
    "-smp",
    "1",
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-serial",
    "stdio",
    "-no-reboot",
    // The emulated IOMMU first: vfio_iommu_type1 needs interrupt remapping to attach.
    "-device",
    "intel-iommu,intremap=on",
    "-object",
    `memory-backend-file,id=bar,size=${BAR_BYTES},mem-path=${barFile},share=on`,
    "-device",
    "ivshmem-plain,memdev=bar",
    // A device with an MSI-X table, for the kernel's table rule.
    "-device",
    "virtio-rng-pci",
    "-kernel",
    kernel,
    "-initrd",
    initrd,
    "-append",
    "console=ttyS0 quiet intel_iommu=on panic=-1 rdinit=/init",
  ];
  const t0 = performance.now();
  const child = new Deno.Command("qemu-system-x86_64", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, BOOT_TIMEOUT_MS);
  const out = await child.output();
  clearTimeout(timer);
  const ms = performance.now() - t0;
  const console_ = new TextDecoder().decode(out.stdout).replaceAll("\r", "");
  const stderr = new TextDecoder().decode(out.stderr);
  return { status: out.code, console: console_, stderr, ms };
}

type Line = Record<string, unknown> & { kind: string };

async function tier(flavor: Flavor): Promise<void> {
  const guest = await buildGuest(flavor);
  const dir = Deno.makeTempDirSync({ prefix: "ioeventd-vm-" });
  const barFile = join(dir, "ivshmem.bin");
  writeFileSync(barFile, new Uint8Array(BAR_BYTES).fill(FILL));

  const run = await boot(guest.kernel, guest.initrd, barFile);
  const lines: Line[] = [];
  for (const l of run.console.split("\n")) {
    const at = l.indexOf("IOEVENTD-VM {");
    if (at < 0) continue;
    try {
      lines.push(JSON.parse(l.slice(at + "IOEVENTD-VM ".length)));
    } catch {
      throw new Error(`unparsable guest line: ${l}`);
    }
  }
  const context = `qemu exit ${run.status}\n--- stderr\n${run.stderr}\n--- console\n${run.console}`;
  assert.ok(run.console.includes("IOEVENTD-VM-BOOTED"), `the guest did not boot\n${context}`);
  const done = lines.find((l) => l.kind === "done");
  assert.ok(done, `the guest driver did not finish\n${context}`);
  assert.ok(run.console.includes("IOEVENTD-VM-END rc=0"), `driver exit status\n${context}`);

  // Where the kernel refuses 8-byte ioeventfds, the kernel cases must fall back to
  // vfio-mmap at that width (and still land); elsewhere the kernel serves them.
  const eight = lines.find((l) => l.kind === "note" && l.name === "kernel 8-byte ioeventfd");
  assert.ok(eight, `no 8-byte probe\n${context}`);
  const expectBackend = (backend: string, width: number) =>
    backend === "kernel" && width === 8 && eight.value !== "accepted" ? "vfio-mmap" : backend;

  // 1. The bytes, in the host file, where the plan says — and nothing beside them.
  const bytes = readFileSync(barFile);
  const writes = lines.filter((l) => l.kind === "write");
  const table: string[] = [];
  for (const p of PLAN) {
    for (const [i, width] of WIDTHS.entries()) {
      const offset = p.base + 0x10 * i;
      const data = dataFor(p.code, width);
      const w = writes.find((l) => l.case === p.case && l.width === width);
      assert.ok(w, `no guest report for ${p.case} width ${width}\n${context}`);
      assert.equal(w.offset, offset, `${p.case} width ${width}: offset`);
      assert.equal(BigInt(w.data as string), data, `${p.case} width ${width}: data`);
      const backend = expectBackend(p.backend, width);
      assert.equal(w.backend, backend, `${p.case} width ${width}: served by ${w.backend}`);
      const got = Array.from(bytes.subarray(offset, offset + width));
      assert.deepEqual(
        hex(got),
        hex(le(data, width)),
        `${p.case} width ${width}: bytes at ${offset.toString(16)} in the backing file`,
      );
      const after = Array.from(bytes.subarray(offset + width, offset + 0x10));
      assert.ok(after.every((b) => b === FILL), `${p.case} width ${width}: bytes after it`);
      table.push(
        `${p.case.padEnd(25)} ${backend.padEnd(9)} w${width} @${offset.toString(16)}: ${hex(got)}`,
      );
    }
  }
  // Nothing else in the plan's pages was written (the raw kernel probes were never signalled).
  for (let at = 0x1000; at < 0x5000; at++) {
    const planned = PLAN.some((p) =>
      WIDTHS.some((w, i) => at >= p.base + 0x10 * i && at < p.base + 0x10 * i + w)
    );
    if (!planned) assert.equal(bytes[at], FILL, `stray write at ${at.toString(16)}`);
  }

  // 2. The rules, seen from the real kernel (and the engine's own for user space).
  const facts = lines.filter((l) => l.kind === "fact");
  const failed = facts.filter((f) => f.ok !== true);
  assert.deepEqual(
    failed.map((f) => `${f.name}: expected ${f.expect}, got ${f.got}`),
    [],
    "rules not as expected",
  );
  for (const name of REQUIRED_FACTS) {
    assert.ok(facts.some((f) => f.name === name), `rule not exercised: ${name}\n${context}`);
  }
  assert.equal(done.ok, true, `guest failures: ${done.failures}\n${context}`);

  const kernel = run.console.match(/IOEVENTD-VM-BOOTED (\S+)/)?.[1];
  console.log(
    [
      `[${flavor}] guest kernel ${kernel}, build ${Math.round(guest.ms)} ms, boot to power-off ${
        Math.round(run.ms)
      } ms`,
      ...table,
      ...facts.map((f) => `  [${f.backend}] ${f.name}: ${f.got}`),
      ...lines.filter((l) => l.kind === "note").map((n) => `  ${n.name}: ${n.value}`),
    ].join("\n"),
  );
  Deno.removeSync(dir, { recursive: true });
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "VM tier, Debian's stable kernel (6.1): every backend writes into a real device's BAR",
  opts,
  () => tier("stable"),
);

Deno.test(
  "VM tier, a newer kernel (>= 6.14, trixie-backports): every backend, the 8-byte rule as found",
  opts,
  () => tier("newer"),
);
