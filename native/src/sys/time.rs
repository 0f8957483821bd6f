//! Clocks (CLOCK_MONOTONIC, CLOCK_REALTIME_COARSE) and the periodic timerfd.

use super::ffi::{self, ITimerspec, Timespec};
use super::{check, new_fd, SysResult};
use std::ffi::c_int;
use std::os::fd::{AsRawFd, OwnedFd};

const CLOCK_MONOTONIC: c_int = 1;
const CLOCK_REALTIME_COARSE: c_int = 5;
const TFD_NONBLOCK: c_int = 0o4000;
const TFD_CLOEXEC: c_int = 0o2000000;

/// A periodic, non-blocking CLOCK_MONOTONIC timerfd firing every `period_us` µs.
pub fn timerfd_periodic(period_us: u32) -> SysResult<OwnedFd> {
    // SAFETY: plain syscall without pointers.
    let fd = new_fd(unsafe { ffi::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC) })?;
    let period_ns = i64::from(period_us.max(1)) * 1000;
    let ts = Timespec {
        sec: period_ns / 1_000_000_000,
        nsec: period_ns % 1_000_000_000,
    };
    let spec = ITimerspec {
        interval: ts,
        value: ts,
    };
    // SAFETY: `spec` is a valid itimerspec; a null `old` is allowed.
    check(unsafe { ffi::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) })?;
    Ok(fd)
}

/// CLOCK_MONOTONIC in nanoseconds (comparable across threads; never 0 in practice).
#[inline]
pub fn monotonic_ns() -> u64 {
    let mut ts = Timespec::default();
    // SAFETY: `ts` is a valid, writable timespec (vDSO call, cannot fail for this clock).
    unsafe { ffi::clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    (ts.sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.nsec as u64)
}

/// Unix time in nanoseconds at the kernel tick's resolution (a few ms): a cached value the
/// vDSO returns several times faster than a precise read, good enough for "last trigger".
#[inline]
pub fn realtime_coarse_ns() -> u64 {
    let mut ts = Timespec::default();
    // SAFETY: `ts` is a valid, writable timespec (vDSO call, cannot fail for this clock).
    unsafe { ffi::clock_gettime(CLOCK_REALTIME_COARSE, &mut ts) };
    (ts.sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.nsec as u64)
}
