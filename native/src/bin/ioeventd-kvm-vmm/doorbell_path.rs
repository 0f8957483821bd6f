//! The doorbell paths a run can take (the guest code is the same in each), and the `bare`
//! modes' minimal user-space consumer.

use crate::guest_layout::DOORBELLS;
use ioeventd_native::sys::kvm::GuestMemory;
use ioeventd_native::sys::{self, EpollEvent, Errno};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The doorbell path of a run (see `main.rs`'s documentation for each).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Exit,
    Ioeventd,
    Bare,
    BareSpin,
    Ram,
}

impl Mode {
    pub(crate) fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "exit" => Mode::Exit,
            "ioeventd" => Mode::Ioeventd,
            "bare" => Mode::Bare,
            "bare-spin" => Mode::BareSpin,
            "ram" => Mode::Ram,
            _ => {
                return Err(format!(
                    "unknown mode {s:?} (exit, ioeventd, bare, bare-spin, ram)"
                ))
            }
        })
    }
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Exit => "exit",
            Mode::Ioeventd => "ioeventd",
            Mode::Bare => "bare",
            Mode::BareSpin => "bare-spin",
            Mode::Ram => "ram",
        }
    }
}

/// Counters of the bare consumer.
#[derive(Default)]
pub(crate) struct BareCounters {
    pub(crate) writes: AtomicU64,
    pub(crate) signals: AtomicU64,
}

/// The minimal user-space consumer: eventfd → epoll → one volatile store into the BAR.
pub(crate) struct Bare {
    stop: OwnedFd,
    thread: JoinHandle<()>,
}

/// The epoll token of the consumer's own stop eventfd.
const TOKEN_STOP: u64 = u64::MAX;

impl Bare {
    pub(crate) fn start(
        efds: &[OwnedFd],
        bar: Arc<GuestMemory>,
        spin: bool,
        counters: Arc<BareCounters>,
    ) -> Result<Bare, Errno> {
        let ep = sys::epoll_create()?;
        let stop = sys::eventfd(0, sys::EFD_NONBLOCK | sys::EFD_CLOEXEC)?;
        sys::epoll_add(ep.as_raw_fd(), stop.as_raw_fd(), sys::EPOLLIN, TOKEN_STOP)?;
        let fds: Vec<RawFd> = efds.iter().map(AsRawFd::as_raw_fd).collect();
        for (i, &fd) in fds.iter().enumerate() {
            sys::epoll_add(ep.as_raw_fd(), fd, sys::EPOLLIN, i as u64)?;
        }
        let timeout = if spin { 0 } else { -1 };
        let thread = std::thread::Builder::new()
            .name("bare-consumer".into())
            .spawn(move || {
                let mut events = [EpollEvent::default(); 16];
                loop {
                    let n = match sys::epoll_wait(ep.as_raw_fd(), &mut events, timeout) {
                        Ok(n) => n,
                        Err(Errno::EINTR) => continue,
                        Err(_) => return,
                    };
                    for ev in &events[..n] {
                        let t = ev.token();
                        if t == TOKEN_STOP {
                            return;
                        }
                        let d = &DOORBELLS[t as usize];
                        if let Ok(v) = sys::read_counter_nonblocking(fds[t as usize]) {
                            let _ = bar.store(d.bar_offset() as usize, d.width as usize, d.value);
                            counters.writes.fetch_add(1, Ordering::Relaxed);
                            counters.signals.fetch_add(v, Ordering::Relaxed);
                        }
                    }
                }
            })
            .map_err(|e| Errno::from_io(&e))?;
        Ok(Bare { stop, thread })
    }

    pub(crate) fn stop(self) {
        let _ = sys::write_u64(self.stop.as_raw_fd(), 1);
        let _ = self.thread.join();
    }
}
