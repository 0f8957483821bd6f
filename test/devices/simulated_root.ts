// Test helper: a throw-away directory tree shaped like /sys, removed after the test.

import { join } from "node:path";

export interface SimulatedRoot {
  /** Plays /sys. */
  sys: string;
  /** Plays /sys/bus/pci/devices. */
  devices: string;
}

export async function withSimulatedRoot(test: (root: SimulatedRoot) => Promise<void>) {
  const base = await Deno.makeTempDir({ prefix: "ioeventd-devices-" });
  const sys = join(base, "sys");
  const devices = join(sys, "bus", "pci", "devices");
  await Deno.mkdir(devices, { recursive: true });
  try {
    await test({ sys, devices });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}
