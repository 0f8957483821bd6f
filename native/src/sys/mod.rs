//! Every libc call the crate makes: thin, safe wrappers by topic, over the declarations in
//! [`ffi`]. This module tree and `mmio.rs` are the only places with `unsafe`; each block
//! states why it is sound. Wrappers return `Result<_, Errno>` (a positive errno); `lib.rs`
//! negates it at the C boundary. x86_64 Linux only (struct layouts and syscall numbers).

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!("ioeventd_native supports x86_64 Linux only");

mod abi;
mod epoll;
mod errno;
mod fd;
mod ffi;
pub mod kvm;
mod mmap;
mod process;
mod socket;
mod time;
mod vfio;

pub(crate) use abi::{abi_bytes, abi_bytes_mut, abi_cstr, abi_slice_mut, abi_slice_u32};
pub use epoll::{epoll_add, epoll_create, epoll_del, epoll_wait, EpollEvent, EPOLLIN};
pub use errno::{Errno, SysResult};
pub use fd::*;
pub use mmap::Mmap;
pub use process::*;
pub use socket::*;
pub use time::{monotonic_ns, realtime_coarse_ns, timerfd_periodic};
pub use vfio::*;

use std::ffi::c_int;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

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
