// ioeventctl: the agent's command line, for people (tables) and pipelines (--json).
//
// Exit codes: 0 success; 2 usage error; 3 agent unreachable; 4 request rejected by the agent
// (the reason is printed); 1 anything else.
import type * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { decodeStatus } from "../api/status_details.ts";
import { createSimulatedDevice } from "../devices/simulate.ts";
import type { Device__Output } from "../api/generated/ioeventd/v1/Device.ts";
import type { Ioeventfd__Output } from "../api/generated/ioeventd/v1/Ioeventfd.ts";
import type { IoeventfdSpec } from "../api/generated/ioeventd/v1/IoeventfdSpec.ts";
import type { IoeventfdEvent__Output } from "../api/generated/ioeventd/v1/IoeventfdEvent.ts";
import { type RawSpec, validateShape } from "../registry/validation.ts";
import { AgentClient, channelSettings, defaultAddress } from "./client.ts";
import { renderTable } from "./table.ts";
import { runFleet } from "./fleet.ts";

export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, UNREACHABLE: 3, REJECTED: 4 } as const;

const USAGE = `ioeventctl — control an ioeventd agent

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

class UsageError extends Error {}

type Out = { json: boolean; write: (s: string) => void };

function labelsOf(values: string[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const kv of values ?? []) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new UsageError(`--label wants key=value, got ${kv}`);
    labels[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return labels;
}

function hex(value: string | number): string {
  return "0x" + BigInt(value).toString(16);
}

function ioeventfdRows(items: Ioeventfd__Output[]): string[][] {
  return [
    [
      "ID",
      "OWNER",
      "DEVICE",
      "BAR",
      "OFFSET",
      "WIDTH",
      "DATA",
      "SOURCE",
      "VFIO",
      "BACKEND",
      "STATE",
      "TRIGGERS",
    ],
    ...items.map((i) => [
      i.id,
      i.owner,
      i.spec?.device ?? "",
      String(i.spec?.bar ?? ""),
      hex(i.spec?.offset ?? 0),
      String(i.spec?.width ?? ""),
      hex(i.spec?.data ?? 0),
      `${i.spec?.source?.pid}:${i.spec?.source?.fd}`,
      i.spec?.vfioDevice ? `${i.spec.vfioDevice.pid}:${i.spec.vfioDevice.fd}` : "-",
      i.backend,
      i.state,
      i.triggers,
    ]),
  ];
}

function deviceRows(devices: Device__Output[]): string[][] {
  return [
    ["ADDRESS", "VENDOR:DEVICE", "CLASS", "DRIVER", "MANAGED", "IOEVENTFDS", "MSI-X", "SIM"],
    ...devices.map((d) => [
      d.address,
      `${d.vendorId.toString(16).padStart(4, "0")}:${d.deviceId.toString(16).padStart(4, "0")}`,
      d.classCode.toString(16).padStart(6, "0"),
      d.driver || "-",
      d.managed ? "yes" : `no (${d.unmanagedReason})`,
      `${d.ioeventfds}/${d.ioeventfdsLimit}`,
      d.msix?.present
        ? `${d.msix.tableSize} @ BAR${d.msix.table?.bar}+${hex(d.msix.table?.offset ?? 0)}`
        : "-",
      d.simulated ? "yes" : "no",
    ]),
  ];
}

function describeDevice(d: Device__Output): string {
  const lines = renderTable(deviceRows([d])).split("\n");
  const bars = renderTable([
    ["BAR", "KIND", "START", "LENGTH", "64BIT", "PREFETCH", "ELIGIBLE"],
    ...d.bars.map((b) => [
      String(b.index),
      b.kind,
      hex(b.start),
      hex(b.length),
      b.is_64bit ? "yes" : "no",
      b.prefetchable ? "yes" : "no",
      b.eligible ? "yes" : `no (${b.ineligibleReason})`,
    ]),
  ]);
  const msix = d.msix?.present
    ? `MSI-X: ${d.msix.tableSize} entries, table BAR${d.msix.table?.bar}+${
      hex(d.msix.table?.offset ?? 0)
    } (${d.msix.table?.length} bytes), PBA BAR${d.msix.pba?.bar}+${
      hex(d.msix.pba?.offset ?? 0)
    } (${d.msix.pba?.length} bytes)`
    : "MSI-X: none";
  return [...lines, "", bars, msix, `memory decode: ${d.memoryDecode ? "on" : "off"}`].join("\n");
}

function eventLine(e: IoeventfdEvent__Output): string {
  if (e.type === "SNAPSHOT") {
    return `SNAPSHOT ${e.snapshot.length} ioeventfds (revision ${e.revision})`;
  }
  const i = e.ioeventfd!;
  const cause = e.type === "REMOVED" ? ` cause=${e.cause}` : "";
  return `${e.type} ${i.id} owner=${i.owner} ${i.spec?.device} bar${i.spec?.bar}+${
    hex(i.spec?.offset ?? 0)
  } w${i.spec?.width}=${hex(i.spec?.data ?? 0)} state=${i.state}${cause}`;
}

function specFromFlags(v: Record<string, string | string[] | boolean | undefined>): RawSpec {
  return {
    device: v.device,
    bar: v.bar,
    offset: v.offset,
    width: v.width,
    data: v.data,
    source: { pid: v.pid, fd: v.fd },
    labels: labelsOf(v.label as string[] | undefined),
    // Either flag alone is still a VFIO device, and the missing one is reported.
    vfioDevice: v["vfio-pid"] !== undefined || v["vfio-fd"] !== undefined
      ? { pid: v["vfio-pid"], fd: v["vfio-fd"] }
      : undefined,
  };
}

/** The flag behind a shape field: "source.pid" → --pid, "vfio_device.fd" → --vfio-fd. */
function flagOf(field: string): string {
  return "--" + field.replace("source.", "").replace("vfio_device.", "vfio-");
}

/** Parses flags locally with the agent's own shape rules, so typos fail before any call. */
function shapeChecked(raw: RawSpec): IoeventfdSpec {
  const v = validateShape(raw, "");
  if (!v.ok) {
    throw new UsageError(
      v.violations.map((x) => `${flagOf(x.field)}: ${x.description}`).join("\n"),
    );
  }
  return { ...v.value, offset: v.value.offset.toString(), data: v.value.data.toString() };
}

async function run(args: string[], out: Out): Promise<number> {
  // `fleet` has options of its own (service/cli/fleet.ts); flags before it (--json) go along.
  const first = args.findIndex((a) => !a.startsWith("-"));
  if (args[first] === "fleet") {
    return await runFleet(args.filter((_, i) => i !== first), { write: out.write });
  }
  const { values, positionals } = parseArgs({
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
  out.json = values.json ?? false;
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    out.write(USAGE);
    return values.help ? EXIT.OK : EXIT.USAGE;
  }
  const print = (human: string, machine: unknown) =>
    out.write(out.json ? JSON.stringify(machine, null, 2) : human);

  if (command === "sim") {
    const [sub, dir] = rest;
    if (sub !== "create" || !dir) throw new UsageError("usage: sim create <dir> --profile <name>");
    const profile = values.profile ?? "nvidia-gpu";
    if (profile !== "nvidia-gpu" && profile !== "nic") {
      throw new UsageError(`unknown profile ${profile} (nvidia-gpu, nic)`);
    }
    const address = values.device ?? (profile === "nic" ? "0000:66:00.0" : "0000:65:00.0");
    // <dir> plays /sys: the devices go to <dir>/bus/pci/devices, like the real tree.
    const root = /bus\/pci\/devices\/?$/.test(dir) ? dir : join(dir, "bus", "pci", "devices");
    const path = await createSimulatedDevice(root, address, profile);
    print(`created ${profile} at ${path}\nrun the agent with --sysfs-root ${root}`, {
      path,
      profile,
      address,
      sysfsRoot: root,
    });
    return EXIT.OK;
  }

  const client = new AgentClient(
    values.address ?? defaultAddress(),
    ...channelSettings({
      ca: values["tls-ca"],
      cert: values["tls-cert"],
      key: values["tls-key"],
      serverName: values["tls-server-name"],
    }),
  );
  try {
    switch (command) {
      case "info": {
        const i = await client.info();
        print(
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
      }
      case "devices": {
        const devices = await client.listDevices(values.managed ?? false, values.rescan ?? false);
        print(renderTable(deviceRows(devices)), devices);
        return EXIT.OK;
      }
      case "device": {
        if (!rest[0]) throw new UsageError("usage: device <address>");
        const d = await client.getDevice(rest[0]);
        print(describeDevice(d), d);
        return EXIT.OK;
      }
      case "create": {
        if (!values.owner) throw new UsageError("--owner is required");
        const spec = shapeChecked(specFromFlags(values));
        const created = await client.create({
          spec,
          owner: values.owner,
          requestId: values["request-id"] ?? "",
        });
        print(renderTable(ioeventfdRows([created])), created);
        return EXIT.OK;
      }
      case "delete": {
        const req = rest[0] ? { id: rest[0] } : {
          key: {
            device: values.device,
            bar: Number(values.bar ?? 0),
            offset: values.offset ?? "0",
            width: Number(values.width ?? 0),
            data: values.data ?? "0",
          },
        };
        const { deleted } = await client.delete(req);
        print(`deleted ${deleted?.id}`, deleted);
        return EXIT.OK;
      }
      case "get": {
        if (!rest[0]) throw new UsageError("usage: get <id>");
        const i = await client.get(rest[0]);
        print(renderTable(ioeventfdRows([i])), i);
        return EXIT.OK;
      }
      case "list": {
        const items = await client.listAll({
          device: values.device ?? "",
          owner: values.owner ?? "",
          labels: labelsOf(values.label),
        });
        print(renderTable(ioeventfdRows(items)), items);
        return EXIT.OK;
      }
      case "watch": {
        return await new Promise<number>((resolve) => {
          const call = client.watch(
            { device: values.device ?? "", owner: values.owner ?? "" },
            (e) => out.write(out.json ? JSON.stringify(e) : eventLine(e)),
            (err) => resolve(reportError(err, out)),
          );
          call.on("end", () => resolve(EXIT.OK));
        });
      }
      case "reconcile": {
        if (!values.file) throw new UsageError("usage: reconcile -f desired.json");
        const doc = JSON.parse(readFileSync(values.file, "utf8")) as {
          owner?: string;
          desired?: RawSpec[];
        };
        const owner = values.owner ?? doc.owner;
        if (!owner) throw new UsageError("the file or --owner must name the owner");
        const desired = (doc.desired ?? []).map((d) => shapeChecked(d));
        const r = await client.reconcile({ owner, desired, dryRun: values["dry-run"] ?? false });
        print(
          `added ${r.added.length}, kept ${r.kept.length}, removed ${r.removed.length}` +
            (values["dry-run"] ? " (dry run: nothing changed)" : ""),
          r,
        );
        return EXIT.OK;
      }
      default:
        throw new UsageError(`unknown command ${command}\n\n${USAGE}`);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if (typeof (err as grpc.ServiceError)?.code === "number") {
      return reportError(err as grpc.ServiceError, out);
    }
    throw err;
  } finally {
    client.close();
  }
}

function reportError(err: grpc.ServiceError, out: Out): number {
  // 14 UNAVAILABLE and 4 DEADLINE_EXCEEDED without details: the agent is not there.
  const details = decodeStatus(err);
  if (!details && (err.code === 14 || err.code === 4)) {
    out.write(
      out.json
        ? JSON.stringify({ error: "UNREACHABLE", message: err.details })
        : `error: agent unreachable: ${err.details}`,
    );
    return EXIT.UNREACHABLE;
  }
  const reason = details?.reason || "UNKNOWN";
  if (out.json) {
    out.write(JSON.stringify({
      error: reason,
      code: err.code,
      message: err.details,
      violations: details?.violations ?? [],
    }));
  } else {
    out.write(`error: ${reason}: ${err.details}`);
    for (const v of details?.violations ?? []) out.write(`  ${v.field}: ${v.description}`);
  }
  return EXIT.REJECTED;
}

export async function main(args: string[]): Promise<number> {
  const out: Out = { json: false, write: (s) => console.log(s) };
  try {
    return await run(args, out);
  } catch (err) {
    if (err instanceof UsageError || (err as Error)?.name === "TypeError") {
      console.error(`ioeventctl: ${(err as Error).message}`);
      return EXIT.USAGE;
    }
    console.error(`ioeventctl: ${err}`);
    return EXIT.FAILURE;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
