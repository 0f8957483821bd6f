// One host's connection for a fleet command: the ioeventd client, the standard
// grpc.health.v1 client, the channel credentials, and the mapping of a failed call to the
// short reason the fleet tables show.
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { service as healthService } from "grpc-health-check";
import { decodeStatus } from "../api/status_details.ts";
import { AgentClient } from "./client.ts";
import { TaskTimeout } from "./fleet_pool.ts";

export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
  /** The name the agents' certificates carry, when hosts are listed by IP address. */
  serverName?: string;
}

/** Plaintext unless a CA is given; a client certificate needs both cert and key (mTLS). */
export function channelCredentials(tls: TlsFiles): grpc.ChannelCredentials {
  if (!tls.ca && !tls.cert && !tls.key) {
    if (tls.serverName) throw new Error("--tls-server-name needs --tls-ca");
    return grpc.credentials.createInsecure();
  }
  if (Boolean(tls.cert) !== Boolean(tls.key)) {
    throw new Error("--tls-cert and --tls-key go together");
  }
  const read = (path?: string) => (path ? readFileSync(path) : null);
  return grpc.credentials.createSsl(read(tls.ca), read(tls.key), read(tls.cert));
}

export function channelOptions(tls: TlsFiles): grpc.ChannelOptions {
  return tls.serverName
    ? {
      "grpc.ssl_target_name_override": tls.serverName,
      "grpc.default_authority": tls.serverName,
    }
    : {};
}

export type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

interface HealthStub extends grpc.Client {
  Check(
    req: { service: string },
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: { status: ServingStatus }) => void,
  ): grpc.ClientUnaryCall;
}

const HealthClient = grpc.makeGenericClientConstructor(
  healthService as unknown as grpc.ServiceDefinition,
  "grpc.health.v1.Health",
) as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ChannelOptions,
) => HealthStub;

export class HostConnection {
  readonly agent: AgentClient;
  readonly #health: HealthStub;

  constructor(
    address: string,
    credentials: grpc.ChannelCredentials,
    options: grpc.ChannelOptions = {},
  ) {
    this.agent = new AgentClient(address, credentials, options);
    this.#health = new HealthClient(address, credentials, options);
  }

  /** The server's overall status (service ""), what a kubelet gRPC probe would ask. */
  health(deadline: number): Promise<ServingStatus> {
    return new Promise((resolve, reject) =>
      this.#health.Check({ service: "" }, { deadline: new Date(deadline) }, (err, res) => {
        if (err) reject(err);
        else resolve(res?.status ?? "UNKNOWN");
      })
    );
  }

  close(): void {
    this.agent.close();
    this.#health.close();
  }
}

/** Milliseconds left until `deadline`, at least 1 (grpc-js treats 0 as "no deadline"). */
export function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}

export interface Failure {
  /** UNREACHABLE, TIMEOUT, or the agent's reason / the gRPC status name. */
  error: string;
  message: string;
}

const STATUS_NAMES = Object.fromEntries(
  Object.entries(grpc.status).filter(([, v]) => typeof v === "number").map(([k, v]) => [v, k]),
) as Record<number, string>;

export function describeFailure(err: unknown, timedOut = false): Failure {
  if (timedOut || err instanceof TaskTimeout) {
    return { error: "TIMEOUT", message: (err as Error).message };
  }
  const e = err as grpc.ServiceError;
  if (typeof e?.code === "number") {
    // grpc-js ends connection errors with an empty "Resolution note:"; it says nothing.
    const message = (e.details ?? "").replace(/\.?\s*Resolution note:\s*$/, "");
    const details = decodeStatus(e);
    if (details?.reason) return { error: details.reason, message };
    if (e.code === grpc.status.UNAVAILABLE) return { error: "UNREACHABLE", message };
    if (e.code === grpc.status.DEADLINE_EXCEEDED) return { error: "TIMEOUT", message };
    return { error: STATUS_NAMES[e.code] ?? `CODE_${e.code}`, message };
  }
  return { error: "ERROR", message: err instanceof Error ? err.message : String(err) };
}
