//! Lock-free statistics: per-registration counters and per-worker histograms.
//!
//! Every counter has exactly one writer (the worker thread owning it), so updates are a
//! Relaxed load + store (no locked read-modify-write on the hot path). Readers (the
//! control side taking a snapshot) may see a histogram whose `count` is a few samples
//! ahead or behind its buckets; each value is itself exact.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Finite bucket upper bounds in ns: 1-2-5 steps from 100 ns to 100 ms (inclusive `le`).
pub(crate) const BOUNDS_NS: [u64; 19] = [
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
];

/// Number of buckets: one per bound plus +Inf.
pub(crate) const NBUCKETS: usize = BOUNDS_NS.len() + 1;

/// u64s per histogram in a snapshot: count, sum, buckets.
pub const HISTOGRAM_U64S: usize = 2 + NBUCKETS;

/// u64s per worker in `stats_workers`: wakeups + service histogram + dispatch histogram.
pub const WORKER_U64S: usize = 1 + 2 * HISTOGRAM_U64S;

/// Adds `by` to a counter that has a single writer.
#[inline]
fn bump(a: &AtomicU64, by: u64) {
    a.store(a.load(Relaxed).wrapping_add(by), Relaxed);
}

/// Index of the bucket holding `ns`: the first bound `>= ns`, or the +Inf bucket.
#[inline]
pub(crate) fn bucket_index(ns: u64) -> usize {
    BOUNDS_NS.partition_point(|&b| b < ns)
}

/// A histogram of durations in ns with the fixed [`BOUNDS_NS`]; single writer.
#[derive(Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; NBUCKETS],
    count: AtomicU64,
    sum: AtomicU64,
}

impl Histogram {
    /// Records one sample (single writer only).
    #[inline]
    pub(crate) fn record(&self, ns: u64) {
        self.record_n(ns, 1);
    }

    /// Records `n` samples of the same value (single writer only).
    #[inline]
    pub(crate) fn record_n(&self, ns: u64, n: u64) {
        bump(&self.buckets[bucket_index(ns)], n);
        bump(&self.count, n);
        bump(&self.sum, ns.wrapping_mul(n));
    }

    /// Number of samples.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// Sum of the samples in ns.
    pub(crate) fn sum(&self) -> u64 {
        self.sum.load(Relaxed)
    }

    /// Per-bucket counts (not cumulative).
    pub(crate) fn buckets(&self) -> [u64; NBUCKETS] {
        std::array::from_fn(|i| self.buckets[i].load(Relaxed))
    }

    /// Appends `count, sum, buckets[NBUCKETS]`.
    pub(crate) fn snapshot_into(&self, out: &mut Vec<u64>) {
        out.push(self.count());
        out.push(self.sum());
        out.extend_from_slice(&self.buckets());
    }
}

/// Counters of one registration, shared (`Arc`) by its worker and the engine's table.
#[derive(Default)]
pub(crate) struct RegStats {
    /// Writes performed.
    pub triggers: AtomicU64,
    /// Sum of the eventfd counter values read (coalesced signals).
    pub signals: AtomicU64,
    /// Wall-clock time of the last write, ns since the Unix epoch (0 = never).
    pub last_trigger_unix_ns: AtomicU64,
}

impl RegStats {
    /// Records one write serving `signals` coalesced signals (single writer only).
    #[inline]
    pub(crate) fn record(&self, signals: u64, unix_ns: u64) {
        bump(&self.triggers, 1);
        bump(&self.signals, signals);
        self.last_trigger_unix_ns.store(unix_ns, Relaxed);
    }

    /// The counters now (final once the registration's worker has let go of it).
    pub(crate) fn snapshot(&self) -> Counters {
        Counters {
            triggers: self.triggers.load(Relaxed),
            signals: self.signals.load(Relaxed),
            last_trigger_unix_ns: self.last_trigger_unix_ns.load(Relaxed),
        }
    }
}

/// A snapshot of one registration's counters ([`crate::abi_layout::counters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Writes performed.
    pub triggers: u64,
    /// Sum of the eventfd counter values read (coalesced signals).
    pub signals: u64,
    /// Unix time in ns of the last write, 0 if none.
    pub last_trigger_unix_ns: u64,
}

impl Counters {
    /// The words of the `counters` layout, in order.
    pub fn as_words(&self) -> [u64; crate::abi_layout::counters::LEN] {
        [self.triggers, self.signals, self.last_trigger_unix_ns]
    }
}

/// Statistics of one worker thread.
#[derive(Default)]
pub(crate) struct WorkerStats {
    /// `epoll_wait` returns that delivered at least one event.
    pub wakeups: AtomicU64,
    /// Wake-up → write done, per write.
    pub service: Histogram,
    /// Canary signal → canary served.
    pub dispatch: Histogram,
}

impl WorkerStats {
    /// Counts one wake-up (single writer only).
    #[inline]
    pub(crate) fn wakeup(&self) {
        bump(&self.wakeups, 1);
    }

    /// Appends the [`WORKER_U64S`] values of the `stats_workers` layout.
    pub(crate) fn snapshot_into(&self, out: &mut Vec<u64>) {
        out.push(self.wakeups.load(Relaxed));
        self.service.snapshot_into(out);
        self.dispatch.snapshot_into(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_1_2_5_from_100ns_to_100ms() {
        assert_eq!(BOUNDS_NS.len(), 19);
        assert_eq!(NBUCKETS, 20);
        assert_eq!(BOUNDS_NS[0], 100);
        assert_eq!(*BOUNDS_NS.last().unwrap(), 100_000_000);
        for w in BOUNDS_NS.windows(2) {
            assert!(w[0] < w[1]);
        }
        for (i, b) in BOUNDS_NS.iter().enumerate() {
            let decade = 10u64.pow(2 + (i as u32) / 3);
            let mant = [1, 2, 5][i % 3];
            assert_eq!(*b, mant * decade, "bound {i}");
        }
        assert_eq!(WORKER_U64S, 45);
    }

    #[test]
    fn bucket_placement_at_edges() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(100), 0);
        assert_eq!(bucket_index(101), 1);
        assert_eq!(bucket_index(200), 1);
        assert_eq!(bucket_index(201), 2);
        assert_eq!(bucket_index(999), 3);
        assert_eq!(bucket_index(1_000), 3);
        assert_eq!(bucket_index(100_000_000), 18);
        assert_eq!(bucket_index(100_000_001), 19);
        assert_eq!(bucket_index(u64::MAX), 19);
        for (i, b) in BOUNDS_NS.iter().enumerate() {
            assert_eq!(bucket_index(*b), i);
            assert_eq!(bucket_index(b + 1), i + 1);
        }
    }

    #[test]
    fn histogram_records_count_sum_buckets() {
        let h = Histogram::default();
        h.record(50);
        h.record(100);
        h.record(150);
        h.record(1 << 40);
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum(), 300 + (1 << 40));
        let b = h.buckets();
        assert_eq!(b[0], 2);
        assert_eq!(b[1], 1);
        assert_eq!(b[19], 1);
        assert_eq!(b.iter().sum::<u64>(), 4);
        let mut v = Vec::new();
        h.snapshot_into(&mut v);
        assert_eq!(v.len(), HISTOGRAM_U64S);
        assert_eq!(&v[..2], &[4, 300 + (1 << 40)]);
    }

    #[test]
    fn reg_stats_record() {
        let s = RegStats::default();
        s.record(3, 42);
        s.record(1, 43);
        assert_eq!(s.snapshot().as_words(), [2, 4, 43]);
    }
}
