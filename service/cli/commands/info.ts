// `ioeventctl info`: the agent's version, limits and capabilities.
import { EXIT } from "../errors.ts";
import { print } from "../output.ts";
import type { CliCommand } from "./context.ts";

export const info: CliCommand = {
  define: (program) =>
    program.command("info").description("agent version, limits and capabilities"),
  async run(ctx) {
    const i = await ctx.client().info();
    print(
      ctx.out,
      [
        `ioeventd ${i.version} (${i.build}) on ${i.hostname}`,
        `api: ${i.apiVersions.join(", ")}   ready: ${i.ready}`,
        `limits: ${i.limits?.maxPerDevice} per device, ${i.limits?.maxPerOwner} per owner`,
        `widths: ${
          i.capabilities?.widths.join(", ")
        } (8-byte: ${i.capabilities?.eightByteWritesReason})`,
        `backends: ${
          i.capabilities?.backends.join(", ")
        }   poll mode: ${i.capabilities?.pollMode} (${
          i.capabilities?.pollModes.join("/")
        }), ${i.capabilities?.workers} worker(s)`,
        `features: ${i.capabilities?.features.join(", ")}`,
        ...i.warnings.map((w) => `WARNING: ${w}`),
      ].join("\n"),
      i,
    );
    return EXIT.OK;
  },
};
