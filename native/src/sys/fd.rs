//! Descriptors: eventfds (create, signal, read the counter without blocking), close, dup,
//! pipes, the `fcntl` flags, `fstat` and `poll`.

use super::ffi::{self, IoVec, PollFd, Stat};
use super::{check, new_fd, own_fd, Errno, SysResult};
use std::ffi::c_int;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// `EFD_SEMAPHORE`.
pub const EFD_SEMAPHORE: c_int = 1;
/// `EFD_NONBLOCK`.
pub const EFD_NONBLOCK: c_int = 0o4000;
/// `EFD_CLOEXEC`.
pub const EFD_CLOEXEC: c_int = 0o2000000;
const POLLIN: i16 = 0x001;
const F_GETFD: c_int = 1;
const F_SETFD: c_int = 2;
const F_GETFL: c_int = 3;
const F_SETFL: c_int = 4;
const F_DUPFD_CLOEXEC: c_int = 1030;
const FD_CLOEXEC: c_int = 1;
/// `O_NONBLOCK`.
pub const O_NONBLOCK: c_int = 0o4000;
/// `O_SYNC` (a sysfs `resourceN` file expects it).
pub const O_SYNC: c_int = 0o4010000;
pub(super) const O_CLOEXEC: c_int = 0o2000000;
/// `preadv2` flag: fail with `EAGAIN` instead of blocking (per call, not per file).
const RWF_NOWAIT: c_int = 0x8;

/// `eventfd(initval, flags)`.
pub fn eventfd(initval: u32, flags: c_int) -> SysResult<OwnedFd> {
    // SAFETY: plain syscall without pointers.
    new_fd(unsafe { ffi::eventfd(initval, flags) })
}

/// Reads the 8-byte counter of an eventfd (or a timerfd). `EAGAIN` when nothing is pending
/// on a non-blocking descriptor.
#[inline]
pub fn read_u64(fd: RawFd) -> SysResult<u64> {
    let mut v: u64 = 0;
    // SAFETY: the buffer is a live, writable local of exactly 8 bytes.
    let n = unsafe { ffi::read(fd, (&mut v as *mut u64).cast(), 8) };
    if n == 8 {
        Ok(v)
    } else if n < 0 {
        Err(Errno::last())
    } else {
        Err(Errno::EIO)
    }
}

/// Whether `preadv2(RWF_NOWAIT)` was refused with `EOPNOTSUPP` (an eventfd without
/// `FMODE_NOWAIT`, kernels before 5.11): from then on [`read_counter`] polls first.
static NOWAIT_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// `preadv2(fd, [8 bytes], 1, -1, RWF_NOWAIT)`: reads an eventfd counter without blocking
/// and without touching the file's `O_NONBLOCK` (a status flag of the open file
/// description, which a duplicated eventfd shares with the process it came from).
/// `EAGAIN` when the counter is 0.
#[inline]
pub fn read_u64_nowait(fd: RawFd) -> SysResult<u64> {
    let mut v: u64 = 0;
    let iov = IoVec {
        base: (&mut v as *mut u64).cast(),
        len: 8,
    };
    // SAFETY: one iovec describing a live, writable local of exactly 8 bytes; offset -1
    // means "the current position" (eventfds have none to move).
    let n = unsafe { ffi::preadv2(fd, &iov, 1, -1, RWF_NOWAIT) };
    if n == 8 {
        Ok(v)
    } else if n < 0 {
        Err(Errno::last())
    } else {
        Err(Errno::EIO)
    }
}

/// Reads an eventfd counter without blocking and without changing its file flags:
/// [`read_u64_nowait`]; where the kernel refuses `RWF_NOWAIT` for eventfds (`EOPNOTSUPP`),
/// `poll(0)` then `read` (which could block only if another reader drained the counter in
/// between). `EAGAIN` when nothing is pending.
#[inline]
pub fn read_counter(fd: RawFd) -> SysResult<u64> {
    if !NOWAIT_UNSUPPORTED.load(Ordering::Relaxed) {
        match read_u64_nowait(fd) {
            Err(Errno::EOPNOTSUPP) => NOWAIT_UNSUPPORTED.store(true, Ordering::Relaxed),
            r => return r,
        }
    }
    if !poll_readable(fd, 0)? {
        return Err(Errno::EAGAIN);
    }
    read_u64(fd)
}

/// Whether [`read_counter`] had to fall back to poll-then-read on this kernel.
pub fn nowait_unsupported() -> bool {
    NOWAIT_UNSUPPORTED.load(Ordering::Relaxed)
}

/// Writes an 8-byte value (signals an eventfd).
#[inline]
pub fn write_u64(fd: RawFd, v: u64) -> SysResult<()> {
    // SAFETY: the buffer is a live local of exactly 8 bytes.
    let n = unsafe { ffi::write(fd, (&v as *const u64).cast(), 8) };
    if n == 8 {
        Ok(())
    } else if n < 0 {
        Err(Errno::last())
    } else {
        Err(Errno::EIO)
    }
}

/// `close(fd)` of a raw descriptor whose ownership the caller holds.
pub fn close_raw(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain syscall without pointers; the caller owns `fd` (C ABI contract).
    check(unsafe { ffi::close(fd) }).map(|_| ())
}

/// `dup2(old, new)`: makes `new` refer to `old`'s file (closing what `new` was).
pub fn dup2(old: RawFd, new: RawFd) -> SysResult<()> {
    // SAFETY: plain syscall without pointers.
    check(unsafe { ffi::dup2(old, new) }).map(|_| ())
}

/// Duplicates a descriptor (close-on-exec set on the copy).
pub fn dup(fd: RawFd) -> SysResult<OwnedFd> {
    // SAFETY: plain syscall without pointers.
    new_fd(unsafe { ffi::fcntl(fd, F_DUPFD_CLOEXEC, 0 as c_int) })
}

/// A pipe: `(read end, write end)`, both close-on-exec.
pub fn pipe() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as c_int; 2];
    // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
    check(unsafe { ffi::pipe2(fds.as_mut_ptr(), O_CLOEXEC) })?;
    Ok((own_fd(fds[0]), own_fd(fds[1])))
}

/// Whether the open file is already non-blocking (QEMU creates its eventfds with
/// `EFD_NONBLOCK`): then a plain `read` cannot block and is cheaper than `RWF_NOWAIT`.
pub fn is_nonblocking(fd: RawFd) -> SysResult<bool> {
    // SAFETY: fcntl with integer arguments only.
    let fl = check(unsafe { ffi::fcntl(fd, F_GETFL) })?;
    Ok(fl & O_NONBLOCK != 0)
}

/// Reads an eventfd counter that is known to be non-blocking (`EAGAIN` when empty).
#[inline]
pub fn read_counter_nonblocking(fd: RawFd) -> SysResult<u64> {
    read_u64(fd)
}

/// Adds `O_NONBLOCK` to the file status flags. Note: these flags live on the open file
/// description, so a descriptor duplicated from another process shares them.
pub fn set_nonblocking(fd: RawFd) -> SysResult<()> {
    // SAFETY: fcntl with integer arguments only.
    let fl = check(unsafe { ffi::fcntl(fd, F_GETFL) })?;
    if fl & O_NONBLOCK == 0 {
        // SAFETY: as above.
        check(unsafe { ffi::fcntl(fd, F_SETFL, fl | O_NONBLOCK) })?;
    }
    Ok(())
}

/// Sets `FD_CLOEXEC` on the descriptor.
pub fn set_cloexec(fd: RawFd) -> SysResult<()> {
    // SAFETY: fcntl with integer arguments only.
    let fl = check(unsafe { ffi::fcntl(fd, F_GETFD) })?;
    if fl & FD_CLOEXEC == 0 {
        // SAFETY: as above.
        check(unsafe { ffi::fcntl(fd, F_SETFD, fl | FD_CLOEXEC) })?;
    }
    Ok(())
}

/// The file status flags (`F_GETFL`).
pub fn status_flags(fd: RawFd) -> SysResult<c_int> {
    // SAFETY: fcntl with integer arguments only.
    check(unsafe { ffi::fcntl(fd, F_GETFL) })
}

/// What `fstat` tells about a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_mode`.
    pub mode: u32,
    /// `st_size`.
    pub size: i64,
}

/// `fstat(fd)`.
pub fn fstat(fd: RawFd) -> SysResult<FileStat> {
    let mut st = Stat::default();
    // SAFETY: `st` is a correctly laid out, writable `struct stat` (size asserted above).
    check(unsafe { ffi::fstat(fd, &mut st) })?;
    Ok(FileStat {
        dev: st.dev,
        ino: st.ino,
        mode: st.mode,
        size: st.size,
    })
}

/// `poll(fd, POLLIN, timeout_ms)`: whether the descriptor is readable.
pub fn poll_readable(fd: RawFd, timeout_ms: i32) -> SysResult<bool> {
    let mut p = PollFd {
        fd,
        events: POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `p` is one valid pollfd and nfds = 1.
        let r = unsafe { ffi::poll(&mut p, 1, timeout_ms) };
        if r < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        return Ok(r > 0 && (p.revents & POLLIN) != 0);
    }
}
