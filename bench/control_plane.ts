// The control plane for `deno task bench`: a real agent process — creates from empty to N
// registrations (rate and latency by concurrency), its memory along the way, ListAll and a
// Prometheus scrape with all of them armed.
import { GPU, removeDir, spawnAgent, tempDir } from "../test/support/agent.ts";
import { SourceProcess } from "../test/support/source_process.ts";
import { AgentClient } from "../service/cli/client.ts";
import { rssMiB } from "./data_plane.ts";
import { percentile } from "./summary.ts";

/** The control plane's figures; `quick`: the CI smoke's smaller counts. */
export async function controlPlane(quick: boolean): Promise<Record<string, unknown>> {
  const stateDir = tempDir("ioeventd-bench-");
  const N = quick ? 1000 : 10_000;
  const SMALL = quick ? 100 : 1000;
  const src = await SourceProcess.start(N + 3 * SMALL);
  const agent = await spawnAgent(stateDir, [
    "--max-per-device",
    String(N + 3 * SMALL),
    "--metrics-listen",
    "127.0.0.1:0",
  ]);
  const serving = agent.logs.map((l) => JSON.parse(l) as { msg: string; metrics?: string })
    .find((l) => l.msg === "ioeventd serving");
  const metricsUrl = `http://${serving?.metrics}/metrics`;
  const out: Record<string, unknown> = {};
  try {
    const pid = agent.child.pid;
    out.rss_mib_empty = rssMiB(pid);
    const spec = (i: number) => ({
      device: GPU,
      bar: 0,
      offset: String(0x10000 + 4 * i),
      width: 4,
      data: "1",
      source: { pid: src.pid, fd: src.fds[i] },
    });
    const clients = Array.from({ length: 64 }, () => new AgentClient(agent.address));
    let next = 0;
    const creates = async (count: number, concurrency: number) => {
      const latencies: number[] = [];
      const t0 = performance.now();
      const stop = next + count;
      await Promise.all(
        clients.slice(0, concurrency).map(async (client) => {
          while (next < stop) {
            const i = next++;
            const c0 = performance.now();
            await client.create({ owner: `vm-${i % 100}`, spec: spec(i) });
            latencies.push(performance.now() - c0);
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      latencies.sort((x, y) => x - y);
      return {
        per_sec: Math.round(count / seconds),
        p50_ms: +percentile(latencies, 0.5).toFixed(2),
        p99_ms: +percentile(latencies, 0.99).toFixed(2),
        seconds: +seconds.toFixed(2),
      };
    };
    // Time to create N from empty (16 clients), memory along the way, then reads at N.
    await creates(10, 1);
    const rss: Record<number, number> = { 0: out.rss_mib_empty as number, [next]: rssMiB(pid) };
    out[`create_${N}_c16`] = await creates(N - next, 16);
    rss[next] = rssMiB(pid);
    out.rss_mib_at = rss;
    const t0 = performance.now();
    const all = await agent.client.listAll();
    out.list_all_ms = +(performance.now() - t0).toFixed(1);
    out.list_count = all.length;
    // A Prometheus scrape with every registration armed (per-device series, the default).
    const scrapes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const s0 = performance.now();
      const body = await (await fetch(metricsUrl)).text();
      scrapes.push(performance.now() - s0);
      out.metrics_bytes = body.length;
    }
    scrapes.sort((a, b) => a - b);
    out.metrics_scrape_ms_median = +scrapes[2].toFixed(1);
    // Create latency by concurrency, on top of the N already armed.
    for (const c of [1, 16, 64]) out[`creates_c${c}`] = await creates(SMALL, c);
    out.total_registrations = N;
    for (const c of clients) c.close();
  } finally {
    await agent.crash();
    await src.kill();
    removeDir(stateDir);
  }
  return out;
}
