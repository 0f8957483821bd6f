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

/// `ioeventd_source_acquire` for `count` (≤ 65536) descriptors of one process (records of
/// layout `acquire`), with one pidfd and one start-time read: the number acquired, and the
/// start time in `start_out[0]`. The process's failures (`-ESRCH` gone, `-EOWNERDEAD` its
/// pid reused: `expect_start` differs) fail the whole call, every record untouched; any
/// other failure is its own record's `-errno`.
#[no_mangle]
pub extern "C" fn ioeventd_source_acquire_many(
    pid: i32,
    expect_start: u64,
    recs: *mut u64,
    count: u64,
    start_out: *mut u64,
) -> i64 {
    use layout::acquire as w;
    ret_i64((|| {
        if count > 65_536 {
            return Err(Errno::EINVAL);
        }
        let recs = sys::abi_slice_mut(recs, count * w::LEN as u64).ok_or(Errno::EFAULT)?;
        let start_out = sys::abi_slice_mut(start_out, 1).ok_or(Errno::EFAULT)?;
        let wanted: Vec<source::Wanted> = recs
            .chunks_exact(w::LEN)
            .map(|r| source::Wanted {
                fd: r[w::FD] as i32,
                expect_eventfd_id: r[w::EXPECT_EVENTFD_ID],
            })
            .collect();
        let (start, results) = source::acquire_many(pid, &wanted, expect_start)?;
        start_out[0] = start;
        let mut n = 0;
        for (r, result) in recs.chunks_exact_mut(w::LEN).zip(results) {
            match result {
                Ok(a) => {
                    r[w::EVENTFD_ID] = a.identity;
                    r[w::DEV] = a.dev;
                    r[w::RESULT] = i64::from(a.fd.into_raw_fd()) as u64;
                    n += 1;
                }
                Err(e) => r[w::RESULT] = Errno::from(e).to_abi() as u64,
            }
        }
        Ok(n)
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
