// ioeventctl's command line (fleet aside: fleet_options.ts): the one table of flags, the
// exit codes and the usage text every command shares.
import { parseArgs } from "node:util";
import { defaultAddress } from "./client.ts";

export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, UNREACHABLE: 3, REJECTED: 4 } as const;

/** A mistake on the command line or in a file it names: exit 2, before any call. */
export class UsageError extends Error {}

export const USAGE = `ioeventctl — control an ioeventd agent

Usage: ioeventctl [--address A] [--json] <command> [options]

Commands:
  info                                  agent version, limits and capabilities
  devices [--managed] [--rescan]        PCI devices the agent sees (--rescan: re-read sysfs)
  device <address>                      one device, with BARs and MSI-X layout
  create --device D --bar N --offset O --width W --data X --pid P --fd F --owner O
         [--vfio-pid P --vfio-fd F] [--label k=v ...] [--request-id R]
                                        arm an ioeventfd (--vfio-*: the VMM's VFIO device
                                        fd: served by the kernel, else the VFIO BAR mmap)
  delete <id>                           disarm by id
  delete --device D --bar N --offset O --width W --data X
                                        disarm by key
  get <id>                              one ioeventfd with its counters
  list [--device D] [--owner O] [--label k=v ...]
  watch [--device D] [--owner O]        stream changes (one line per event)
  reconcile -f desired.json [--dry-run] make an owner's set equal to the file
                                        ({"owner": "...", "desired": [spec, ...]})
  sim create <dir> --profile nvidia-gpu|nic [--device A]
                                        write a simulated device under <dir>/bus/pci/devices
                                        (a tree shaped like /sys)
  fleet <info|health|list|watch|rollout-gate> --hosts <file|list|-> [options]
                                        the same against many agents in parallel, with a
                                        per-host table; exit 1 when any host fails
                                        (ioeventctl fleet --help)

The agent address comes from --address, else $IOEVENTD_ADDRESS, else
${defaultAddress()}. Numbers accept decimal or 0x-hex.

TCP agents use mutual TLS: --tls-ca F --tls-cert F --tls-key F (else $IOEVENTD_TLS_CA,
$IOEVENTD_TLS_CERT, $IOEVENTD_TLS_KEY); --tls-server-name N when the address is an IP.`;

export function parseCli(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      address: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      managed: { type: "boolean" },
      rescan: { type: "boolean" },
      device: { type: "string" },
      bar: { type: "string" },
      offset: { type: "string" },
      width: { type: "string" },
      data: { type: "string" },
      pid: { type: "string" },
      fd: { type: "string" },
      "vfio-pid": { type: "string" },
      "vfio-fd": { type: "string" },
      owner: { type: "string" },
      label: { type: "string", multiple: true },
      "request-id": { type: "string" },
      file: { type: "string", short: "f" },
      "dry-run": { type: "boolean" },
      profile: { type: "string" },
      "tls-ca": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-server-name": { type: "string" },
    },
  });
}

export type CliValues = ReturnType<typeof parseCli>["values"];

export function labelsOf(values: string[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const kv of values ?? []) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new UsageError(`--label wants key=value, got ${kv}`);
    labels[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return labels;
}
