// A promise-based client of the agent, shared by ioeventctl and the tests.
import * as grpc from "@grpc/grpc-js";
import { join, resolve } from "node:path";
import { api } from "../api/proto.ts";
import type { IoeventfdServiceClient } from "../api/generated/ioeventd/v1/IoeventfdService.ts";
import type { AgentInfo__Output } from "../api/generated/ioeventd/v1/AgentInfo.ts";
import type { CreateIoeventfdRequest } from "../api/generated/ioeventd/v1/CreateIoeventfdRequest.ts";
import type { DeleteIoeventfdRequest } from "../api/generated/ioeventd/v1/DeleteIoeventfdRequest.ts";
import type { DeleteIoeventfdResponse__Output } from "../api/generated/ioeventd/v1/DeleteIoeventfdResponse.ts";
import type { Device__Output } from "../api/generated/ioeventd/v1/Device.ts";
import type { Ioeventfd__Output } from "../api/generated/ioeventd/v1/Ioeventfd.ts";
import type { IoeventfdEvent__Output } from "../api/generated/ioeventd/v1/IoeventfdEvent.ts";
import type { ListIoeventfdsRequest } from "../api/generated/ioeventd/v1/ListIoeventfdsRequest.ts";
import type { ListIoeventfdsResponse__Output } from "../api/generated/ioeventd/v1/ListIoeventfdsResponse.ts";
import type { ReconcileOwnerRequest } from "../api/generated/ioeventd/v1/ReconcileOwnerRequest.ts";
import type { ReconcileOwnerResponse__Output } from "../api/generated/ioeventd/v1/ReconcileOwnerResponse.ts";
import type { WatchIoeventfdsRequest } from "../api/generated/ioeventd/v1/WatchIoeventfdsRequest.ts";

import { clientCredentials } from "../security/tls.ts";

/**
 * $IOEVENTD_ADDRESS, else the socket of an agent started with the defaults from this
 * folder (its state directory: $IOEVENTD_STATE_DIR or .state). Absolute, because a
 * "unix://" address takes no relative path.
 */
export function defaultAddress(): string {
  const stateDir = resolve(Deno.env.get("IOEVENTD_STATE_DIR") ?? ".state");
  return Deno.env.get("IOEVENTD_ADDRESS") ?? `unix://${join(stateDir, "run", "ioeventd.sock")}`;
}

export interface ClientTls {
  /** PEM CA bundle that signed the agent's certificate; TLS is off without it. */
  ca?: string;
  /** Our client certificate and key (the agent requires them: mutual TLS). */
  cert?: string;
  key?: string;
  /** The name to check the agent's certificate against, when the address is an IP. */
  serverName?: string;
}

/** Credentials and channel options for TLS settings, else $IOEVENTD_TLS_*; plaintext without a CA. */
export function channelSettings(
  tls: ClientTls = {},
): [grpc.ChannelCredentials, grpc.ChannelOptions] {
  const env = (name: string) => Deno.env.get(name) || undefined;
  const ca = tls.ca ?? env("IOEVENTD_TLS_CA");
  if (!ca) return [grpc.credentials.createInsecure(), {}];
  const serverName = tls.serverName ?? env("IOEVENTD_TLS_SERVER_NAME");
  return [
    clientCredentials({
      ca,
      cert: tls.cert ?? env("IOEVENTD_TLS_CERT"),
      key: tls.key ?? env("IOEVENTD_TLS_KEY"),
    }),
    serverName ? { "grpc.ssl_target_name_override": serverName } : {},
  ];
}

type Unary<Req, Res> = (
  req: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  cb: grpc.requestCallback<Res>,
) => grpc.ClientUnaryCall;

export interface CallOptions {
  deadlineMs?: number;
  metadata?: Record<string, string>;
}

export class AgentClient {
  readonly raw: IoeventfdServiceClient;

  constructor(
    readonly address: string,
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    options: grpc.ChannelOptions = {},
  ) {
    this.raw = new (api().ioeventd.v1.IoeventfdService)(address, credentials, options);
  }

  #call<Req, Res>(method: Unary<Req, Res>, req: Req, opts: CallOptions = {}): Promise<Res> {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(opts.metadata ?? {})) metadata.set(k, v);
    const deadline = new Date(Date.now() + (opts.deadlineMs ?? 10_000));
    return new Promise((resolve, reject) =>
      method.call(this.raw, req, metadata, { deadline }, (err, res) => {
        if (err) reject(err);
        else resolve(res as Res);
      })
    );
  }

  info(opts?: CallOptions): Promise<AgentInfo__Output> {
    return this.#call(this.raw.getAgentInfo as Unary<object, AgentInfo__Output>, {}, opts);
  }
  listDevices(managedOnly = false, rescan = false, opts?: CallOptions): Promise<Device__Output[]> {
    return this.#call(
      this.raw.listDevices as Unary<object, { devices: Device__Output[] }>,
      { managedOnly, rescan },
      opts,
    ).then((r) => r.devices);
  }
  getDevice(address: string, opts?: CallOptions): Promise<Device__Output> {
    return this.#call(this.raw.getDevice as Unary<object, Device__Output>, { address }, opts);
  }
  create(req: CreateIoeventfdRequest, opts?: CallOptions): Promise<Ioeventfd__Output> {
    return this.#call(
      this.raw.createIoeventfd as Unary<CreateIoeventfdRequest, Ioeventfd__Output>,
      req,
      opts,
    );
  }
  delete(
    req: DeleteIoeventfdRequest,
    opts?: CallOptions,
  ): Promise<DeleteIoeventfdResponse__Output> {
    return this.#call(
      this.raw.deleteIoeventfd as Unary<DeleteIoeventfdRequest, DeleteIoeventfdResponse__Output>,
      req,
      opts,
    );
  }
  get(id: string, opts?: CallOptions): Promise<Ioeventfd__Output> {
    return this.#call(this.raw.getIoeventfd as Unary<object, Ioeventfd__Output>, { id }, opts);
  }
  list(
    req: ListIoeventfdsRequest = {},
    opts?: CallOptions,
  ): Promise<ListIoeventfdsResponse__Output> {
    return this.#call(
      this.raw.listIoeventfds as Unary<ListIoeventfdsRequest, ListIoeventfdsResponse__Output>,
      req,
      opts,
    );
  }
  /** Every page of a listing. */
  async listAll(req: ListIoeventfdsRequest = {}, opts?: CallOptions): Promise<Ioeventfd__Output[]> {
    const out: Ioeventfd__Output[] = [];
    let pageToken = "";
    do {
      const page = await this.list({ ...req, pageSize: 1000, pageToken }, opts);
      out.push(...page.ioeventfds);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }
  reconcile(
    req: ReconcileOwnerRequest,
    opts?: CallOptions,
  ): Promise<ReconcileOwnerResponse__Output> {
    return this.#call(
      this.raw.reconcileOwner as Unary<ReconcileOwnerRequest, ReconcileOwnerResponse__Output>,
      req,
      opts,
    );
  }
  /** The watch stream; cancel the returned call to stop it (that is not an error). */
  watch(
    req: WatchIoeventfdsRequest,
    onEvent: (e: IoeventfdEvent__Output) => void,
    onError: (err: grpc.ServiceError) => void = () => {},
  ): grpc.ClientReadableStream<IoeventfdEvent__Output> {
    const call = this.raw.watchIoeventfds(req);
    call.on("data", onEvent);
    call.on("error", (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) onError(err);
    });
    return call;
  }
  /** Resolves once the channel is connected, or rejects after `ms`. */
  waitForReady(ms: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.raw.waitForReady(new Date(Date.now() + ms), (err) => (err ? reject(err) : resolve()))
    );
  }
  close(): void {
    this.raw.close();
  }
}
