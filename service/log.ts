// Structured logs: one JSON object per line on stderr, the format journald and Kubernetes
// log pipelines ingest without parsing rules.
import { format } from "node:util";

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

/**
 * A console-shaped sink (what grpc-js's setLogger takes) that writes into `log`: libraries'
 * own lines ("E No address added …") join the JSON log instead of interleaving plain text.
 */
export function consoleInto(log: Logger, source: string): {
  error(message?: unknown, ...params: unknown[]): void;
  info(message?: unknown, ...params: unknown[]): void;
  debug(message?: unknown, ...params: unknown[]): void;
} {
  const at = (level: Level) => (message?: unknown, ...params: unknown[]) =>
    log.log(level, format(message, ...params), { source });
  return { error: at("error"), info: at("info"), debug: at("debug") };
}
