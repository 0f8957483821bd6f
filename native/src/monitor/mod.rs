//! The monitor thread: canary signalling (dispatch latency of every worker), source-process
//! exit watch (one pidfd per pid, ref-counted) and the event queue read by `events_wait`.
//!
//! The control side adds and removes pidfds in the monitor's epoll set directly
//! (`epoll_ctl` is thread-safe); the thread only waits, reports and stops watching. The
//! event queue is in `events.rs`.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

use crate::source;
use crate::sys::{self, EpollEvent, Errno, SysResult};
use crate::worker::{RunningGuard, WorkerShared};
use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

mod events;

pub(crate) use events::EventQueue;
pub use events::{Event, QueueClosed, EVENT_SOURCE_EXITED};

const TOKEN_STOP: u64 = u64::MAX;
const TOKEN_TIMER: u64 = u64::MAX - 1;

/// Why a source process cannot be watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchError {
    /// The process has gone, or it is not the one started at the expected time (`ESRCH`).
    ProcessGone,
    /// A system call failed (`pidfd_open`, `epoll_ctl`).
    Sys(Errno),
}

impl WatchError {
    /// The errno the C ABI reports.
    pub fn errno(&self) -> Errno {
        match self {
            WatchError::ProcessGone => Errno::ESRCH,
            WatchError::Sys(e) => *e,
        }
    }
}

impl From<WatchError> for Errno {
    fn from(e: WatchError) -> Errno {
        e.errno()
    }
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::ProcessGone => f.write_str("the source process is gone"),
            WatchError::Sys(e) => write!(f, "system call failed: {e}"),
        }
    }
}

impl std::error::Error for WatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WatchError::Sys(e) => Some(e),
            WatchError::ProcessGone => None,
        }
    }
}

struct PidWatch {
    pidfd: Option<OwnedFd>,
    start: u64,
    refs: usize,
    exited: bool,
}

/// State shared by the monitor thread and the engine.
pub(crate) struct Monitor {
    epfd: OwnedFd,
    stop_efd: OwnedFd,
    timer: Option<OwnedFd>,
    pids: Mutex<HashMap<i32, Vec<PidWatch>>>,
    pub events: EventQueue,
    workers: Vec<Arc<WorkerShared>>,
    pub running: AtomicBool,
}

impl Monitor {
    pub(crate) fn new(
        workers: Vec<Arc<WorkerShared>>,
        canary_period_us: u32,
    ) -> SysResult<Monitor> {
        let epfd = sys::epoll_create()?;
        let stop_efd = sys::eventfd(0, sys::EFD_NONBLOCK | sys::EFD_CLOEXEC)?;
        sys::epoll_add(
            epfd.as_raw_fd(),
            stop_efd.as_raw_fd(),
            sys::EPOLLIN,
            TOKEN_STOP,
        )?;
        let timer = if canary_period_us > 0 {
            let t = sys::timerfd_periodic(canary_period_us)?;
            sys::epoll_add(epfd.as_raw_fd(), t.as_raw_fd(), sys::EPOLLIN, TOKEN_TIMER)?;
            Some(t)
        } else {
            None
        };
        Ok(Monitor {
            epfd,
            stop_efd,
            timer,
            pids: Mutex::new(HashMap::new()),
            events: EventQueue::default(),
            workers,
            running: AtomicBool::new(false),
        })
    }

    fn pids(&self) -> MutexGuard<'_, HashMap<i32, Vec<PidWatch>>> {
        self.pids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `w` exited and reports it, if its pidfd says the process has exited.
    fn check_exited(&self, pid: i32, w: &mut PidWatch) -> bool {
        if w.exited {
            return true;
        }
        let Some(fd) = &w.pidfd else { return false };
        if !sys::poll_readable(fd.as_raw_fd(), 0).unwrap_or(false) {
            return false;
        }
        let _ = sys::epoll_del(self.epfd.as_raw_fd(), fd.as_raw_fd());
        w.pidfd = None;
        w.exited = true;
        self.events.push(Event::source_exited(pid, w.start));
        true
    }

    /// Takes a reference on the watch of the process `pid` and returns its start time.
    /// Watches are keyed by `(pid, start)`, so a reused pid is a different process.
    /// [`WatchError::ProcessGone`] when the process has gone or its start time differs
    /// from a non-zero `expect_start`.
    pub(crate) fn watch(&self, pid: i32, expect_start: u64) -> Result<u64, WatchError> {
        let mut pids = self.pids();
        let list = pids.entry(pid).or_default();
        // At most one live watch per pid: a live pid is one process.
        if let Some(w) = list.iter_mut().find(|w| !w.exited) {
            if !self.check_exited(pid, w) {
                if expect_start != 0 && w.start != expect_start {
                    return Err(WatchError::ProcessGone);
                }
                w.refs += 1;
                return Ok(w.start);
            }
        }
        let res = (|| {
            let pidfd = sys::pidfd_open(pid).map_err(|e| match e {
                Errno::ESRCH => WatchError::ProcessGone,
                e => WatchError::Sys(e),
            })?;
            let start = source::process_start(pid).map_err(|_| WatchError::ProcessGone)?;
            if (expect_start != 0 && start != expect_start) || list.iter().any(|w| w.start == start)
            {
                return Err(WatchError::ProcessGone);
            }
            if sys::poll_readable(pidfd.as_raw_fd(), 0).map_err(WatchError::Sys)? {
                return Err(WatchError::ProcessGone);
            }
            sys::epoll_add(
                self.epfd.as_raw_fd(),
                pidfd.as_raw_fd(),
                sys::EPOLLIN,
                pid as u64,
            )
            .map_err(WatchError::Sys)?;
            list.push(PidWatch {
                pidfd: Some(pidfd),
                start,
                refs: 1,
                exited: false,
            });
            Ok(start)
        })();
        if list.is_empty() {
            pids.remove(&pid);
        }
        res
    }

    /// Drops a reference taken by [`Monitor::watch`] (same pid and start).
    pub(crate) fn unwatch(&self, pid: i32, start: u64) {
        let mut pids = self.pids();
        let Some(list) = pids.get_mut(&pid) else {
            return;
        };
        let Some(i) = list.iter().position(|w| w.start == start) else {
            return;
        };
        list[i].refs -= 1;
        if list[i].refs == 0 {
            if let Some(fd) = &list[i].pidfd {
                let _ = sys::epoll_del(self.epfd.as_raw_fd(), fd.as_raw_fd());
            }
            list.swap_remove(i);
            if list.is_empty() {
                pids.remove(&pid);
            }
        }
    }

    /// Processes whose exit is still being watched.
    pub(crate) fn watched(&self) -> usize {
        self.pids().values().flatten().filter(|w| !w.exited).count()
    }

    /// Forgets every watch (closing the pidfds).
    pub(crate) fn clear(&self) {
        self.pids().clear();
    }

    /// Asks the thread to stop.
    pub(crate) fn stop(&self) {
        let _ = sys::write_u64(self.stop_efd.as_raw_fd(), 1);
    }

    fn on_pid_event(&self, pid: i32) {
        let mut pids = self.pids();
        let Some(list) = pids.get_mut(&pid) else {
            return;
        };
        // Only a real exit is reported (a token may be stale after an unwatch).
        for w in list.iter_mut() {
            self.check_exited(pid, w);
        }
    }

    fn send_canaries(&self) {
        if let Some(t) = &self.timer {
            let _ = sys::read_u64(t.as_raw_fd());
        }
        for w in &self.workers {
            let c = &w.canary;
            // One canary outstanding per worker: a stuck worker shows up as one long
            // sample when it finally serves it, not as a flood of short ones.
            if c.sent_ns
                .compare_exchange(0, sys::monotonic_ns(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                let _ = sys::write_u64(c.efd.as_raw_fd(), 1);
            }
        }
    }

    fn run(&self) {
        let mut events = [EpollEvent::default(); 16];
        loop {
            let n = match sys::epoll_wait(self.epfd.as_raw_fd(), &mut events, -1) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            };
            for ev in &events[..n] {
                match ev.token() {
                    TOKEN_STOP => return,
                    TOKEN_TIMER => self.send_canaries(),
                    pid => self.on_pid_event(pid as i32),
                }
            }
        }
    }
}

/// Starts the monitor thread.
pub(crate) fn spawn(name: String, monitor: Arc<Monitor>) -> SysResult<JoinHandle<()>> {
    monitor.running.store(true, Ordering::Release);
    let m = monitor.clone();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _running = RunningGuard(&m.running);
            m.run();
        })
        .map_err(|e| {
            monitor.running.store(false, Ordering::Release);
            Errno::from_io(&e)
        })
}
