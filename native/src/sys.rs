//! Every libc call the crate makes: `extern "C"` declarations and thin, safe wrappers.
//!
//! This module and `mmio.rs` are the only places with `unsafe`. Each block states why it
//! is sound. Wrappers return `Result<_, Errno>` (a positive errno); `lib.rs` negates it
//! at the C boundary. x86_64 Linux only (struct layouts and syscall numbers below).

use std::ffi::{c_int, c_long, c_void};
use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!("ioeventd_native supports x86_64 Linux only");

/// A positive `errno` value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const ESRCH: Errno = Errno(3);
    pub const EINTR: Errno = Errno(4);
    pub const EIO: Errno = Errno(5);
    pub const EBADF: Errno = Errno(9);
    pub const EAGAIN: Errno = Errno(11);
    pub const ENOMEM: Errno = Errno(12);
    pub const EFAULT: Errno = Errno(14);
    pub const EEXIST: Errno = Errno(17);
    pub const EINVAL: Errno = Errno(22);
    pub const EMFILE: Errno = Errno(24);
    pub const ERANGE: Errno = Errno(34);
    pub const ESTALE: Errno = Errno(116);
    pub const EMEDIUMTYPE: Errno = Errno(124);
    pub const EOWNERDEAD: Errno = Errno(130);

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
const TFD_NONBLOCK: c_int = 0o4000;
const TFD_CLOEXEC: c_int = 0o2000000;
const SYS_PIDFD_OPEN: c_long = 434;
const SYS_PIDFD_GETFD: c_long = 438;

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
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL); no existing memory is
        // affected. The result is checked against MAP_FAILED.
        let p = unsafe {
            ffi::mmap(
                std::ptr::null_mut(),
                len,
                PROT_READ | PROT_WRITE,
                MAP_SHARED,
                fd,
                0,
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

/// The caller's `(ptr, cap)` u64 buffer as a slice; `None` when `ptr` is null and `cap`
/// is non-zero, an empty slice when `cap` is 0.
pub(crate) fn abi_slice_mut<'a>(ptr: *mut u64, cap: u64) -> Option<&'a mut [u64]> {
    if cap == 0 {
        return Some(&mut []);
    }
    if ptr.is_null() || !(ptr as usize).is_multiple_of(std::mem::align_of::<u64>()) {
        return None;
    }
    let len = usize::try_from(cap).ok()?;
    if len > isize::MAX as usize / 8 {
        return None;
    }
    // SAFETY: C ABI contract: a non-null `ptr` points to `cap` writable u64s owned by the
    // caller for the duration of the call (checked: non-null, aligned, size in range).
    Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
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
