// The gRPC server: the IoeventfdService, the standard health service and (optionally)
// server reflection, on every configured listener.
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { type ApiContext, createHandlers } from "./handlers.ts";
import { api } from "./proto.ts";
import { reflectionService } from "./reflection.ts";

export const SERVICE_NAME = "ioeventd.v1.IoeventfdService";

export interface ServerOptions {
  /** grpc-js addresses: "unix:///path.sock", "127.0.0.1:50051". */
  listen: string[];
  reflection: boolean;
  credentials?: grpc.ServerCredentials;
  /** Per-listener credentials (service/security: the transport names the caller); wins. */
  credentialsFor?: (address: string) => grpc.ServerCredentials;
  maxMessageBytes?: number;
  maxConcurrentStreams?: number;
  /** Server interceptors, outermost first (RPC metrics, tracing). */
  interceptors?: grpc.ServerInterceptor[];
}

/**
 * grpc-js words a failed bind as "No address added out of total 1 resolved errors: [listen
 * EADDRINUSE: …]": say which listener could not bind, and why, in one phrase.
 */
export function listenError(address: string, err: Error): Error {
  const text = err.message;
  const why = /EADDRINUSE|address already in use/i.test(text)
    ? "address already in use (another process listens there)"
    : /EACCES|permission denied/i.test(text)
    ? "permission denied"
    : /EADDRNOTAVAIL/i.test(text)
    ? "address not available on this host"
    : text;
  return new Error(`gRPC listener ${address}: ${why}`, { cause: err });
}

export class ApiServer {
  readonly server: grpc.Server;
  readonly health: HealthImplementation;
  /** The bound addresses, with the real port when ":0" was asked. */
  readonly bound: string[] = [];
  #endStreams: () => void;

  constructor(ctx: ApiContext, private readonly options: ServerOptions) {
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": options.maxMessageBytes ?? 4 * 1024 * 1024,
      "grpc.max_concurrent_streams": options.maxConcurrentStreams ?? 256,
      interceptors: options.interceptors ?? [],
    });
    const { handlers, endStreams } = createHandlers(ctx);
    this.#endStreams = endStreams;
    this.server.addService(api().ioeventd.v1.IoeventfdService.service, handlers);
    this.health = new HealthImplementation({ "": "NOT_SERVING", [SERVICE_NAME]: "NOT_SERVING" });
    this.health.addToServer(this.server);
    // protoc's descriptors of proto/ (reflection.ts), not proto-loader's renamed ones.
    if (options.reflection) reflectionService().addToServer(this.server);
  }

  /** Binds every listener, or only `addresses` of them (a successor binds TCP ones later). */
  async start(addresses: readonly string[] = this.options.listen): Promise<void> {
    for (const address of addresses) {
      const port = await new Promise<number>((resolve, reject) =>
        this.server.bindAsync(
          address,
          this.options.credentialsFor?.(address) ?? this.options.credentials ??
            grpc.ServerCredentials.createInsecure(),
          (err, port) => {
            if (!err) return resolve(port);
            // Forget the failed attempt, so the address can be bound again later.
            this.server.unbind(address);
            reject(listenError(address, err));
          },
        )
      );
      this.bound.push(address.startsWith("unix:") ? address : address.replace(/:0$/, `:${port}`));
    }
  }

  setServing(serving: boolean): void {
    const status = serving ? "SERVING" : "NOT_SERVING";
    this.health.setStatus("", status);
    this.health.setStatus(SERVICE_NAME, status);
  }

  /** Lets in-flight calls finish for up to `graceMs`, then cuts what is left. */
  async stop(graceMs: number): Promise<void> {
    this.setServing(false);
    this.#endStreams();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
