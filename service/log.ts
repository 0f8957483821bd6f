// Structured logs: one JSON object per line on stderr, the format journald and Kubernetes
// log pipelines ingest without parsing rules.
export type Level = "debug" | "info" | "warn" | "error";

export type Fields = Record<string, unknown>;

export interface Logger {
  log(level: Level, msg: string, fields?: Fields): void;
}

const encoder = new TextEncoder();

function json(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
}

export const stderrLogger: Logger = {
  log(level, msg, fields = {}) {
    const line = json({ ts: new Date().toISOString(), level, msg, ...fields });
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  },
};

export const silentLogger: Logger = { log() {} };
