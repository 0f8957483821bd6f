//! epoll: the instance, adding and removing descriptors, waiting.

use super::ffi;
use super::{check, new_fd, Errno, SysResult};
use std::ffi::c_int;
use std::os::fd::{OwnedFd, RawFd};

const EPOLL_CLOEXEC: c_int = 0o2000000;
const EPOLL_CTL_ADD: c_int = 1;
const EPOLL_CTL_DEL: c_int = 2;
/// `EPOLLIN`.
pub const EPOLLIN: u32 = 0x001;

/// `struct epoll_event` (packed on x86_64).
#[repr(C, packed)]
#[derive(Clone, Copy, Default)]
pub struct EpollEvent {
    /// The event bits.
    pub events: u32,
    /// The user data: the token given to [`epoll_add`].
    pub data: u64,
}

const _: () = assert!(std::mem::size_of::<EpollEvent>() == 12);

impl EpollEvent {
    /// The user data (token) of the event.
    #[inline]
    pub fn token(&self) -> u64 {
        self.data
    }
}

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
