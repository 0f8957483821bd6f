// The agent's HTTP endpoint for Prometheus and Kubernetes probes:
//   GET /metrics  the Prometheus exposition;
//   GET /healthz  200 while the process serves HTTP at all (liveness);
//   GET /readyz   200 once the journal replay has re-armed everything and the gRPC API
//                 serves, 503 before that, while stopping, and while the journal cannot be
//                 written (degraded: the body names why, e.g. "journal unavailable: …").
//
// /metrics negotiates: OpenMetrics 1.0.0 when the Accept header prefers
// application/openmetrics-text (Prometheus does by default), the Prometheus text format
// otherwise; gzip when Accept-Encoding allows it (Prometheus asks for it on every scrape).
import { AsyncLocalStorage } from "node:async_hooks";
import { Buffer } from "node:buffer";
import { gzipSync } from "node:zlib";

export type ExpositionFormat = "prometheus" | "openmetrics";

export const CONTENT_TYPES: Record<ExpositionFormat, string> = {
  prometheus: "text/plain; version=0.0.4; charset=utf-8",
  openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8",
};

/**
 * The format the request being served asked for. It travels with the request (an
 * AsyncLocalStorage), so an endpoint's metrics() needs no argument: the agent's wiring
 * (`metrics: () => metrics.scrape()`) serves both formats as it is.
 */
const negotiated = new AsyncLocalStorage<ExpositionFormat>();

/** The format negotiated by the /metrics request being served, if any. */
export function requestedFormat(): ExpositionFormat | undefined {
  return negotiated.getStore();
}

/** Media ranges of an Accept or Accept-Encoding header with their q values, in order. */
function ranges(header: string | null): { value: string; params: string; q: number }[] {
  if (!header) return [];
  return header.split(",").map((part) => {
    const [value, ...params] = part.split(";").map((p) => p.trim());
    const q = params.map((p) => /^q=([0-9.]+)$/i.exec(p)).find((m) => m);
    return {
      value: value.toLowerCase(),
      params: params.join(";").toLowerCase(),
      q: q ? Number(q[1]) : 1,
    };
  }).filter((r) => r.value !== "" && Number.isFinite(r.q));
}

/** The exposition format an Accept header prefers (ties go to OpenMetrics, as asked first). */
export function negotiate(accept: string | null): ExpositionFormat {
  let om = 0;
  let text = 0;
  for (const r of ranges(accept)) {
    // OpenMetrics 0.0.1 is a draft this agent does not write: only 1.0.0 (or no version).
    if (r.value === "application/openmetrics-text" && !/version=0\./.test(r.params)) {
      om = Math.max(om, r.q);
    } else if (r.value === "text/plain" || r.value === "text/*" || r.value === "*/*") {
      text = Math.max(text, r.q);
    }
  }
  return om > 0 && om >= text ? "openmetrics" : "prometheus";
}

/** Whether an Accept-Encoding header accepts gzip (q > 0, or `*`). */
export function acceptsGzip(acceptEncoding: string | null): boolean {
  const rs = ranges(acceptEncoding);
  const gzip = rs.find((r) => r.value === "gzip" || r.value === "x-gzip");
  if (gzip) return gzip.q > 0;
  const any = rs.find((r) => r.value === "*");
  return any !== undefined && any.q > 0;
}

export interface HttpEndpoints {
  /** The exposition in the format of requestedFormat(); Prometheus text if it has none. */
  metrics(): Promise<string>;
  /** The content type of the Prometheus text (the default format). */
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

/**
 * Whether Deno.serve may be asked for SO_REUSEPORT: only under --unstable-net (asking
 * without it ends the process). Deno.listenDatagram exists only under that flag too.
 */
export function reusePortAvailable(): boolean {
  return typeof (Deno as unknown as Record<string, unknown>).listenDatagram === "function";
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
      // SO_REUSEPORT where Deno allows it (--unstable-net): a successor agent binds the same
      // port while its predecessor still serves, so a scrape or probe is never refused.
      { hostname, port, reusePort: reusePortAvailable(), onListen: () => {} },
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
        const format = negotiate(request.headers.get("accept"));
        const text = await negotiated.run(format, () => endpoints.metrics());
        const headers: Record<string, string> = {
          "content-type": format === "prometheus" ? endpoints.contentType : CONTENT_TYPES[format],
          vary: "accept, accept-encoding",
        };
        if (!acceptsGzip(request.headers.get("accept-encoding"))) {
          return new Response(text, { headers });
        }
        headers["content-encoding"] = "gzip";
        return new Response(gzipSync(Buffer.from(text, "utf8")), { headers });
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
