//! Eventfd acquisition by `(pid, fd)`: `pidfd_open` + `pidfd_getfd`, eventfd check and
//! identity (process start time, eventfd identity).
//!
//! Identity of an eventfd: every eventfd shares the kernel's single anonymous inode, so
//! `st_ino` cannot tell two eventfds apart. The identity reported (and compared with
//! `expect_eventfd_id`) is therefore the kernel's per-eventfd id from
//! `/proc/self/fdinfo/<fd>` (`eventfd-id:`), plus one so that it is never 0 (0 means
//! "don't check" in the ABI). On a kernel without that line it falls back to `st_ino`.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

use crate::sys::{self, Errno};
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Why a source (or any descriptor of another process) cannot be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceError {
    /// No such process, or it exited while being looked at (`ESRCH`).
    ProcessGone,
    /// The pid now names another process: its start time differs (`EOWNERDEAD`).
    PidReused,
    /// The process has no descriptor with that number (`EBADF`).
    FdNotOpen,
    /// The descriptor now refers to another eventfd: its identity differs (`ESTALE`).
    FdReplaced,
    /// The descriptor is not an eventfd (`EMEDIUMTYPE`).
    NotEventfd,
    /// Not allowed to take descriptors of that process (ptrace access mode; `EPERM`).
    AccessDenied,
    /// Any other failure of a system call.
    Sys(Errno),
}

impl SourceError {
    /// The errno the C ABI reports.
    pub fn errno(&self) -> Errno {
        match self {
            SourceError::ProcessGone => Errno::ESRCH,
            SourceError::PidReused => Errno::EOWNERDEAD,
            SourceError::FdNotOpen => Errno::EBADF,
            SourceError::FdReplaced => Errno::ESTALE,
            SourceError::NotEventfd => Errno::EMEDIUMTYPE,
            SourceError::AccessDenied => Errno::EPERM,
            SourceError::Sys(e) => *e,
        }
    }

    /// A failure of `pidfd_open` / `pidfd_getfd`, by what it means for a source.
    fn from_pidfd(e: Errno) -> SourceError {
        match e {
            Errno::ESRCH => SourceError::ProcessGone,
            Errno::EBADF => SourceError::FdNotOpen,
            Errno::EPERM => SourceError::AccessDenied,
            e => SourceError::Sys(e),
        }
    }
}

impl From<SourceError> for Errno {
    fn from(e: SourceError) -> Errno {
        e.errno()
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::ProcessGone => f.write_str("the source process is gone"),
            SourceError::PidReused => f.write_str("the pid names another process (start time)"),
            SourceError::FdNotOpen => f.write_str("no such descriptor in the source process"),
            SourceError::FdReplaced => f.write_str("the descriptor names another eventfd"),
            SourceError::NotEventfd => f.write_str("the descriptor is not an eventfd"),
            SourceError::AccessDenied => f.write_str("not allowed to take the descriptor"),
            SourceError::Sys(e) => write!(f, "system call failed: {e}"),
        }
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SourceError::Sys(e) => Some(e),
            _ => None,
        }
    }
}

/// An eventfd duplicated from another process.
#[derive(Debug)]
pub struct Acquired {
    /// The local descriptor (close-on-exec; its file status flags, `O_NONBLOCK` included,
    /// are the source process's and are left as they are).
    pub fd: OwnedFd,
    /// Start time of the process (field 22 of `/proc/<pid>/stat`, clock ticks since boot).
    pub start: u64,
    /// Identity of the eventfd (see the module doc).
    pub identity: u64,
    /// `st_dev` of the eventfd.
    pub dev: u64,
}

/// Start time of `pid` (field 22 of `/proc/<pid>/stat`); [`SourceError::ProcessGone`]
/// when it cannot be read.
pub fn process_start(pid: i32) -> Result<u64, SourceError> {
    let stat =
        crate::procfs::read(format!("/proc/{pid}/stat")).map_err(|_| SourceError::ProcessGone)?;
    parse_start_time(&stat).ok_or(SourceError::ProcessGone)
}

/// Field 22 of a `/proc/<pid>/stat` line (the start time).
pub(crate) fn parse_start_time(stat: &str) -> Option<u64> {
    stat_field(stat, 22)
}

/// Numeric field `n` of a `/proc/<pid>/stat` line, numbered as in proc(5) (`None` for the
/// command name, the state, or a field that is missing or not a number). `comm` (field 2)
/// may contain spaces and parentheses, so fields are counted after the last `)`.
pub(crate) fn stat_field(stat: &str, n: usize) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state).
    rest.split_whitespace().nth(n.checked_sub(3)?)?.parse().ok()
}

/// Whether the local descriptor `fd` is an eventfd.
pub(crate) fn is_eventfd(fd: RawFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|t| t.as_os_str() == "anon_inode:[eventfd]")
        .unwrap_or(false)
}

/// What `/proc/self/fdinfo/<fd>` says of an eventfd, in one read: `None` when `fd` is not
/// an eventfd (no `eventfd-count:` line; unreadable), else `Some(eventfd-id)` — the inner
/// `None` on a kernel without the `eventfd-id:` line. Cheaper than [`is_eventfd`] plus
/// [`eventfd_id`] (one open/read/close, no allocation of the text).
pub(crate) fn eventfd_fdinfo(fd: RawFd) -> Option<Option<u64>> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/proc/self/fdinfo/{fd}")).ok()?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(_) => return None,
        }
    }
    let text = std::str::from_utf8(&buf[..len]).ok()?;
    let mut is_eventfd = false;
    let mut id = None;
    for l in text.lines() {
        if l.starts_with("eventfd-count:") {
            is_eventfd = true;
        } else if let Some(v) = l.strip_prefix("eventfd-id:") {
            id = v.trim().parse::<u64>().ok();
        }
    }
    is_eventfd.then_some(id)
}

/// The kernel's id of the local eventfd `fd` (`eventfd-id:` in `/proc/self/fdinfo/<fd>`),
/// unique among live eventfds; `None` on a kernel without that line.
pub(crate) fn eventfd_id(fd: RawFd) -> Option<u64> {
    crate::procfs::read(format!("/proc/self/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("eventfd-id:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
}

/// Identity of the local eventfd `fd` (see the module doc).
pub fn eventfd_identity(fd: RawFd, ino: u64) -> u64 {
    eventfd_id(fd).map(|id| id + 1).unwrap_or(ino)
}

/// A pidfd for `pid`, after the argument checks every taking of a descriptor shares
/// (`pid` > 0, `fd` ≥ 0).
pub(crate) fn pidfd(pid: i32, fd: i32) -> Result<OwnedFd, SourceError> {
    if pid <= 0 {
        return Err(SourceError::ProcessGone);
    }
    if fd < 0 {
        return Err(SourceError::FdNotOpen);
    }
    sys::pidfd_open(pid).map_err(SourceError::from_pidfd)
}

/// Duplicates descriptor `fd` of the process behind `pidfd` into this one.
pub(crate) fn getfd(pidfd: &OwnedFd, fd: i32) -> Result<OwnedFd, SourceError> {
    sys::pidfd_getfd(pidfd.as_raw_fd(), fd).map_err(SourceError::from_pidfd)
}

/// Duplicates fd `fd` of process `pid` into this process after checking it (see the ABI
/// table in README.md for the errors).
pub fn acquire(
    pid: i32,
    fd: i32,
    expect_start: u64,
    expect_eventfd_id: u64,
) -> Result<Acquired, SourceError> {
    let pidfd = pidfd(pid, fd)?;
    let start = process_start(pid)?;
    if expect_start != 0 && start != expect_start {
        return Err(SourceError::PidReused);
    }
    let local = getfd(&pidfd, fd)?;
    let raw = local.as_raw_fd();
    if !is_eventfd(raw) {
        return Err(SourceError::NotEventfd);
    }
    let st = sys::fstat(raw).map_err(SourceError::Sys)?;
    let identity = eventfd_identity(raw, st.ino);
    if expect_eventfd_id != 0 && identity != expect_eventfd_id {
        return Err(SourceError::FdReplaced);
    }
    // The start time was read while the pidfd was open; if the process has exited since,
    // a later reuse of `pid` could not be told apart: treat it as gone.
    if sys::poll_readable(pidfd.as_raw_fd(), 0).map_err(SourceError::Sys)? {
        return Err(SourceError::ProcessGone);
    }
    // Only the per-descriptor close-on-exec flag: the file status flags (O_NONBLOCK) live on
    // the open file description shared with the source process and stay as it set them.
    sys::set_cloexec(raw).map_err(SourceError::Sys)?;
    drop(pidfd);
    Ok(Acquired {
        fd: local,
        start,
        identity,
        dev: st.dev,
    })
}

/// One descriptor of a batch: its number in the source process and the eventfd identity
/// it must have (0: any).
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    /// The descriptor number in the source process.
    pub fd: i32,
    /// The identity it must have (0: any).
    pub expect_eventfd_id: u64,
}

/// [`acquire`] for many descriptors of one process (a replay): one pidfd and one start-time
/// read for all of them instead of one each. A failure of the process (gone, or its pid
/// reused) fails the whole batch; any other only its own descriptor. Returns the start time.
pub fn acquire_many(
    pid: i32,
    wanted: &[Wanted],
    expect_start: u64,
) -> Result<(u64, Vec<Result<Acquired, SourceError>>), SourceError> {
    let pidfd = pidfd(pid, 0)?;
    let start = process_start(pid)?;
    if expect_start != 0 && start != expect_start {
        return Err(SourceError::PidReused);
    }
    let one = |w: &Wanted| -> Result<Acquired, SourceError> {
        if w.fd < 0 {
            return Err(SourceError::FdNotOpen);
        }
        let local = getfd(&pidfd, w.fd)?;
        let raw = local.as_raw_fd();
        // One fdinfo read says both that it is an eventfd and its id.
        let Some(id) = eventfd_fdinfo(raw) else {
            return Err(SourceError::NotEventfd);
        };
        let st = sys::fstat(raw).map_err(SourceError::Sys)?;
        let identity = id.map(|id| id + 1).unwrap_or(st.ino);
        if w.expect_eventfd_id != 0 && identity != w.expect_eventfd_id {
            return Err(SourceError::FdReplaced);
        }
        // Only the per-descriptor close-on-exec flag (see `acquire`).
        sys::set_cloexec(raw).map_err(SourceError::Sys)?;
        Ok(Acquired {
            fd: local,
            start,
            identity,
            dev: st.dev,
        })
    };
    let out: Vec<_> = wanted.iter().map(one).collect();
    // The start time was read while the pidfd was open; if the process exited since, a later
    // reuse of `pid` could not be told apart: all of them are gone (their fds closed here).
    if sys::poll_readable(pidfd.as_raw_fd(), 0).map_err(SourceError::Sys)? {
        return Err(SourceError::ProcessGone);
    }
    Ok((start, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_parsing_survives_odd_comm() {
        let fields: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        let tail = fields.join(" ");
        for comm in ["bash", "a b", "x) (y", ")", "(("] {
            let line = format!("1234 ({comm}) {tail}\n");
            assert_eq!(parse_start_time(&line), Some(22), "comm {comm:?}");
        }
        assert_eq!(parse_start_time("1234 (x) S 1 2"), None);
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn own_process_start_and_eventfd_identity() {
        let me = std::process::id() as i32;
        assert!(process_start(me).unwrap() > 0);
        let a = sys::eventfd(0, sys::EFD_CLOEXEC).unwrap();
        let b = sys::eventfd(0, sys::EFD_CLOEXEC).unwrap();
        assert!(is_eventfd(a.as_raw_fd()));
        let (r, _w) = sys::pipe().unwrap();
        assert!(!is_eventfd(r.as_raw_fd()));
        let ia = eventfd_identity(a.as_raw_fd(), 0);
        let ib = eventfd_identity(b.as_raw_fd(), 0);
        assert_ne!(ia, 0);
        assert_ne!(ia, ib);
        let a2 = sys::dup(a.as_raw_fd()).unwrap();
        assert_eq!(eventfd_identity(a2.as_raw_fd(), 0), ia);
        // The one-read form agrees, and tells a pipe from an eventfd.
        let id = eventfd_id(a.as_raw_fd());
        assert!(id.is_some());
        assert_eq!(eventfd_fdinfo(a2.as_raw_fd()), Some(id));
        assert_eq!(eventfd_fdinfo(r.as_raw_fd()), None);
        assert_eq!(eventfd_fdinfo(-1), None);
    }
}
