// The word layout of every positional u64 record of the C ABI (native/README.md, ABI v3):
// the same names and indexes as native/src/abi_layout.rs. The plugin returns its own table
// as text (ioeventd_abi_layout); the binding compares it with layoutTable() when it loads
// the library and refuses to run on any difference.
import { Errno } from "./errno.ts";

export const LAYOUT = {
  /** ioeventd_register_batch: one request in, its outcome out. */
  register: {
    kind: 0,
    path_or_device: 1,
    region: 2,
    offset: 3,
    width: 4,
    data: 5,
    efd: 6,
    pid: 7,
    pid_start: 8,
    mode: 9,
    result: 10,
    backend: 11,
    worker: 12,
    len: 13,
  },
  /** The final counters of ioeventd_unregister (read after the barrier). */
  counters: { triggers: 0, signals: 1, last_trigger_unix_ns: 2, len: 3 },
  /** ioeventd_unregister_batch: one id in, its result and final counters out. */
  unregister: { id: 0, result: 1, triggers: 2, signals: 3, last_trigger_unix_ns: 4, len: 5 },
  /** ioeventd_stats_registrations: one registration. */
  stats: { id: 0, triggers: 1, signals: 2, last_trigger_unix_ns: 3, len: 4 },
  /** ioeventd_source_acquire_many: one descriptor of the source process in, its duplicate out. */
  acquire: { fd: 0, expect_eventfd_id: 1, result: 2, eventfd_id: 3, dev: 4, len: 5 },
  /** The out of ioeventd_source_acquire. */
  source: { start_time: 0, eventfd_id: 1, dev: 2, len: 3 },
  /** The out of ioeventd_process_stats (u64 max: not given by the kernel). */
  process: {
    open_fds: 0,
    max_fds: 1,
    threads: 2,
    virtual_bytes: 3,
    start_ticks: 4,
    boot_time: 5,
    len: 6,
  },
  /** The out of ioeventd_vfio_region_info. */
  region: { size: 0, offset: 1, flags: 2, len: 3 },
  /** ioeventd_engine_info. */
  info: {
    workers: 0,
    registrations: 1,
    bar_mappings: 2,
    watched_pids: 3,
    poll_mode: 4,
    canary_period_us: 5,
    alive: 6,
    shard: 7,
    pinned_cpus: 8,
    watched_eventfds: 9,
    read_fallback: 10,
    len: 11,
  },
  /** ioeventd_events_wait: one event. */
  event: { kind: 0, pid: 1, start_time: 2, reserved: 3, len: 4 },
  /** One histogram inside a worker record. */
  histogram: { count: 0, sum_ns: 1, buckets: 2, len: 22 },
  /** ioeventd_stats_workers: one worker. */
  worker: { wakeups: 0, service: 1, dispatch: 23, len: 45 },
} as const;

/** This side's table in the plugin's text form: `record.word=index` lines, then the errnos. */
export function layoutTable(): string {
  let text = "";
  for (const [record, words] of Object.entries(LAYOUT)) {
    const entries = Object.entries(words as Record<string, number>);
    for (const [word, index] of entries) if (word !== "len") text += `${record}.${word}=${index}\n`;
    text += `${record}.len=${(words as { len: number }).len}\n`;
  }
  for (const [name, n] of Object.entries(Errno)) text += `errno.${name}=${n}\n`;
  return text;
}

/** The lines that differ between the plugin's table and this one (empty: they agree). */
export function layoutDifferences(native: string): string[] {
  const ours = new Set(layoutTable().split("\n").filter((l) => l !== ""));
  const theirs = new Set(native.split("\n").filter((l) => l !== ""));
  return [
    ...[...theirs].filter((l) => !ours.has(l)).map((l) => `plugin only: ${l}`),
    ...[...ours].filter((l) => !theirs.has(l)).map((l) => `agent only: ${l}`),
  ];
}
