//! Sources: taking an eventfd from another process, closing local descriptors, the
//! process start time, and eventfds of this process (tests, benchmarks).

use super::{ret_i32, ret_i64};
use crate::abi_layout as layout;
use crate::source;
use crate::sys::{self, Errno};
use std::os::fd::IntoRawFd;

/// Duplicates eventfd `fd` of process `pid` after checking its identity; `out` gets the `source` layout.
#[no_mangle]
pub extern "C" fn ioeventd_source_acquire(
    pid: i32,
    fd: i32,
    expect_start: u64,
    expect_eventfd_id: u64,
    out: *mut u64,
) -> i64 {
    ret_i64((|| {
        let out = sys::abi_slice_mut(out, layout::source::LEN as u64).ok_or(Errno::EFAULT)?;
        let a = source::acquire(pid, fd, expect_start, expect_eventfd_id)?;
        out[layout::source::START_TIME] = a.start;
        out[layout::source::EVENTFD_ID] = a.identity;
        out[layout::source::DEV] = a.dev;
        Ok(i64::from(a.fd.into_raw_fd()))
    })())
}

/// Closes a local fd from `source_acquire` (or any fd this process owns).
#[no_mangle]
pub extern "C" fn ioeventd_source_close(fd: i32) -> i32 {
    ret_i32((|| {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        sys::close_raw(fd)?;
        Ok(0)
    })())
}

/// Start time of process `pid` (field 22 of `/proc/<pid>/stat`, clock ticks since boot), as
/// `source_acquire` reports it; `-ESRCH` when there is no such process. The agent reads it
/// here because Deno's permissions do not let TypeScript read `/proc` without `--allow-all`.
#[no_mangle]
pub extern "C" fn ioeventd_process_start_time(pid: i32) -> i64 {
    ret_i64((|| Ok(source::process_start(pid)? as i64))())
}

/// Creates a non-blocking, close-on-exec eventfd in this process (tests, benchmarks).
#[no_mangle]
pub extern "C" fn ioeventd_eventfd_create(initval: u32) -> i32 {
    ret_i32(sys::eventfd(initval, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK).map(IntoRawFd::into_raw_fd))
}

/// Adds `value` to eventfd `fd` of this process.
#[no_mangle]
pub extern "C" fn ioeventd_eventfd_signal(fd: i32, value: u64) -> i32 {
    ret_i32((|| {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        sys::write_u64(fd, value)?;
        Ok(0)
    })())
}
