// A minimal OTLP/HTTP trace receiver (JSON encoding) on 127.0.0.1, standing in for an
// OpenTelemetry Collector: it keeps every span it is sent, with its resource.
export interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: OtlpValue }[];
  status?: { code?: number; message?: string };
  /** Attributes of the resource that sent it. */
  resource: Record<string, OtlpValue>;
}

interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: OtlpValue }[] };
    scopeSpans?: { spans?: Omit<OtlpSpan, "resource">[] }[];
  }[];
}

export class OtlpReceiver {
  readonly spans: OtlpSpan[] = [];
  readonly requests: { path: string; contentType: string | null }[] = [];
  #server: Deno.HttpServer<Deno.NetAddr>;

  constructor() {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (req) => {
        const path = new URL(req.url).pathname;
        this.requests.push({ path, contentType: req.headers.get("content-type") });
        if (req.method !== "POST" || path !== "/v1/traces") {
          return new Response("not found", { status: 404 });
        }
        const body = await req.json() as ExportRequest;
        for (const rs of body.resourceSpans ?? []) {
          const resource = Object.fromEntries(
            (rs.resource?.attributes ?? []).map((a) => [a.key, a.value]),
          );
          for (const ss of rs.scopeSpans ?? []) {
            for (const span of ss.spans ?? []) this.spans.push({ ...span, resource });
          }
        }
        return Response.json({});
      },
    );
  }

  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  /** Waits until a span named `name` has arrived. */
  async span(name: string, ms = 10_000): Promise<OtlpSpan> {
    const until = Date.now() + ms;
    for (;;) {
      const found = this.spans.find((s) => s.name === name);
      if (found) return found;
      if (Date.now() > until) {
        throw new Error(`no span ${name}; got ${this.spans.map((s) => s.name).join(", ")}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}

/** A span's attributes as plain values (OTLP/JSON may send 64-bit ints as strings). */
export function attributes(span: OtlpSpan): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of span.attributes) {
    out[key] = value.stringValue ??
      (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
      value.boolValue ?? value.doubleValue ?? "";
  }
  return out;
}
