//! Shared by the two helper binaries: the latency measurement loop and its summary.

use ioeventd_native::mmio::{MmioCell, Width};
use ioeventd_native::sys;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// A trigger that does not land within this long counts as a timeout.
pub const LATENCY_TIMEOUT: Duration = Duration::from_secs(1);

/// Latency summary, printed as one JSON object.
#[derive(Debug, Default)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub mean_ns: u64,
    pub max_ns: u64,
    pub timeouts: u64,
}

impl LatencySummary {
    pub fn from_samples(mut samples: Vec<u64>, timeouts: u64) -> LatencySummary {
        samples.sort_unstable();
        let n = samples.len();
        let pct = |q: f64| -> u64 {
            if n == 0 {
                return 0;
            }
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            samples[rank - 1]
        };
        let mean = if n == 0 {
            0
        } else {
            samples.iter().map(|&v| v as u128).sum::<u128>() / n as u128
        };
        LatencySummary {
            count: n as u64,
            p50_ns: pct(0.50),
            p99_ns: pct(0.99),
            p999_ns: pct(0.999),
            mean_ns: mean as u64,
            max_ns: samples.last().copied().unwrap_or(0),
            timeouts,
        }
    }

    pub fn to_json(&self) -> String {
        format!(
            "{{\"count\":{},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"mean_ns\":{},\"max_ns\":{},\"timeouts\":{}}}",
            self.count,
            self.p50_ns,
            self.p99_ns,
            self.p999_ns,
            self.mean_ns,
            self.max_ns,
            self.timeouts
        )
    }
}

/// `count` times: store the sentinel `!data` at `cell`, signal `efd`, spin until the
/// location reads `data`; returns the per-trigger times.
pub fn measure_latency(cell: &MmioCell, efd: RawFd, data: u64, count: u64) -> LatencySummary {
    let width: Width = cell.width();
    let data = width.truncate(data);
    let sentinel = width.truncate(!data);
    let mut samples = Vec::with_capacity(count.min(10_000_000) as usize);
    let mut timeouts = 0;
    for _ in 0..count {
        cell.store(sentinel);
        let t0 = Instant::now();
        if sys::write_u64(efd, 1).is_err() {
            timeouts += 1;
            continue;
        }
        let mut spins = 0u32;
        loop {
            if cell.load() == data {
                samples.push(t0.elapsed().as_nanos() as u64);
                break;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) && t0.elapsed() > LATENCY_TIMEOUT {
                timeouts += 1;
                break;
            }
            std::hint::spin_loop();
        }
    }
    LatencySummary::from_samples(samples, timeouts)
}

// The doorbell stream is ioeventd-test-source's only (the baseline does not stream).
#[allow(dead_code)]
/// How long a doorbell of a stream may wait for its write before it counts as lost.
pub const DOORBELL_TIMEOUT: Duration = Duration::from_secs(10);

#[allow(dead_code)]
/// A paced doorbell stream (an agent may be replaced meanwhile): every `interval`, store the
/// sentinel, signal `efd` once, and wait until the location reads `data` — spinning for the
/// first 50 µs, then polling every 50 µs, so a long gap does not take a core from the
/// agents. Until `stop`; the per-doorbell delays (a doorbell not written within
/// [`DOORBELL_TIMEOUT`] is a timeout: lost).
pub fn doorbell_stream(
    cell: &MmioCell,
    efd: RawFd,
    data: u64,
    interval: Duration,
    stop: &std::sync::atomic::AtomicBool,
) -> LatencySummary {
    let width: Width = cell.width();
    let data = width.truncate(data);
    let sentinel = width.truncate(!data);
    let mut samples = Vec::new();
    let mut timeouts = 0;
    let mut next = Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        cell.store(sentinel);
        let t0 = Instant::now();
        if sys::write_u64(efd, 1).is_err() {
            timeouts += 1;
            break;
        }
        loop {
            if cell.load() == data {
                samples.push(t0.elapsed().as_nanos() as u64);
                break;
            }
            let waited = t0.elapsed();
            if waited > DOORBELL_TIMEOUT {
                timeouts += 1;
                break;
            }
            if waited > Duration::from_micros(50) {
                std::thread::sleep(Duration::from_micros(50));
            } else {
                std::hint::spin_loop();
            }
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now; // a long gap: no burst to catch up
        }
    }
    LatencySummary::from_samples(samples, timeouts)
}
