//! One epoll loop per worker thread. The worker alone owns its registrations; control
//! operations (add, remove, stop) reach it through a queue plus a control eventfd, and are
//! processed only between two batches of epoll events. So when a removal is acknowledged,
//! no write for it is in flight and none can happen again.
//!
//! epoll user data = `generation << 32 | slot index`; a slot's generation changes when it
//! is freed, so a stale token can never reach a recycled slot.

use crate::mmio::MmioCell;
use crate::stats::{RegStats, WorkerStats};
use crate::sys::{self, EpollEvent, Errno, SysResult};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Events fetched per `epoll_wait`.
const BATCH: usize = 64;
/// Token of the control eventfd.
const TOKEN_CONTROL: u64 = u64::MAX;
/// Token of the canary eventfd.
const TOKEN_CANARY: u64 = u64::MAX - 1;
/// Slot indexes stay below this so tokens never collide with the reserved ones.
const MAX_SLOTS: usize = 0xFFFF_0000;

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
    pub fn from_u32(v: u32) -> Option<PollMode> {
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

/// A registration handed to a worker.
pub(crate) struct NewRegistration {
    /// Raw descriptor; the worker takes ownership only once it is in its epoll set.
    pub efd: RawFd,
    pub cell: MmioCell,
    pub data: u64,
    pub stats: Arc<RegStats>,
}

/// Control operations, processed by the worker between batches.
pub(crate) enum ControlOp {
    /// Arm a registration; replies with its token.
    Add(NewRegistration, SyncSender<SysResult<u64>>),
    /// Disarm, close the eventfd, drop the BAR reference; replies once done.
    Remove(u64, SyncSender<SysResult<()>>),
    /// Leave the loop (dropping every registration).
    Stop,
}

/// The dispatch-latency probe of one worker.
pub(crate) struct Canary {
    pub efd: OwnedFd,
    /// CLOCK_MONOTONIC ns of the outstanding signal, 0 when none.
    pub sent_ns: AtomicU64,
}

/// State shared between a worker thread and the engine.
pub(crate) struct WorkerShared {
    queue: Mutex<VecDeque<ControlOp>>,
    control_efd: OwnedFd,
    pub canary: Canary,
    pub stats: WorkerStats,
    pub running: AtomicBool,
}

impl WorkerShared {
    pub fn new() -> SysResult<WorkerShared> {
        Ok(WorkerShared {
            queue: Mutex::new(VecDeque::new()),
            control_efd: sys::eventfd(0, sys::EFD_NONBLOCK | sys::EFD_CLOEXEC)?,
            canary: Canary {
                efd: sys::eventfd(0, sys::EFD_NONBLOCK | sys::EFD_CLOEXEC)?,
                sent_ns: AtomicU64::new(0),
            },
            stats: WorkerStats::default(),
            running: AtomicBool::new(false),
        })
    }

    /// Queues an operation and wakes the worker.
    pub fn send(&self, op: ControlOp) -> SysResult<()> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(op);
        sys::write_u64(self.control_efd.as_raw_fd(), 1)
    }

    /// Queues an operation and waits for the worker's reply. `EBADF` when the worker is
    /// gone (the reply channel was dropped unanswered).
    pub fn call<T>(
        &self,
        make: impl FnOnce(SyncSender<SysResult<T>>) -> ControlOp,
    ) -> SysResult<T> {
        let (tx, rx): (_, Receiver<SysResult<T>>) = sync_channel(1);
        if !self.running.load(Ordering::Acquire) {
            return Err(Errno::EBADF);
        }
        self.send(make(tx))?;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => return r,
                Err(RecvTimeoutError::Disconnected) => return Err(Errno::EBADF),
                // A worker that died never answers; its queued op is simply left behind.
                Err(RecvTimeoutError::Timeout) if !self.running.load(Ordering::Acquire) => {
                    return Err(Errno::EBADF)
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn pop(&self) -> Option<ControlOp> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

struct Registration {
    efd: OwnedFd,
    cell: MmioCell,
    data: u64,
    stats: Arc<RegStats>,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    reg: Option<Registration>,
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

/// Sets up the worker's epoll set and starts its thread.
pub(crate) fn spawn(
    name: String,
    shared: Arc<WorkerShared>,
    mode: PollMode,
    spin_budget_us: u32,
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
    std::thread::Builder::new()
        .name(name)
        .spawn(move || worker.run())
        .map_err(|e| {
            shared.running.store(false, Ordering::Release);
            Errno::from_io(&e)
        })
}

#[inline]
fn token(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
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
            let mut active = false;
            let mut unix_ns = 0u64;
            for ev in &events[..n] {
                match ev.token() {
                    TOKEN_CONTROL => control = true,
                    TOKEN_CANARY => self.serve_canary(),
                    t => {
                        active |= self.serve(t, wake, &mut unix_ns);
                    }
                }
            }
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

    /// Serves one registration event: read the counter, one store, counters. Returns
    /// whether a write happened.
    #[inline]
    fn serve(&self, token: u64, wake: Instant, unix_ns: &mut u64) -> bool {
        let index = (token & 0xFFFF_FFFF) as usize;
        let generation = (token >> 32) as u32;
        let Some(slot) = self.slots.get(index) else {
            return false;
        };
        if slot.generation != generation {
            return false;
        }
        let Some(reg) = &slot.reg else { return false };
        let signals = match sys::read_u64(reg.efd.as_raw_fd()) {
            Ok(v) => v,
            // EAGAIN: spurious (someone else consumed it); nothing else can fail here.
            Err(_) => return false,
        };
        reg.cell.store(reg.data);
        let done = Instant::now();
        if *unix_ns == 0 {
            *unix_ns = unix_now_ns();
        }
        reg.stats.record(signals, *unix_ns);
        self.shared
            .stats
            .service
            .record(done.duration_since(wake).as_nanos() as u64);
        true
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

    /// Processes every queued control operation; true when asked to stop.
    fn process_control(&mut self) -> bool {
        // Drain the eventfd first: an op queued after this read comes with a new signal.
        let _ = sys::read_u64(self.shared.control_efd.as_raw_fd());
        while let Some(op) = self.shared.pop() {
            match op {
                ControlOp::Add(reg, reply) => {
                    let _ = reply.send(self.add(reg));
                }
                ControlOp::Remove(token, reply) => {
                    let _ = reply.send(self.remove(token));
                }
                ControlOp::Stop => return true,
            }
        }
        false
    }

    fn add(&mut self, new: NewRegistration) -> SysResult<u64> {
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None if self.slots.len() < MAX_SLOTS => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
            None => return Err(Errno::ENOMEM),
        };
        let slot = &mut self.slots[index];
        let t = token(index as u32, slot.generation);
        // Level-triggered: a counter that is already non-zero is served at once.
        if let Err(e) = sys::epoll_add(self.epfd.as_raw_fd(), new.efd, sys::EPOLLIN, t) {
            self.free.push(index as u32);
            return Err(e);
        }
        slot.reg = Some(Registration {
            efd: sys::own_fd(new.efd),
            cell: new.cell,
            data: new.data,
            stats: new.stats,
        });
        Ok(t)
    }

    fn remove(&mut self, token: u64) -> SysResult<()> {
        let index = (token & 0xFFFF_FFFF) as usize;
        let generation = (token >> 32) as u32;
        let slot = match self.slots.get_mut(index) {
            Some(s) if s.generation == generation && s.reg.is_some() => s,
            _ => return Err(Errno::ENOENT),
        };
        let reg = slot.reg.take().ok_or(Errno::ENOENT)?;
        let _ = sys::epoll_del(self.epfd.as_raw_fd(), reg.efd.as_raw_fd());
        // Closes the eventfd and drops this worker's reference to the BAR.
        drop(reg);
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index as u32);
        Ok(())
    }
}
