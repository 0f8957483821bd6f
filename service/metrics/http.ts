// The agent's HTTP endpoint for Prometheus and Kubernetes probes:
//   GET /metrics  the Prometheus exposition;
//   GET /healthz  200 while the process serves HTTP at all (liveness);
//   GET /readyz   200 once the journal replay has re-armed everything and the gRPC API
//                 serves, 503 before that, while stopping, and while the journal cannot be
//                 written (degraded: the body names why, e.g. "journal unavailable: …").
export interface HttpEndpoints {
  metrics(): Promise<string>;
  readonly contentType: string;
  ready(): boolean;
  /** Why not ready (the 503 body), when known. */
  notReady?(): string | null;
}

/** "host:port", "[v6]:port" or ":port" (all interfaces) → Deno.serve's hostname and port. */
export function parseListen(address: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`metrics address ${address} is not host:port`);
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };

export class MetricsHttpServer {
  private constructor(
    readonly hostname: string,
    /** The bound port (the real one when 0 was asked). */
    readonly port: number,
    private readonly server: Deno.HttpServer<Deno.NetAddr>,
  ) {}

  static start(address: string, endpoints: HttpEndpoints): MetricsHttpServer {
    const { hostname, port } = parseListen(address);
    const server = Deno.serve(
      { hostname, port, onListen: () => {} },
      (request) => handle(request, endpoints),
    );
    return new MetricsHttpServer(hostname, server.addr.port, server);
  }

  /** Stops accepting, lets in-flight requests finish. */
  async close(): Promise<void> {
    await this.server.shutdown();
  }
}

async function handle(request: Request, endpoints: HttpEndpoints): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { ...TEXT, allow: "GET, HEAD" },
    });
  }
  switch (new URL(request.url).pathname) {
    case "/metrics":
      try {
        return new Response(await endpoints.metrics(), {
          headers: { "content-type": endpoints.contentType },
        });
      } catch (err) {
        return new Response(`scrape failed: ${err}\n`, { status: 500, headers: TEXT });
      }
    case "/healthz":
      return new Response("ok\n", { headers: TEXT });
    case "/readyz":
      return endpoints.ready()
        ? new Response("ready\n", { headers: TEXT })
        : new Response(`not ready: ${endpoints.notReady?.() ?? "starting or stopping"}\n`, {
          status: 503,
          headers: TEXT,
        });
    case "/":
      return new Response("ioeventd: /metrics /healthz /readyz\n", { headers: TEXT });
    default:
      return new Response("not found\n", { status: 404, headers: TEXT });
  }
}
