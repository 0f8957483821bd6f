//! Every libc call the crate makes: `extern "C"` declarations and thin, safe wrappers.
//!
//! This module and `mmio.rs` are the only places with `unsafe`. Each block states why it
//! is sound. Wrappers return `Result<_, Errno>` (a positive errno); `lib.rs` negates it
//! at the C boundary. x86_64 Linux only (struct layouts and syscall numbers below).

use std::ffi::{c_int, c_long, c_ulong, c_void};
use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!("ioeventd_native supports x86_64 Linux only");

/// A positive `errno` value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

/// Declares the named errno constants and the one table of their names.
macro_rules! errnos {
    ($($name:ident = $n:expr),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                pub const $name: Errno = Errno($n);
            )*
            /// Every errno the C ABI can return, by name (the TypeScript table,
            /// `service/native/errno.ts`, must equal it: `ioeventd_abi_layout` sends it).
            pub const TABLE: &'static [(&'static str, Errno)] = &[$((stringify!($name), Errno($n))),*];
        }
    };
}

errnos! {
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    ENODEV = 19,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    ENFILE = 23,
    EMFILE = 24,
    ENOTTY = 25,
    ETXTBSY = 26,
    EFBIG = 27,
    ENOSPC = 28,
    EROFS = 30,
    ERANGE = 34,
    ENAMETOOLONG = 36,
    ENOSYS = 38,
    ELOOP = 40,
    EOVERFLOW = 75,
    EOPNOTSUPP = 95,
    ESTALE = 116,
    EMEDIUMTYPE = 124,
    EOWNERDEAD = 130,
}

impl Errno {
    /// The symbolic name (`"ENOENT"`), if it is in [`Errno::TABLE`].
    pub fn name(self) -> Option<&'static str> {
        Errno::TABLE.iter().find(|(_, e)| *e == self).map(|(n, _)| *n)
    }

    /// The calling thread's current `errno`.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(5))
    }

    /// The errno of an `io::Error` (EIO when it carries none).
    pub fn from_io(e: &std::io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(5))
    }

    /// The value returned across the C ABI: `-errno`.
    pub fn to_abi(self) -> i64 {
        -i64::from(self.0)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Errno({}: {})",
            self.0,
            std::io::Error::from_raw_os_error(self.0)
        )
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

pub type SysResult<T> = Result<T, Errno>;

// ---- constants (x86_64 Linux) ----
pub const EFD_SEMAPHORE: c_int = 1;
pub const EFD_NONBLOCK: c_int = 0o4000;
pub const EFD_CLOEXEC: c_int = 0o2000000;
const EPOLL_CLOEXEC: c_int = 0o2000000;
const EPOLL_CTL_ADD: c_int = 1;
const EPOLL_CTL_DEL: c_int = 2;
pub const EPOLLIN: u32 = 0x001;
const POLLIN: i16 = 0x001;
const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const MAP_SHARED: c_int = 1;
const F_GETFD: c_int = 1;
const F_SETFD: c_int = 2;
const F_GETFL: c_int = 3;
const F_SETFL: c_int = 4;
const F_DUPFD_CLOEXEC: c_int = 1030;
const FD_CLOEXEC: c_int = 1;
pub const O_NONBLOCK: c_int = 0o4000;
pub const O_SYNC: c_int = 0o4010000;
const O_CLOEXEC: c_int = 0o2000000;
const RLIMIT_NOFILE: c_int = 7;
const CLOCK_MONOTONIC: c_int = 1;
const CLOCK_REALTIME_COARSE: c_int = 5;
const TFD_NONBLOCK: c_int = 0o4000;
const TFD_CLOEXEC: c_int = 0o2000000;
const SYS_PIDFD_OPEN: c_long = 434;
const SYS_PIDFD_GETFD: c_long = 438;
const SYS_KCMP: c_long = 312;
const KCMP_FILE: c_long = 0;
/// `preadv2` flag: fail with `EAGAIN` instead of blocking (per call, not per file).
const RWF_NOWAIT: c_int = 0x8;
/// Bits in a `cpu_set_t` (glibc's `CPU_SETSIZE`): the largest CPU id accepted is one less.
pub const CPU_SETSIZE: usize = 1024;

/// `struct epoll_event` (packed on x86_64).
#[repr(C, packed)]
#[derive(Clone, Copy, Default)]
pub struct EpollEvent {
    pub events: u32,
    pub data: u64,
}

impl EpollEvent {
    /// The user data (token) of the event.
    #[inline]
    pub fn token(&self) -> u64 {
        self.data
    }
}

#[repr(C)]
struct IoVec {
    base: *mut c_void,
    len: usize,
}

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: i16,
    revents: i16,
}

#[repr(C)]
#[derive(Default)]
struct RLimit {
    cur: u64,
    max: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

#[repr(C)]
#[derive(Default)]
struct ITimerspec {
    interval: Timespec,
    value: Timespec,
}

/// `struct stat` on x86_64 (144 bytes).
#[repr(C)]
#[derive(Default)]
struct Stat {
    dev: u64,
    ino: u64,
    nlink: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    pad0: i32,
    rdev: u64,
    size: i64,
    blksize: i64,
    blocks: i64,
    times: [i64; 6],
    unused: [i64; 3],
}

const _: () = assert!(std::mem::size_of::<Stat>() == 144);
const _: () = assert!(std::mem::size_of::<EpollEvent>() == 12);

mod ffi {
    use super::*;
    extern "C" {
        pub fn eventfd(initval: u32, flags: c_int) -> c_int;
        pub fn epoll_create1(flags: c_int) -> c_int;
        pub fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut EpollEvent) -> c_int;
        pub fn epoll_wait(
            epfd: c_int,
            events: *mut EpollEvent,
            max: c_int,
            timeout: c_int,
        ) -> c_int;
        pub fn read(fd: c_int, buf: *mut c_void, count: usize) -> isize;
        pub fn preadv2(
            fd: c_int,
            iov: *const IoVec,
            iovcnt: c_int,
            offset: i64,
            flags: c_int,
        ) -> isize;
        pub fn sched_setaffinity(pid: c_int, size: usize, mask: *const u64) -> c_int;
        pub fn sched_getaffinity(pid: c_int, size: usize, mask: *mut u64) -> c_int;
        pub fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
        pub fn close(fd: c_int) -> c_int;
        pub fn dup2(old: c_int, new: c_int) -> c_int;
        pub fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
        pub fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
        pub fn fstat(fd: c_int, st: *mut Stat) -> c_int;
        pub fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            off: i64,
        ) -> *mut c_void;
        pub fn munmap(addr: *mut c_void, len: usize) -> c_int;
        pub fn poll(fds: *mut PollFd, nfds: u64, timeout: c_int) -> c_int;
        pub fn getrlimit(res: c_int, rlim: *mut RLimit) -> c_int;
        pub fn setrlimit(res: c_int, rlim: *const RLimit) -> c_int;
        pub fn clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int;
        pub fn timerfd_create(clock: c_int, flags: c_int) -> c_int;
        pub fn timerfd_settime(
            fd: c_int,
            flags: c_int,
            new: *const ITimerspec,
            old: *mut ITimerspec,
        ) -> c_int;
        pub fn syscall(num: c_long, ...) -> c_long;
        pub fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
        pub fn getpid() -> c_int;
    }
}

/// Wraps a freshly returned descriptor, or the errno when the call failed.
fn new_fd(ret: c_int) -> SysResult<OwnedFd> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: `ret` is a descriptor the kernel just returned to us; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(ret) })
    }
}

fn check(ret: c_int) -> SysResult<c_int> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of a raw descriptor. Only for descriptors whose ownership the caller
/// explicitly handed over (the C ABI's `register`, a fd returned by a raw syscall).
pub(crate) fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass descriptors they own exclusively (documented contract above);
    // from now on the `OwnedFd` is the only owner and closes it once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

// ---- eventfd ----

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

/// Reads up to `buf.len()` bytes.
pub fn read_bytes(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: `buf` is a valid writable slice for its whole length.
    let n = unsafe { ffi::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(n as usize)
    }
}

// ---- plain descriptor operations ----

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

/// Removes `O_NONBLOCK` from the file status flags (tests; see [`set_nonblocking`]).
pub fn clear_nonblocking(fd: RawFd) -> SysResult<()> {
    // SAFETY: fcntl with integer arguments only.
    let fl = check(unsafe { ffi::fcntl(fd, F_GETFL) })?;
    if fl & O_NONBLOCK != 0 {
        // SAFETY: as above.
        check(unsafe { ffi::fcntl(fd, F_SETFL, fl & !O_NONBLOCK) })?;
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
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
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

// ---- epoll ----

/// A new epoll instance (close-on-exec).
pub fn epoll_create() -> SysResult<OwnedFd> {
    // SAFETY: plain syscall without pointers.
    new_fd(unsafe { ffi::epoll_create1(EPOLL_CLOEXEC) })
}

/// `EPOLL_CTL_ADD` of `fd` (level-triggered `events`) with user data `token`.
pub fn epoll_add(epfd: RawFd, fd: RawFd, events: u32, token: u64) -> SysResult<()> {
    let mut ev = EpollEvent {
        events,
        data: token,
    };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call.
    check(unsafe { ffi::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &mut ev) }).map(|_| ())
}

/// `EPOLL_CTL_DEL` of `fd`.
pub fn epoll_del(epfd: RawFd, fd: RawFd) -> SysResult<()> {
    let mut ev = EpollEvent::default();
    // SAFETY: `ev` is valid (ignored by the kernel for DEL, required non-null by old ones).
    check(unsafe { ffi::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &mut ev) }).map(|_| ())
}

/// `epoll_wait` into `events`; returns how many were filled. `EINTR` is returned as an
/// error for the caller to retry.
#[inline]
pub fn epoll_wait(epfd: RawFd, events: &mut [EpollEvent], timeout_ms: i32) -> SysResult<usize> {
    let max = events.len().min(c_int::MAX as usize) as c_int;
    // SAFETY: `events` is a writable buffer of at least `max` epoll_event records.
    let n = unsafe { ffi::epoll_wait(epfd, events.as_mut_ptr(), max, timeout_ms) };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(n as usize)
    }
}

// ---- timerfd and clocks ----

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

// ---- rlimit ----

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

// ---- pidfd ----

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

// ---- CPU affinity ----

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

// ---- kcmp ----

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

// ---- VFIO ioctls (include/uapi/linux/vfio.h; every request is _IO(';', 100 + n)) ----

const fn vfio_io(n: c_ulong) -> c_ulong {
    // _IO(type, nr) = type << 8 | nr (no direction, no size bits).
    (0x3B << 8) | (100 + n)
}
const VFIO_GET_API_VERSION: c_ulong = vfio_io(0);
const VFIO_CHECK_EXTENSION: c_ulong = vfio_io(1);
const VFIO_SET_IOMMU: c_ulong = vfio_io(2);
const VFIO_GROUP_GET_STATUS: c_ulong = vfio_io(3);
const VFIO_GROUP_SET_CONTAINER: c_ulong = vfio_io(4);
const VFIO_GROUP_GET_DEVICE_FD: c_ulong = vfio_io(6);
const VFIO_DEVICE_GET_INFO: c_ulong = vfio_io(7);
const VFIO_DEVICE_GET_REGION_INFO: c_ulong = vfio_io(8);
const VFIO_DEVICE_IOEVENTFD: c_ulong = vfio_io(16);

const _: () = assert!(VFIO_GET_API_VERSION == 0x3B64);
const _: () = assert!(VFIO_DEVICE_GET_REGION_INFO == 0x3B6C);
const _: () = assert!(VFIO_DEVICE_IOEVENTFD == 0x3B74);

/// `struct vfio_group_status`.
#[repr(C)]
struct VfioGroupStatus {
    argsz: u32,
    flags: u32,
}

/// `struct vfio_device_info` (with the 5.x `cap_offset` and its padding).
#[repr(C)]
#[derive(Default)]
struct VfioDeviceInfoRaw {
    argsz: u32,
    flags: u32,
    num_regions: u32,
    num_irqs: u32,
    cap_offset: u32,
    pad: u32,
}

/// `struct vfio_region_info` (fixed part; capability chains are not requested).
#[repr(C)]
#[derive(Default)]
struct VfioRegionInfoRaw {
    argsz: u32,
    flags: u32,
    index: u32,
    cap_offset: u32,
    size: u64,
    offset: u64,
}

/// `struct vfio_device_ioeventfd` (28 bytes of fields, 32 with the tail padding).
#[repr(C)]
#[derive(Default)]
struct VfioIoeventfdRaw {
    argsz: u32,
    flags: u32,
    offset: u64,
    data: u64,
    fd: i32,
}

const _: () = assert!(std::mem::size_of::<VfioRegionInfoRaw>() == 32);
const _: () = assert!(std::mem::size_of::<VfioIoeventfdRaw>() == 32);
const _: () = assert!(std::mem::size_of::<VfioDeviceInfoRaw>() == 24);

/// `VFIO_GROUP_FLAGS_VIABLE`.
pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;

/// What `VFIO_DEVICE_GET_INFO` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfioDeviceInfo {
    pub flags: u32,
    pub num_regions: u32,
    pub num_irqs: u32,
}

/// What `VFIO_DEVICE_GET_REGION_INFO` tells about one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfioRegionInfo {
    pub flags: u32,
    pub size: u64,
    /// Offset of the region within the device fd (for `mmap`/`pread` and ioeventfds).
    pub offset: u64,
}

/// `ioctl(fd, request, arg)` with an integer argument.
fn ioctl_int(fd: RawFd, request: c_ulong, arg: c_ulong) -> SysResult<c_int> {
    // SAFETY: the requests passed here (API version, check extension, set IOMMU) take an
    // integer argument, not a pointer; nothing in this process is read or written.
    check(unsafe { ffi::ioctl(fd, request, arg) })
}

/// `VFIO_GET_API_VERSION` on a container (`/dev/vfio/vfio`): 0 for the only version.
pub fn vfio_api_version(container: RawFd) -> SysResult<c_int> {
    ioctl_int(container, VFIO_GET_API_VERSION, 0)
}

/// `VFIO_CHECK_EXTENSION(ext)` on a container: whether the IOMMU type `ext` is usable.
pub fn vfio_check_extension(container: RawFd, ext: u32) -> SysResult<bool> {
    ioctl_int(container, VFIO_CHECK_EXTENSION, c_ulong::from(ext)).map(|r| r > 0)
}

/// `VFIO_SET_IOMMU(type)` on a container (after a group was attached).
pub fn vfio_set_iommu(container: RawFd, iommu_type: u32) -> SysResult<()> {
    ioctl_int(container, VFIO_SET_IOMMU, c_ulong::from(iommu_type)).map(|_| ())
}

/// `VFIO_GROUP_GET_STATUS`: the group's flags.
pub fn vfio_group_status(group: RawFd) -> SysResult<u32> {
    let mut st = VfioGroupStatus {
        argsz: std::mem::size_of::<VfioGroupStatus>() as u32,
        flags: 0,
    };
    // SAFETY: the request reads and writes one `struct vfio_group_status`, which `st` is
    // (repr(C), argsz set to its size); it lives for the duration of the call.
    check(unsafe {
        ffi::ioctl(
            group,
            VFIO_GROUP_GET_STATUS,
            &mut st as *mut VfioGroupStatus,
        )
    })?;
    Ok(st.flags)
}

/// `VFIO_GROUP_SET_CONTAINER`: attaches the group to the container.
pub fn vfio_group_set_container(group: RawFd, container: RawFd) -> SysResult<()> {
    let c: c_int = container;
    // SAFETY: the request reads one `__s32` (the container fd) through the pointer; `c`
    // is a live local int.
    check(unsafe { ffi::ioctl(group, VFIO_GROUP_SET_CONTAINER, &c as *const c_int) }).map(|_| ())
}

/// `VFIO_GROUP_GET_DEVICE_FD(name)`: a new device descriptor (close-on-exec is set here).
pub fn vfio_group_get_device_fd(group: RawFd, name: &[u8]) -> SysResult<OwnedFd> {
    let name = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the request reads a NUL-terminated string through the pointer; `name` is a
    // live CString for the duration of the call. The result is a new descriptor or -1.
    let fd = new_fd(unsafe { ffi::ioctl(group, VFIO_GROUP_GET_DEVICE_FD, name.as_ptr()) })?;
    set_cloexec(fd.as_raw_fd())?;
    Ok(fd)
}

/// `VFIO_DEVICE_GET_INFO` (`ENOTTY`/`EINVAL` when `fd` is not a VFIO device).
pub fn vfio_device_info(device: RawFd) -> SysResult<VfioDeviceInfo> {
    let mut info = VfioDeviceInfoRaw {
        argsz: 16, // the 4.x size: no capability chain is wanted
        ..Default::default()
    };
    // SAFETY: the kernel reads `argsz` and writes at most `argsz` (16) bytes of
    // `struct vfio_device_info` into `info`, a live repr(C) local of 24 bytes.
    check(unsafe {
        ffi::ioctl(
            device,
            VFIO_DEVICE_GET_INFO,
            &mut info as *mut VfioDeviceInfoRaw,
        )
    })?;
    Ok(VfioDeviceInfo {
        flags: info.flags,
        num_regions: info.num_regions,
        num_irqs: info.num_irqs,
    })
}

/// `VFIO_DEVICE_GET_REGION_INFO(index)`.
pub fn vfio_region_info(device: RawFd, index: u32) -> SysResult<VfioRegionInfo> {
    let mut info = VfioRegionInfoRaw {
        argsz: std::mem::size_of::<VfioRegionInfoRaw>() as u32,
        index,
        ..Default::default()
    };
    // SAFETY: the kernel reads and writes one fixed-size `struct vfio_region_info` (argsz
    // = its 32 bytes, so no capability chain is written past it) in the live local `info`.
    check(unsafe {
        ffi::ioctl(
            device,
            VFIO_DEVICE_GET_REGION_INFO,
            &mut info as *mut VfioRegionInfoRaw,
        )
    })?;
    Ok(VfioRegionInfo {
        flags: info.flags,
        size: info.size,
        offset: info.offset,
    })
}

/// `VFIO_DEVICE_IOEVENTFD`: asks the kernel to write `data` (`flags` = the width in bytes,
/// passed through unchecked: the kernel's own rules apply) at device-fd offset `offset`
/// whenever `efd` is signalled; `efd` = -1 removes the entry with that exact key.
pub fn vfio_device_ioeventfd(
    device: RawFd,
    offset: u64,
    flags: u32,
    data: u64,
    efd: i32,
) -> SysResult<()> {
    let req = VfioIoeventfdRaw {
        argsz: std::mem::size_of::<VfioIoeventfdRaw>() as u32,
        flags,
        offset,
        data,
        fd: efd,
    };
    // SAFETY: the kernel reads one `struct vfio_device_ioeventfd` (28 bytes, within the
    // 32 of `req`, a live repr(C) local) and writes nothing back.
    check(unsafe {
        ffi::ioctl(
            device,
            VFIO_DEVICE_IOEVENTFD,
            &req as *const VfioIoeventfdRaw,
        )
    })
    .map(|_| ())
}

/// Opens `path` read-write, close-on-exec (the VFIO character devices).
pub fn open_rw(path: &std::path::Path) -> SysResult<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| Errno::from_io(&e))
}

// ---- mmap ----

/// A shared read-write mapping of a whole file; unmapped on drop.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; the raw pointer is only an address. Any
// access through it goes through `mmio.rs` (volatile, bounds-checked at construction).
unsafe impl Send for Mmap {}
// SAFETY: as above; `Mmap` itself has no interior state besides the address and length.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`.
    pub fn map_shared(fd: RawFd, len: usize) -> SysResult<Mmap> {
        Mmap::map_shared_at(fd, len, 0)
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, offset)` (a VFIO region is
    /// mapped at its region offset, `index << 40` for vfio-pci). `EINVAL` for a zero
    /// length or an offset that does not fit `off_t`.
    pub fn map_shared_at(fd: RawFd, len: usize, offset: u64) -> SysResult<Mmap> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let offset = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL); no existing memory is
        // affected. The result is checked against MAP_FAILED.
        let p = unsafe {
            ffi::mmap(
                std::ptr::null_mut(),
                len,
                PROT_READ | PROT_WRITE,
                MAP_SHARED,
                fd,
                offset,
            )
        };
        if p as isize == -1 {
            return Err(Errno::last());
        }
        NonNull::new(p.cast::<u8>())
            .map(|ptr| Mmap { ptr, len })
            .ok_or(Errno::ENOMEM)
    }

    /// Base address (page aligned).
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (zero-length mappings are refused).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping we created and still own; every user holds
        // an `Arc` to its owner, so nothing references it once we are dropped.
        unsafe { ffi::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// ---- C ABI pointer helpers (used by lib.rs only) ----

/// Length and alignment checks shared by the caller-buffer helpers below: `Some(len)` when
/// a `(ptr, len)` array of `T` may be turned into a slice (`ptr` non-null and aligned, total
/// size in range), `None` otherwise; `len == 0` never touches `ptr`.
fn abi_len<T>(ptr: *const T, len: u64) -> Option<usize> {
    let len = usize::try_from(len).ok()?;
    if len == 0 {
        return Some(0);
    }
    let aligned = (ptr as usize).is_multiple_of(std::mem::align_of::<T>());
    let fits = len <= isize::MAX as usize / std::mem::size_of::<T>().max(1);
    (!ptr.is_null() && aligned && fits).then_some(len)
}

/// The caller's `(ptr, cap)` u64 buffer as a slice; `None` when `ptr` is null (or
/// misaligned) and `cap` is non-zero, an empty slice when `cap` is 0.
pub(crate) fn abi_slice_mut<'a>(ptr: *mut u64, cap: u64) -> Option<&'a mut [u64]> {
    match abi_len(ptr, cap)? {
        0 => Some(&mut []),
        // SAFETY: C ABI contract: a non-null `ptr` points to `cap` writable u64s owned by
        // the caller for the duration of the call (checked: non-null, aligned, size in range).
        len => Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) }),
    }
}

/// The caller's `(ptr, len)` u32 array; `None` when `ptr` is null (or misaligned) and `len`
/// is non-zero, an empty slice when `len` is 0.
pub(crate) fn abi_slice_u32<'a>(ptr: *const u32, len: u64) -> Option<&'a [u32]> {
    match abi_len(ptr, len)? {
        0 => Some(&[]),
        // SAFETY: C ABI contract: a non-null `ptr` points to `len` readable u32s owned by the
        // caller for the duration of the call (checked: non-null, aligned, size in range).
        len => Some(unsafe { std::slice::from_raw_parts(ptr, len) }),
    }
}

/// The caller's `(ptr, len)` byte buffer; `None` when `ptr` is null and `len` is non-zero.
pub(crate) fn abi_bytes<'a>(ptr: *const u8, len: u64) -> Option<&'a [u8]> {
    match abi_len(ptr, len)? {
        0 => Some(&[]),
        // SAFETY: C ABI contract: a non-null `ptr` points to `len` readable bytes owned by the
        // caller for the duration of the call (checked: non-null, size in range).
        len => Some(unsafe { std::slice::from_raw_parts(ptr, len) }),
    }
}

/// The caller's `(ptr, len)` writable byte buffer; `None` when `ptr` is null and `len` is
/// non-zero.
pub(crate) fn abi_bytes_mut<'a>(ptr: *mut u8, len: u64) -> Option<&'a mut [u8]> {
    match abi_len(ptr, len)? {
        0 => Some(&mut []),
        // SAFETY: C ABI contract: a non-null `ptr` points to `len` writable bytes owned by the
        // caller for the duration of the call (checked: non-null, size in range).
        len => Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) }),
    }
}

/// The caller's NUL-terminated string as bytes (without the NUL); `None` when null.
pub(crate) fn abi_cstr<'a>(ptr: *const u8) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: C ABI contract: a non-null `ptr` is a NUL-terminated string that stays valid
    // for the duration of the call.
    Some(unsafe { std::ffi::CStr::from_ptr(ptr.cast()) }.to_bytes())
}
