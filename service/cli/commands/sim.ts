// `ioeventctl sim create <dir>`: a simulated device in a tree shaped like /sys (no agent).
import { join } from "node:path";
import { createSimulatedDevice } from "../../devices/simulate.ts";
import { EXIT, UsageError } from "../options.ts";
import { print } from "../output.ts";
import type { CommandContext } from "./context.ts";

export async function sim(ctx: CommandContext): Promise<number> {
  const { values } = ctx;
  const [sub, dir] = ctx.args;
  if (sub !== "create" || !dir) throw new UsageError("usage: sim create <dir> --profile <name>");
  const profile = values.profile ?? "nvidia-gpu";
  if (profile !== "nvidia-gpu" && profile !== "nic") {
    throw new UsageError(`unknown profile ${profile} (nvidia-gpu, nic)`);
  }
  const address = values.device ?? (profile === "nic" ? "0000:66:00.0" : "0000:65:00.0");
  // <dir> plays /sys: the devices go to <dir>/bus/pci/devices, like the real tree.
  const root = /bus\/pci\/devices\/?$/.test(dir) ? dir : join(dir, "bus", "pci", "devices");
  const path = await createSimulatedDevice(root, address, profile);
  print(ctx.out, `created ${profile} at ${path}\nrun the agent with --sysfs-root ${root}`, {
    path,
    profile,
    address,
    sysfsRoot: root,
  });
  return EXIT.OK;
}
