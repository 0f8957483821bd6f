// The lspci parser the real-machine test relies on, on output shapes this VM does not have.

import assert from "node:assert/strict";
import { parseLspciVerbose } from "./lspci_output.ts";

const SAMPLE = [
  "0000:01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] " +
  "[10de:2204] (rev a1) (prog-if 00 [VGA controller])",
  "\tSubsystem: NVIDIA Corporation Device [10de:147d]",
  "\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- " +
  "FastB2B- DisINTx+",
  "\tRegion 0: Memory at fb000000 (32-bit, non-prefetchable) [size=16M]",
  "\tRegion 1: Memory at 7800000000 (64-bit, prefetchable) [size=32G]",
  "\tRegion 3: Memory at 7000000000 (64-bit, prefetchable) [disabled] [size=32M]",
  "\tRegion 5: I/O ports at e000 [size=128]",
  "\tExpansion ROM at fc000000 [virtual] [disabled] [size=512K]",
  "\tCapabilities: [60] Power Management version 3",
  "\tCapabilities: [b4] Vendor Specific Information: Len=14 <?>",
  "\tCapabilities: [c8] MSI-X: Enable- Count=6 Masked+",
  "\t\tVector table: BAR=0 offset=00b90000",
  "\t\tPBA: BAR=0 offset=00ba0000",
  "\tKernel driver in use: vfio-pci",
  "\tKernel modules: nouveau",
  "",
  "0000:02:00.0 Non-Volatile memory controller [0108]: Some Vendor [1234:5678]",
  "\tControl: I/O- Mem- BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR-",
  "\tRegion 0: Memory at <unassigned> (64-bit, non-prefetchable)",
  "\tCapabilities: <access denied>",
  "",
].join("\n");

Deno.test("lspci -vv output: regions, sizes, MSI-X and driver are parsed", () => {
  const [gpu, nvme] = parseLspciVerbose(SAMPLE);
  assert.deepEqual(
    [gpu.address, gpu.vendorId, gpu.deviceId, gpu.revision, gpu.memoryDecode, gpu.driver],
    ["0000:01:00.0", 0x10de, 0x2204, 0xa1, true, "vfio-pci"],
  );
  assert.deepEqual(gpu.regions, [
    {
      index: 0,
      kind: "memory",
      start: 0xfb000000,
      size: 16 * 2 ** 20,
      is64bit: false,
      prefetchable: false,
    },
    {
      index: 1,
      kind: "memory",
      start: 0x7800000000,
      size: 32 * 2 ** 30,
      is64bit: true,
      prefetchable: true,
    },
    {
      index: 3,
      kind: "memory",
      start: 0x7000000000,
      size: 32 * 2 ** 20,
      is64bit: true,
      prefetchable: true,
    },
    { index: 5, kind: "io", start: 0xe000, size: 128, is64bit: false, prefetchable: false },
  ]);
  assert.deepEqual(gpu.msix, {
    capabilityOffset: 0xc8,
    count: 6,
    enabled: false,
    masked: true,
    table: { bar: 0, offset: 0xb90000 },
    pba: { bar: 0, offset: 0xba0000 },
  });
  assert.deepEqual(
    [nvme.revision, nvme.memoryDecode, nvme.regions, nvme.capabilitiesDenied, nvme.driver],
    [null, false, [], true, null],
  );
});
