//! Eventfd acquisition from a real child process (`ioeventd-test-source`).

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
mod common;

use common::TestSource;
use ioeventd_native::source::{self, acquire};
use ioeventd_native::sys::{self, Errno};
use std::os::fd::AsRawFd;

#[test]
fn acquire_reports_start_identity_and_works() {
    let mut src = TestSource::spawn(2);
    let a = acquire(src.pid, src.fds[0], 0, 0).unwrap();
    let start = source::process_start(src.pid).unwrap();
    assert_eq!(a.start, start);
    assert_ne!(a.identity, 0);
    let st = sys::fstat(a.fd.as_raw_fd()).unwrap();
    assert_eq!(a.dev, st.dev);
    // The source's file flags are untouched: its eventfd stays blocking, here and there.
    assert_eq!(
        sys::status_flags(a.fd.as_raw_fd()).unwrap() & sys::O_NONBLOCK,
        0
    );
    assert_eq!(
        src.cmd("flags 0"),
        format!("ok {}", sys::status_flags(a.fd.as_raw_fd()).unwrap())
    );
    // It is the same eventfd: a signal in the child is readable here, without blocking.
    assert_eq!(sys::read_counter(a.fd.as_raw_fd()), Err(Errno::EAGAIN));
    assert_eq!(src.cmd("signal 0 3"), "ok 3");
    assert_eq!(sys::read_counter(a.fd.as_raw_fd()), Ok(3));
    assert_eq!(src.cmd("value 0"), "ok 0");
    assert_eq!(src.cmd("signal 0 2"), "ok 2");
    assert_eq!(src.cmd("value 0"), "ok 2", "value reads without blocking");
    assert_eq!(
        src.cmd("flags 0"),
        format!("ok {}", sys::status_flags(a.fd.as_raw_fd()).unwrap())
    );
    assert_eq!(
        sys::status_flags(a.fd.as_raw_fd()).unwrap() & sys::O_NONBLOCK,
        0,
        "value leaves the flags as they were"
    );
    // The other eventfd has another identity; the same one again has the same.
    let b = acquire(src.pid, src.fds[1], start, 0).unwrap();
    assert_ne!(b.identity, a.identity);
    let a2 = acquire(src.pid, src.fds[0], start, a.identity).unwrap();
    assert_eq!(a2.identity, a.identity);
    src.exit();
}

#[test]
fn not_an_eventfd_is_emediumtype() {
    let mut src = TestSource::spawn(1);
    assert!(src.cmd("pipe 0").starts_with("ok"));
    assert_eq!(
        acquire(src.pid, src.fds[0], 0, 0).err().map(Errno::from),
        Some(Errno::EMEDIUMTYPE)
    );
    src.exit();
}

#[test]
fn missing_fd_is_ebadf() {
    let mut src = TestSource::spawn(1);
    assert_eq!(
        acquire(src.pid, 900, 0, 0).err().map(Errno::from),
        Some(Errno::EBADF)
    );
    assert!(src.cmd("close 0").starts_with("ok"));
    assert_eq!(
        acquire(src.pid, src.fds[0], 0, 0).err().map(Errno::from),
        Some(Errno::EBADF)
    );
    assert_eq!(
        acquire(src.pid, -1, 0, 0).err().map(Errno::from),
        Some(Errno::EBADF)
    );
    src.exit();
}

#[test]
fn dead_pid_is_esrch() {
    let src = TestSource::spawn(1);
    let pid = src.pid;
    let fd = src.fds[0];
    src.exit();
    assert_eq!(
        acquire(pid, fd, 0, 0).err().map(Errno::from),
        Some(Errno::ESRCH)
    );
    assert_eq!(
        acquire(0, fd, 0, 0).err().map(Errno::from),
        Some(Errno::ESRCH)
    );
    assert_eq!(
        acquire(-5, fd, 0, 0).err().map(Errno::from),
        Some(Errno::ESRCH)
    );
}

#[test]
fn wrong_start_is_eownerdead() {
    let src = TestSource::spawn(1);
    let start = source::process_start(src.pid).unwrap();
    assert_eq!(
        acquire(src.pid, src.fds[0], start + 1, 0)
            .err()
            .map(Errno::from),
        Some(Errno::EOWNERDEAD)
    );
    assert!(acquire(src.pid, src.fds[0], start, 0).is_ok());
    src.exit();
}

#[test]
fn replaced_eventfd_is_estale() {
    let mut src = TestSource::spawn(1);
    let first = acquire(src.pid, src.fds[0], 0, 0).unwrap();
    let identity = first.identity;
    drop(first);
    assert_eq!(src.cmd("replace 0"), format!("ok {}", src.fds[0]));
    assert_eq!(
        acquire(src.pid, src.fds[0], 0, identity)
            .err()
            .map(Errno::from),
        Some(Errno::ESTALE)
    );
    let again = acquire(src.pid, src.fds[0], 0, 0).unwrap();
    assert_ne!(again.identity, identity);
    src.exit();
}
