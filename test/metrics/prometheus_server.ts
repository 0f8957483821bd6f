// A real Prometheus (Debian's package, installed by test/setup.sh) for the metrics tests:
// started as a child process on a free loopback port, with a throw-away TSDB, scraping the
// given targets every second and evaluating the given rule files.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Fails loudly when a tool the tests need is missing (test/setup.sh installs it). */
export function requireTool(name: string): string {
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  if (found.status !== 0) {
    throw new Error(`${name} is not installed: run test/setup.sh (Debian package prometheus)`);
  }
  return found.stdout.trim();
}

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export type QueryResult =
  | { ok: true; resultType: string; result: Sample[] }
  | { ok: false; error: string };

export class PrometheusServer {
  #exited: Promise<void>;

  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly logs: string[],
  ) {
    this.#exited = new Promise((resolve) => child.on("exit", () => resolve()));
  }

  static async start(
    options: {
      job: string;
      targets: string[];
      ruleFiles?: string[];
      /** More scrape jobs (e.g. a simulated dcgm-exporter beside the agents). */
      jobs?: { job: string; targets: string[] }[];
      /** --enable-feature values (e.g. exemplar-storage). */
      features?: string[];
    },
  ): Promise<PrometheusServer> {
    const binary = requireTool("prometheus");
    const dir = mkdtempSync(join(tmpdir(), "ioeventd-prometheus-"));
    const config = [
      "global:",
      "  scrape_interval: 1s",
      "  scrape_timeout: 1s",
      "  evaluation_interval: 1s",
      `rule_files: ${JSON.stringify(options.ruleFiles ?? [])}`,
      "scrape_configs:",
      `  - job_name: ${JSON.stringify(options.job)}`,
      "    static_configs:",
      `      - targets: ${JSON.stringify(options.targets)}`,
      ...(options.jobs ?? []).flatMap((j) => [
        `  - job_name: ${JSON.stringify(j.job)}`,
        "    static_configs:",
        `      - targets: ${JSON.stringify(j.targets)}`,
      ]),
    ].join("\n");
    writeFileSync(join(dir, "prometheus.yml"), config + "\n");
    const port = freePort();
    const child = spawn(binary, [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
      ...(options.features ?? []).map((f) => `--enable-feature=${f}`),
    ], { stdio: ["ignore", "ignore", "pipe"] });
    const logs: string[] = [];
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => logs.push(chunk));
    const server = new PrometheusServer(`http://127.0.0.1:${port}`, child, dir, logs);
    const until = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) {
        throw new Error(`prometheus exited (${child.exitCode}):\n${logs.join("")}`);
      }
      try {
        const res = await fetch(`${server.url}/-/ready`);
        await res.body?.cancel();
        if (res.ok) return server;
      } catch { /* not listening yet */ }
      if (Date.now() > until) {
        await server.stop();
        throw new Error(`prometheus did not become ready:\n${logs.join("")}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async query(expr: string): Promise<QueryResult> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = await res.json() as {
      status: string;
      error?: string;
      data?: { resultType: string; result: Sample[] | [number, string] };
    };
    if (body.status !== "success" || !body.data) return { ok: false, error: body.error ?? "?" };
    // Scalars come back as one bare [time, value]: present them as one sample.
    const result = body.data.resultType === "scalar" || body.data.resultType === "string"
      ? [{ metric: {}, value: body.data.result as [number, string] }]
      : body.data.result as Sample[];
    return { ok: true, resultType: body.data.resultType, result };
  }

  /** The samples of an expression that must evaluate; throws with Prometheus' error. */
  async samples(expr: string): Promise<Sample[]> {
    const r = await this.query(expr);
    if (!r.ok) throw new Error(`${expr}: ${r.error}`);
    return r.result;
  }

  /** The single value of an expression, or null when it returns nothing. */
  async value(expr: string): Promise<number | null> {
    const s = await this.samples(expr);
    if (s.length > 1) throw new Error(`${expr} returned ${s.length} series`);
    return s.length === 0 ? null : Number(s[0].value[1]);
  }

  /** Polls until `expr` has the value `check` accepts (scrapes happen every second). */
  async waitFor(
    expr: string,
    check: (v: number | null) => boolean,
    ms = 15_000,
  ): Promise<number | null> {
    const until = Date.now() + ms;
    let last: number | null = null;
    while (Date.now() < until) {
      last = await this.value(expr);
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${expr} is still ${last} after ${ms} ms`);
  }

  /** Exemplars of a series over the last `seconds` (needs the exemplar-storage feature). */
  async exemplars(
    expr: string,
    seconds = 300,
  ): Promise<
    {
      seriesLabels: Record<string, string>;
      exemplars: { labels: Record<string, string>; value: string }[];
    }[]
  > {
    const end = Date.now() / 1000;
    const res = await fetch(
      `${this.url}/api/v1/query_exemplars?query=${encodeURIComponent(expr)}&start=${
        end - seconds
      }&end=${end}`,
    );
    const body = await res.json() as {
      status: string;
      error?: string;
      data?: {
        seriesLabels: Record<string, string>;
        exemplars: { labels: Record<string, string>; value: string }[];
      }[];
    };
    if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
    return body.data ?? [];
  }

  /** The scrape targets' health, as Prometheus reports them. */
  async targets(): Promise<{ scrapePool: string; health: string; lastError: string }[]> {
    const res = await fetch(`${this.url}/api/v1/targets`);
    const body = await res.json() as {
      data: { activeTargets: { scrapePool: string; health: string; lastError: string }[] };
    };
    return body.data.activeTargets;
  }

  /** Every rule group's rules as Prometheus evaluates them. */
  async rules(): Promise<{ name: string; query: string; health: string; lastError?: string }[]> {
    const res = await fetch(`${this.url}/api/v1/rules`);
    const body = await res.json() as {
      data: {
        groups: { rules: { name: string; query: string; health: string; lastError?: string }[] }[];
      };
    };
    return body.data.groups.flatMap((g) => g.rules);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
    }
    await this.#exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
