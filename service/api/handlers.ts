// gRPC handlers: decode the request, call the registry or the inventory, encode the answer.
// No rule lives here; every decision is the registry's (service/registry/).
import type * as grpc from "@grpc/grpc-js";
import type { PciDevice } from "../devices/types.ts";
import { Rejection } from "../rejection/rejection.ts";
import type { Registry } from "../registry/registry.ts";
import { callerOf } from "../registry/caller.ts";
import { normalizePciAddress } from "../devices/pci_address.ts";
import { toDevice, toEvent, toIoeventfd } from "./convert.ts";
import type { AgentInfo } from "./generated/ioeventd/v1/AgentInfo.ts";
import type { IoeventfdServiceHandlers } from "./generated/ioeventd/v1/IoeventfdService.ts";
import { toServiceError } from "./status_details.ts";
import { api } from "./proto.ts";
import { WatchStream } from "./watch_stream.ts";
import type { IoeventfdEvent } from "./generated/ioeventd/v1/IoeventfdEvent.ts";

/** An event's encoded size, by the serializer grpc-js itself uses for the stream. */
function eventSize(event: IoeventfdEvent): number {
  return api().ioeventd.v1.IoeventfdService.service.WatchIoeventfds.responseSerialize(event)
    .length;
}

export interface ApiContext {
  registry: Registry;
  devices: { list(): PciDevice[]; get(address: string): PciDevice | undefined };
  agentInfo(): AgentInfo;
  /** Re-reads the devices now and applies what changed (orphans), as the periodic scan does. */
  rescan(): Promise<void>;
}

/** Runs a unary handler body, turning any throw or rejection into a status with details. */
function unary<Req, Res>(
  body: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    // A throw inside body() becomes a rejection too.
    Promise.resolve().then(() => body(call.request, call)).then(
      (response) => callback(null, response),
      (err) => callback(toServiceError(err)),
    );
  };
}

function deviceOrThrow(ctx: ApiContext, address: string): PciDevice {
  const canonical = normalizePciAddress(address ?? "");
  const dev = canonical ? ctx.devices.get(canonical) : undefined;
  if (!dev) {
    throw Rejection.of([{
      field: "address",
      reason: "DEVICE_NOT_FOUND",
      description: `no PCI device ${address} on this host`,
    }]);
  }
  return dev;
}

/** The service's handlers, and a way to end open watch streams on shutdown. */
export function createHandlers(
  ctx: ApiContext,
): { handlers: IoeventfdServiceHandlers; endStreams: () => void } {
  const { registry } = ctx;
  const streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  const device = (d: PciDevice) =>
    toDevice(d, registry.countOnDevice(d.address), registry.limits.maxPerDevice);

  const handlers: IoeventfdServiceHandlers = {
    GetAgentInfo: unary(() => ctx.agentInfo()),

    ListDevices: unary(async (req) => {
      if (req.rescan) await ctx.rescan();
      return {
        devices: ctx.devices.list().filter((d) => !req.managedOnly || d.managed).map(device),
      };
    }),

    GetDevice: unary((req) => device(deviceOrThrow(ctx, req.address))),

    CreateIoeventfd: unary(async (req) => {
      const { registration } = await registry.create({
        spec: req.spec,
        owner: req.owner,
        requestId: req.requestId,
        validateOnly: req.validateOnly,
        caller: callerOf(req),
      });
      // No counters here: reading them is O(registrations); GetIoeventfd has them.
      return toIoeventfd(registration);
    }),

    DeleteIoeventfd: unary(async (req) => {
      const deleted = await registry.delete(
        req.selector === "key" && req.key ? { key: req.key } : { id: req.id },
      );
      return { deleted: toIoeventfd(deleted) };
    }),

    GetIoeventfd: unary((req) => {
      const r = registry.get(req.id);
      return toIoeventfd(r, registry.stats([r]).get(r.nativeId ?? -1n));
    }),

    ListIoeventfds: unary((req) => {
      const page = registry.list({
        device: req.device || undefined,
        owner: req.owner || undefined,
        labels: req.labels,
        pageSize: req.pageSize,
        pageToken: req.pageToken || undefined,
      });
      const stats = registry.stats(page.items);
      return {
        ioeventfds: page.items.map((r) => toIoeventfd(r, stats.get(r.nativeId ?? -1n))),
        nextPageToken: page.nextPageToken,
        totalSize: page.total,
      };
    }),

    ReconcileOwner: unary(async (req) => {
      const result = await registry.reconcile({
        owner: req.owner,
        desired: req.desired,
        dryRun: req.dryRun,
        caller: callerOf(req),
      });
      return {
        added: result.added.map((r) => toIoeventfd(r)),
        kept: result.kept.map((r) => toIoeventfd(r)),
        removed: result.removed.map((r) => toIoeventfd(r)),
      };
    }),

    WatchIoeventfds: async (call) => {
      const filter = {
        device: call.request.device
          ? normalizePciAddress(call.request.device) ?? undefined
          : undefined,
        owner: call.request.owner || undefined,
      };
      const since = BigInt(call.request.sinceRevision || "0");
      let unsubscribe = () => {};
      let stopped = false;
      const stop = () => {
        stopped = true;
        unsubscribe();
        stream.close();
        streams.delete(call);
      };
      const stream = new WatchStream(call, eventSize, stop);
      call.on("cancelled", stop);
      call.on("close", stop);
      call.on("error", stop);
      const watch = await registry.watch(
        filter,
        (event) => stream.send(toEvent(event)),
        since > 0n ? since : undefined,
      );
      unsubscribe = watch.unsubscribe;
      if (stopped) return unsubscribe(); // the client left while the watch was set up
      streams.add(call);
      if (watch.snapshot === null) {
        stream.send({ type: "RESUMED", snapshot: [], revision: since.toString() });
        for (const event of watch.missed) stream.send(toEvent(event));
      } else {
        stream.send({
          type: "SNAPSHOT",
          snapshot: watch.snapshot.map((r) => toIoeventfd(r)),
          revision: watch.revision.toString(),
        });
      }
    },
  };
  const endStreams = () => {
    for (const call of streams) call.end();
    streams.clear();
  };
  return { handlers, endStreams };
}
