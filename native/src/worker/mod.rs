//! One epoll loop per worker thread. The worker alone owns its registrations; control
//! operations (batches of watch / attach / detach, stop) reach it through a queue plus a
//! control eventfd, and are processed only between two batches of epoll events. So when a
//! removal is acknowledged, no write for it is in flight and none can happen again.
//!
//! One epoll entry per eventfd: several registrations on the same eventfd (the kernel
//! allows that — each of its virqfds gets the wake-up) are the targets of one entry, all
//! written, in registration order, on each wake-up.
//!
//! The control channel is in `control.rs`, the epoll user data (slot tokens) in
//! `slot_token.rs`.
//!
//! Files: this one (the loop and the hot path), `shared.rs` (what the engine shares with
//! the thread), `ops.rs` (applying control batches).

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

mod ops;
mod shared;

pub(crate) use crate::control::{BatchResult, ControlOp, Op, Target, WatchedRef};
pub(crate) use shared::WorkerShared;

use crate::slot_token::{self, TOKEN_CANARY, TOKEN_CONTROL};
use crate::sys::{self, EpollEvent, Errno, SysResult};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Events fetched per `epoll_wait`.
const BATCH: usize = 64;
/// How a worker waits for events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// `epoll_wait(-1)`.
    Blocking,
    /// `epoll_wait(0)` in a loop.
    Busy,
    /// After activity, spin with `epoll_wait(0)` for the budget, then block.
    Adaptive,
}

impl PollMode {
    /// 0 blocking, 1 busy, 2 adaptive.
    pub(crate) fn from_u32(v: u32) -> Option<PollMode> {
        match v {
            0 => Some(PollMode::Blocking),
            1 => Some(PollMode::Busy),
            2 => Some(PollMode::Adaptive),
            _ => None,
        }
    }

    /// The ABI number of the mode.
    pub fn as_u32(self) -> u32 {
        match self {
            PollMode::Blocking => 0,
            PollMode::Busy => 1,
            PollMode::Adaptive => 2,
        }
    }
}

/// A watched eventfd: one epoll entry, and the writes its wake-ups perform, in
/// registration order.
struct WatchedEventfd {
    efd: OwnedFd,
    /// The VMM opened it non-blocking: a plain read is safe and ~60 ns cheaper than
    /// `RWF_NOWAIT` (the flag is the VMM's; the engine never changes it).
    nonblocking: bool,
    targets: Vec<Target>,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    watched: Option<WatchedEventfd>,
}

struct Worker {
    epfd: OwnedFd,
    shared: Arc<WorkerShared>,
    mode: PollMode,
    spin: Duration,
    slots: Vec<Slot>,
    free: Vec<u32>,
}

/// Marks a thread not running when it ends, however it ends.
pub(crate) struct RunningGuard<'a>(pub(crate) &'a AtomicBool);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Sets up the worker's epoll set and starts its thread, pinned to `cpu` when given (the
/// thread pins itself before it serves anything; its refusal is returned here).
pub(crate) fn spawn(
    name: String,
    shared: Arc<WorkerShared>,
    mode: PollMode,
    spin_budget_us: u32,
    cpu: Option<u32>,
) -> SysResult<JoinHandle<()>> {
    let epfd = sys::epoll_create()?;
    sys::epoll_add(
        epfd.as_raw_fd(),
        shared.control_efd.as_raw_fd(),
        sys::EPOLLIN,
        TOKEN_CONTROL,
    )?;
    sys::epoll_add(
        epfd.as_raw_fd(),
        shared.canary.efd.as_raw_fd(),
        sys::EPOLLIN,
        TOKEN_CANARY,
    )?;
    shared.running.store(true, Ordering::Release);
    let mut worker = Worker {
        epfd,
        shared: shared.clone(),
        mode,
        spin: Duration::from_micros(u64::from(spin_budget_us)),
        slots: Vec::new(),
        free: Vec::new(),
    };
    let (ready_tx, ready_rx) = sync_channel::<SysResult<()>>(1);
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let pinned = cpu.map_or(Ok(()), |c| sys::pin_current_thread(&[c]));
            let ok = pinned.is_ok();
            let _ = ready_tx.send(pinned);
            if ok {
                worker.run();
            } else {
                worker.shared.running.store(false, Ordering::Release);
            }
        })
        .map_err(|e| {
            shared.running.store(false, Ordering::Release);
            Errno::from_io(&e)
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(Errno::EIO)
        }
    }
}

impl Worker {
    fn run(&mut self) {
        let shared = self.shared.clone();
        let _running = RunningGuard(&shared.running);
        let mut events = [EpollEvent::default(); BATCH];
        let mut spin_until: Option<Instant> = None;
        loop {
            let timeout = match self.mode {
                PollMode::Blocking => -1,
                PollMode::Busy => 0,
                PollMode::Adaptive => match spin_until {
                    Some(t) if Instant::now() < t => 0,
                    _ => -1,
                },
            };
            let n = match sys::epoll_wait(self.epfd.as_raw_fd(), &mut events, timeout) {
                Ok(0) => continue,
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            };
            let wake = Instant::now();
            shared.stats.wakeup();
            let mut control = false;
            let mut writes = 0u64;
            // One coarse timestamp per batch for "last trigger": precise clock reads per
            // write cost ~20% of the throughput on this VM.
            let unix_ns = sys::realtime_coarse_ns();
            for ev in &events[..n] {
                match ev.token() {
                    TOKEN_CONTROL => control = true,
                    TOKEN_CANARY => self.serve_canary(),
                    t => writes += self.serve(t, unix_ns),
                }
            }
            if writes > 0 {
                // Service time: wake-up → the batch's last write done, once per write.
                let ns = wake.elapsed().as_nanos() as u64;
                shared.stats.service.record_n(ns, writes);
            }
            let mut active = writes > 0;
            if control {
                active = true;
                if self.process_control() {
                    return;
                }
            }
            if active && self.mode == PollMode::Adaptive {
                spin_until = Some(Instant::now() + self.spin);
            }
        }
    }

    /// Serves one watched eventfd: read the counter once (`RWF_NOWAIT` unless the VMM made
    /// it non-blocking), then every target in registration order: one store and its
    /// counters each. Returns the number of writes performed.
    #[inline]
    fn serve(&self, token: u64, unix_ns: u64) -> u64 {
        let (index, generation) = (slot_token::index(token), slot_token::generation(token));
        let Some(slot) = self.slots.get(index) else {
            return 0;
        };
        if slot.generation != generation {
            return 0;
        }
        let Some(src) = &slot.watched else { return 0 };
        let read = if src.nonblocking {
            sys::read_counter_nonblocking(src.efd.as_raw_fd())
        } else {
            sys::read_counter(src.efd.as_raw_fd())
        };
        let signals = match read {
            Ok(v) => v,
            // EAGAIN: spurious (another reader, e.g. the VMM, consumed it first).
            Err(_) => return 0,
        };
        for t in &src.targets {
            t.cell.store(t.data);
            t.stats.record(signals, unix_ns);
        }
        src.targets.len() as u64
    }

    fn serve_canary(&self) {
        let c = &self.shared.canary;
        let _ = sys::read_u64(c.efd.as_raw_fd());
        let sent = c.sent_ns.swap(0, Ordering::AcqRel);
        if sent != 0 {
            let now = sys::monotonic_ns();
            self.shared.stats.dispatch.record(now.saturating_sub(sent));
        }
    }
}
