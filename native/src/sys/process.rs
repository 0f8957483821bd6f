//! Processes and threads: the fd limit, pidfds (`pidfd_open`, `pidfd_getfd`), CPU affinity,
//! and `kcmp` (are two descriptors the same open file).

use super::ffi::{self, RLimit};
use super::{check, new_fd, Errno, SysResult};
use std::ffi::{c_int, c_long};
use std::os::fd::{OwnedFd, RawFd};

const RLIMIT_NOFILE: c_int = 7;
const SYS_PIDFD_OPEN: c_long = 434;
const SYS_PIDFD_GETFD: c_long = 438;
const SYS_KCMP: c_long = 312;
const KCMP_FILE: c_long = 0;
/// Bits in a `cpu_set_t` (glibc's `CPU_SETSIZE`): the largest CPU id accepted is one less.
pub const CPU_SETSIZE: usize = 1024;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> SysResult<u64> {
    let mut r = RLimit::default();
    // SAFETY: `r` is a valid, writable rlimit.
    check(unsafe { ffi::getrlimit(RLIMIT_NOFILE, &mut r) })?;
    if r.cur < r.max {
        r.cur = r.max;
        // SAFETY: `r` is a valid rlimit.
        check(unsafe { ffi::setrlimit(RLIMIT_NOFILE, &r) })?;
    }
    Ok(r.cur)
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: i32) -> SysResult<OwnedFd> {
    // SAFETY: raw syscall with integer arguments; the result is a new descriptor or -1.
    let r = unsafe { ffi::syscall(SYS_PIDFD_OPEN, pid as c_long, 0 as c_long) };
    new_fd(if r < 0 { -1 } else { r as c_int })
}

/// `pidfd_getfd(pidfd, fd, 0)`: duplicates `fd` of the target process into this one.
pub fn pidfd_getfd(pidfd: RawFd, fd: i32) -> SysResult<OwnedFd> {
    // SAFETY: raw syscall with integer arguments; the result is a new descriptor or -1.
    let r = unsafe { ffi::syscall(SYS_PIDFD_GETFD, pidfd as c_long, fd as c_long, 0 as c_long) };
    new_fd(if r < 0 { -1 } else { r as c_int })
}

const CPU_SET_WORDS: usize = CPU_SETSIZE / 64;

/// Pins the calling thread to `cpus` (`sched_setaffinity(0, ..)`). `EINVAL` for an empty
/// list, an id >= [`CPU_SETSIZE`], or a set with no CPU this thread may run on.
pub fn pin_current_thread(cpus: &[u32]) -> SysResult<()> {
    let mut mask = [0u64; CPU_SET_WORDS];
    if cpus.is_empty() {
        return Err(Errno::EINVAL);
    }
    for &c in cpus {
        let c = c as usize;
        if c >= CPU_SETSIZE {
            return Err(Errno::EINVAL);
        }
        mask[c / 64] |= 1 << (c % 64);
    }
    // SAFETY: `mask` is a live cpu_set_t of exactly `size_of_val(&mask)` bytes.
    check(unsafe { ffi::sched_setaffinity(0, std::mem::size_of_val(&mask), mask.as_ptr()) })
        .map(|_| ())
}

/// The CPUs the calling thread may run on (`sched_getaffinity(0, ..)`), ascending.
pub fn current_thread_cpus() -> SysResult<Vec<u32>> {
    let mut mask = [0u64; CPU_SET_WORDS];
    // SAFETY: `mask` is a live, writable cpu_set_t of exactly the size passed.
    check(unsafe { ffi::sched_getaffinity(0, std::mem::size_of_val(&mask), mask.as_mut_ptr()) })?;
    Ok((0..CPU_SETSIZE)
        .filter(|&c| mask[c / 64] & (1 << (c % 64)) != 0)
        .map(|c| c as u32)
        .collect())
}

/// Whether two descriptors of this process refer to the same open file description
/// (`kcmp(KCMP_FILE)`). `ENOSYS` on a kernel built without kcmp.
pub fn same_file(a: RawFd, b: RawFd) -> SysResult<bool> {
    // SAFETY: plain syscall with integer arguments only.
    let me = unsafe { ffi::getpid() } as c_long;
    // SAFETY: raw syscall with integer arguments; returns 0 (equal), 1/2 (ordered) or -1.
    let r = unsafe { ffi::syscall(SYS_KCMP, me, me, KCMP_FILE, a as c_long, b as c_long) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r == 0)
    }
}
