// `ioeventctl sim create <dir>`: a simulated device in a tree shaped like /sys (no agent).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Option } from "commander";
import { createSimulatedDevice } from "../../devices/simulate.ts";
import { normalizePciAddress } from "../../devices/pci_address.ts";
import { REAL_SYSFS } from "../../config.ts";
import { EXIT, UsageError } from "../errors.ts";
import { print } from "../output.ts";
import type { CliCommand } from "./context.ts";

/**
 * Default addresses: apart from the agent's own simulated host (0000:65:00.0, 0000:66:00.0),
 * so a tree made here can be given to that agent with --sysfs-root beside it.
 */
const DEFAULTS = { "nvidia-gpu": "0000:67:00.0", nic: "0000:68:00.0" } as const;

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
      .option(
        "--device <address>",
        `its PCI address (default ${
          DEFAULTS["nvidia-gpu"]
        }, nic ${DEFAULTS.nic}: not the agent's own simulated host's)`,
      ),
  async run(ctx) {
    const { profile, device } = ctx.flags;
    const dir = ctx.args[0]!;
    const address = normalizePciAddress(device ?? DEFAULTS[profile]);
    if (address === null) throw new UsageError(`--device: ${device} is not a PCI address`);
    // A simulated device must never stand where a real one is: the agent would drop one.
    if (existsSync(join(REAL_SYSFS, address))) {
      throw new UsageError(`--device: ${address} is a real PCI device on this host; pick another`);
    }
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
