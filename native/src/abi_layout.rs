//! The one definition of every positional `u64` record of the C ABI: batch records, the
//! final counters of an unregistration, statistics records, engine info, events.
//!
//! Each record is a module of named word indexes plus its length `LEN`. The same table,
//! as text (`record.word=index` lines and `record.len=N`), is what
//! `ioeventd_abi_layout` returns: `service/native/abi_layout.ts` holds the same names and
//! the binding refuses a plugin whose table differs from its own. The errno names the
//! ABI can return travel in the same table.

use crate::sys::Errno;

/// Declares the record modules and the text table from one list.
macro_rules! layout {
    ($(
        $(#[$doc:meta])*
        $record:ident (len $len:expr) {
            $( $(#[$wdoc:meta])* $word:ident = $index:expr ),* $(,)?
        }
    )*) => {
        $(
            $(#[$doc])*
            pub mod $record {
                $( $(#[$wdoc])* pub const $word: usize = $index; )*
                /// Words per record.
                pub const LEN: usize = $len;
                /// `(name, index)` of every word, in index order.
                pub(crate) const WORDS: &[(&str, usize)] = &[$((stringify!($word), $index)),*];
            }
        )*

        /// Every record: `(name, words, len)`.
        pub(crate) const RECORDS: &[(&str, &[(&str, usize)], usize)] =
            &[$((stringify!($record), $record::WORDS, $record::LEN)),*];
    };
}

layout! {
    /// `ioeventd_register_batch`: one request in, its outcome out.
    register (len 13) {
        /// In: 1 resource file, 2 VFIO region.
        KIND = 0,
        /// In: kind 1: byte offset of the NUL-terminated BAR path in `strings`; kind 2: the
        /// VFIO device fd.
        PATH_OR_DEVICE = 1,
        /// In: kind 2: the BAR region index (kind 1: 0).
        REGION = 2,
        /// In: byte offset in the BAR.
        OFFSET = 3,
        /// In: access width in bytes.
        WIDTH = 4,
        /// In: the value written.
        DATA = 5,
        /// In: the eventfd (`i32`).
        EFD = 6,
        /// In: the source process to watch (`i32`, 0: none).
        PID = 7,
        /// In: its expected start time (0: don't check).
        PID_START = 8,
        /// In: kind 2: 0 auto, 2 vfio-mmap, 3 kernel (kind 1: 0).
        MODE = 9,
        /// Out: the registration id, or `-errno`.
        RESULT = 10,
        /// Out: backend code 1, 2, 3; 0 on failure.
        BACKEND = 11,
        /// Out: worker index, `u64::MAX` when kernel-served or failed.
        WORKER = 12,
    }

    /// The final counters of a registration, read after the unregister barrier: the
    /// `out` of `ioeventd_unregister`.
    counters (len 3) {
        /// Writes performed.
        TRIGGERS = 0,
        /// Sum of the eventfd counter values read (coalesced signals).
        SIGNALS = 1,
        /// Unix time in ns of the last write, 0 if none.
        LAST_TRIGGER_UNIX_NS = 2,
    }

    /// `ioeventd_unregister_batch`: one id in, its result and final counters out.
    unregister (len 5) {
        /// In: the registration id.
        ID = 0,
        /// Out: 0, or `-errno`.
        RESULT = 1,
        /// Out: final writes performed (0 on failure).
        TRIGGERS = 2,
        /// Out: final signals (0 on failure).
        SIGNALS = 3,
        /// Out: Unix time in ns of the last write (0 on failure or none).
        LAST_TRIGGER_UNIX_NS = 4,
    }

    /// `ioeventd_stats_registrations` (sorted by id) and `ioeventd_stats_of`: one registration.
    stats (len 4) {
        /// The registration id.
        ID = 0,
        /// Writes performed.
        TRIGGERS = 1,
        /// Sum of the eventfd counter values read.
        SIGNALS = 2,
        /// Unix time in ns of the last write, 0 if none.
        LAST_TRIGGER_UNIX_NS = 3,
    }

    /// `ioeventd_source_acquire_many`: one descriptor of the source process in, its local
    /// duplicate out.
    acquire (len 5) {
        /// In: the descriptor number in the source process (`i32`).
        FD = 0,
        /// In: the eventfd identity it must have (0: any).
        EXPECT_EVENTFD_ID = 1,
        /// Out: the local descriptor (≥ 0), or `-errno` (`i64`).
        RESULT = 2,
        /// Out: the eventfd id (`eventfd-id` + 1).
        EVENTFD_ID = 3,
        /// Out: `st_dev` of the eventfd.
        DEV = 4,
    }

    /// The `out` of `ioeventd_source_acquire`.
    source (len 3) {
        /// Start time of the source process (clock ticks since boot).
        START_TIME = 0,
        /// The eventfd id (`eventfd-id` + 1).
        EVENTFD_ID = 1,
        /// `st_dev` of the eventfd.
        DEV = 2,
    }

    /// The `out` of `ioeventd_process_stats`: this process, from `/proc/self` (a value the
    /// kernel did not give is `u64::MAX`).
    process (len 6) {
        /// Open file descriptors.
        OPEN_FDS = 0,
        /// The soft limit on open file descriptors (`u64::MAX`: unlimited).
        MAX_FDS = 1,
        /// OS threads.
        THREADS = 2,
        /// Virtual memory size in bytes.
        VIRTUAL_BYTES = 3,
        /// Start time of the process (clock ticks since boot).
        START_TICKS = 4,
        /// Boot time, seconds since the Unix epoch.
        BOOT_TIME = 5,
    }

    /// The `out` of `ioeventd_vfio_region_info`.
    region (len 3) {
        /// Region size in bytes.
        SIZE = 0,
        /// Offset of the region within the device fd.
        OFFSET = 1,
        /// `VFIO_REGION_INFO_FLAG_*`.
        FLAGS = 2,
    }

    /// `ioeventd_engine_info`.
    info (len 11) {
        /// Worker threads.
        WORKERS = 0,
        /// Registrations armed.
        REGISTRATIONS = 1,
        /// BARs mapped.
        BAR_MAPPINGS = 2,
        /// Source processes watched for exit.
        WATCHED_PIDS = 3,
        /// 0 blocking, 1 busy, 2 adaptive.
        POLL_MODE = 4,
        /// The canary period (0: off).
        CANARY_PERIOD_US = 5,
        /// 1 while every thread runs.
        ALIVE = 6,
        /// 0 round-robin, 1 device.
        SHARD = 7,
        /// Length of the CPU list the workers are pinned to.
        PINNED_CPUS = 8,
        /// Distinct eventfds the workers watch.
        WATCHED_EVENTFDS = 9,
        /// 1 when reads fall back to poll-then-read.
        READ_FALLBACK = 10,
    }

    /// `ioeventd_events_wait`: one event.
    event (len 4) {
        /// 1: a watched source process exited.
        KIND = 0,
        /// Its pid.
        PID = 1,
        /// Its start time.
        START_TIME = 2,
        /// Always 0.
        RESERVED = 3,
    }

    /// One histogram inside a worker record of `ioeventd_stats_workers`.
    histogram (len 22) {
        /// Samples.
        COUNT = 0,
        /// Sum of the samples in ns.
        SUM_NS = 1,
        /// The first of the per-bucket counts (the last bucket is +Inf).
        BUCKETS = 2,
    }

    /// `ioeventd_stats_workers`: one worker.
    worker (len 45) {
        /// `epoll_wait` returns that delivered at least one event.
        WAKEUPS = 0,
        /// The service-time histogram (wake-up → write done).
        SERVICE = 1,
        /// The dispatch-latency histogram (canary).
        DISPATCH = 23,
    }
}

/// The layout as text: `record.word=index` per word, then `record.len=N`, one per line;
/// then `errno.NAME=n` for every errno the ABI can return ([`Errno::TABLE`]).
pub(crate) fn table() -> String {
    let mut s = String::new();
    for (record, words, len) in RECORDS {
        for (word, index) in *words {
            s.push_str(&format!("{record}.{}={index}\n", word.to_ascii_lowercase()));
        }
        s.push_str(&format!("{record}.len={len}\n"));
    }
    for (name, errno) in Errno::TABLE {
        s.push_str(&format!("errno.{name}={}\n", errno.0));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{HISTOGRAM_U64S, WORKER_U64S};

    #[test]
    fn words_are_distinct_and_inside_their_record() {
        for (record, words, len) in RECORDS {
            for (i, (word, index)) in words.iter().enumerate() {
                assert!(index < len, "{record}.{word}");
                if let Some((next, at)) = words.get(i + 1) {
                    assert!(index < at, "{record}.{word} before {next}");
                }
            }
        }
    }

    #[test]
    fn sizes_match_the_producers() {
        assert_eq!(histogram::LEN, HISTOGRAM_U64S);
        assert_eq!(worker::LEN, WORKER_U64S);
        assert_eq!(worker::DISPATCH, worker::SERVICE + histogram::LEN);
        assert_eq!(unregister::TRIGGERS + counters::LEN, unregister::LEN);
        assert_eq!(stats::TRIGGERS + counters::LEN, stats::LEN);
        let t = table();
        assert!(t.starts_with("register.kind=0\nregister.path_or_device=1\n"));
        assert!(t.contains("\nregister.len=13\n"));
        assert!(t.contains("\nunregister.last_trigger_unix_ns=4\n"));
    }
}
