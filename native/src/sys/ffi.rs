//! The libc declarations and the kernel structures they take (x86_64 Linux layouts).
//! Only the other `sys` modules call these.

use super::epoll::EpollEvent;
use std::ffi::{c_int, c_long, c_ulong, c_void};

#[repr(C)]
pub(super) struct IoVec {
    pub(super) base: *mut c_void,
    pub(super) len: usize,
}

#[repr(C)]
pub(super) struct PollFd {
    pub(super) fd: c_int,
    pub(super) events: i16,
    pub(super) revents: i16,
}

#[repr(C)]
#[derive(Default)]
pub(super) struct RLimit {
    pub(super) cur: u64,
    pub(super) max: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub(super) struct Timespec {
    pub(super) sec: i64,
    pub(super) nsec: i64,
}

#[repr(C)]
#[derive(Default)]
pub(super) struct ITimerspec {
    pub(super) interval: Timespec,
    pub(super) value: Timespec,
}

/// `struct stat` on x86_64 (144 bytes).
#[repr(C)]
#[derive(Default)]
pub(super) struct Stat {
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) nlink: u64,
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) pad0: i32,
    pub(super) rdev: u64,
    pub(super) size: i64,
    pub(super) blksize: i64,
    pub(super) blocks: i64,
    pub(super) times: [i64; 6],
    pub(super) unused: [i64; 3],
}

const _: () = assert!(std::mem::size_of::<Stat>() == 144);

extern "C" {
    pub(super) fn eventfd(initval: u32, flags: c_int) -> c_int;
    pub(super) fn epoll_create1(flags: c_int) -> c_int;
    pub(super) fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut EpollEvent) -> c_int;
    pub(super) fn epoll_wait(
        epfd: c_int,
        events: *mut EpollEvent,
        max: c_int,
        timeout: c_int,
    ) -> c_int;
    pub(super) fn read(fd: c_int, buf: *mut c_void, count: usize) -> isize;
    pub(super) fn preadv2(
        fd: c_int,
        iov: *const IoVec,
        iovcnt: c_int,
        offset: i64,
        flags: c_int,
    ) -> isize;
    pub(super) fn sched_setaffinity(pid: c_int, size: usize, mask: *const u64) -> c_int;
    pub(super) fn sched_getaffinity(pid: c_int, size: usize, mask: *mut u64) -> c_int;
    pub(super) fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    pub(super) fn close(fd: c_int) -> c_int;
    pub(super) fn dup2(old: c_int, new: c_int) -> c_int;
    pub(super) fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    pub(super) fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    pub(super) fn fstat(fd: c_int, st: *mut Stat) -> c_int;
    pub(super) fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    pub(super) fn munmap(addr: *mut c_void, len: usize) -> c_int;
    pub(super) fn poll(fds: *mut PollFd, nfds: u64, timeout: c_int) -> c_int;
    pub(super) fn getrlimit(res: c_int, rlim: *mut RLimit) -> c_int;
    pub(super) fn setrlimit(res: c_int, rlim: *const RLimit) -> c_int;
    pub(super) fn clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int;
    pub(super) fn timerfd_create(clock: c_int, flags: c_int) -> c_int;
    pub(super) fn timerfd_settime(
        fd: c_int,
        flags: c_int,
        new: *const ITimerspec,
        old: *mut ITimerspec,
    ) -> c_int;
    pub(super) fn syscall(num: c_long, ...) -> c_long;
    pub(super) fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    pub(super) fn getpid() -> c_int;
}
