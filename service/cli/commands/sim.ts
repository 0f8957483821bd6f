// `ioeventctl sim create <dir>`: a simulated device in a tree shaped like /sys (no agent).
import { join } from "node:path";
import { Option } from "commander";
import { createSimulatedDevice } from "../../devices/simulate.ts";
import { EXIT } from "../errors.ts";
import { print } from "../output.ts";
import type { CliCommand } from "./context.ts";

export const sim: CliCommand<{ profile: "nvidia-gpu" | "nic"; device?: string }> = {
  define: (program) =>
    program.command("sim")
      .description("simulated devices, for an agent without real ones")
      .command("create")
      .description(
        "Write a simulated device under <dir>/bus/pci/devices (a tree shaped like /sys);\n" +
          "run the agent with --sysfs-root <dir>/bus/pci/devices.",
      )
      .argument("<dir>", "plays /sys")
      .addOption(
        new Option("--profile <name>", "what to simulate").choices(["nvidia-gpu", "nic"])
          .default("nvidia-gpu"),
      )
      .option("--device <address>", "its PCI address (default 0000:65:00.0, nic 0000:66:00.0)"),
  async run(ctx) {
    const { profile, device } = ctx.flags;
    const dir = ctx.args[0]!;
    const address = device ?? (profile === "nic" ? "0000:66:00.0" : "0000:65:00.0");
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
  },
};
