//! The engine: worker threads, the monitor thread, the registration table and the control
//! path. Control operations are serialised by one mutex and handed to the owning worker
//! through its control channel, one batch per worker per call; the caller waits for the
//! worker's acknowledgement, which makes `unregister` a barrier.
//!
//! Registrations are grouped by their eventfd (its [`table::EventfdKey`]): one
//! [`WatchedEventfd`](crate::worker) epoll entry per eventfd on one worker, every
//! registration of it a write performed on each wake-up — as the kernel does, where each
//! virqfd on an eventfd gets the wake-up. The first descriptor handed over for an eventfd
//! is the one watched; later duplicates of it are closed once their registration succeeds.
//!
//! Files: [`request`] (what a registration asks for), [`backend`] (the backends and the
//! VFIO policy), [`table`] (the registration table), [`register`], [`msix_guard`] (the
//! MSI-X rule, from the device's own config space), [`unregister`], [`error`] (the
//! engine's error types), [`succession`] (what a hand-over between agents needs).

pub(crate) mod backend;
pub mod error;
mod msix_guard;
mod register;
pub(crate) mod request;
mod succession;
mod table;
mod unregister;

pub use backend::{Backend, VfioMode};
pub use error::{EngineError, RegisterError};
pub use request::{Bar, RegisterRequest};
pub use succession::Adoption;

use crate::abi_layout as layout;
use crate::bar::BarTable;
use crate::monitor::{self, Event, Monitor};
use crate::stats::{Counters, WORKER_U64S};
use crate::sys;
use crate::worker::{self, ControlOp, PollMode, WorkerShared};
use error::Closed;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use table::{State, WorkerHandle};

/// Upper bound on `workers` (far beyond any sensible value).
pub(crate) const MAX_WORKERS: u32 = 256;

/// Registrations per `register_batch` call at most.
pub(crate) const MAX_BATCH: usize = 65_536;

/// How a new eventfd picks its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShardMode {
    /// One after the other.
    #[default]
    RoundRobin,
    /// By the device of its (first) registration's BAR: `device_hash % workers`, so that
    /// one device's writes stay on one worker (one core when pinned), in order.
    Device,
}

impl ShardMode {
    /// 0 round-robin, 1 device.
    pub(crate) fn from_u32(v: u32) -> Option<ShardMode> {
        match v {
            0 => Some(ShardMode::RoundRobin),
            1 => Some(ShardMode::Device),
            _ => None,
        }
    }

    /// The ABI number of the mode.
    pub(crate) fn as_u32(self) -> u32 {
        match self {
            ShardMode::RoundRobin => 0,
            ShardMode::Device => 1,
        }
    }
}

/// One registration's counters, as `ioeventd_stats_registrations` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationStats {
    /// The registration id.
    pub id: u64,
    /// Its counters.
    pub counters: Counters,
}

impl RegistrationStats {
    /// The words of the `stats` record, in order.
    pub fn as_words(&self) -> [u64; layout::stats::LEN] {
        let mut w = [0u64; layout::stats::LEN];
        w[layout::stats::ID] = self.id;
        w[layout::stats::TRIGGERS..].copy_from_slice(&self.counters.as_words());
        w
    }
}

/// Engine parameters (see `ioeventd_engine_open`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Worker threads (0 ⇒ 1, at most [`MAX_WORKERS`]).
    pub workers: u32,
    /// Canary period in µs (0: no canary).
    pub canary_period_us: u32,
    /// How workers wait for events.
    pub poll_mode: PollMode,
    /// Adaptive mode: how long a worker spins after activity.
    pub spin_budget_us: u32,
    /// How a new eventfd picks its worker.
    pub shard: ShardMode,
    /// Worker `i` is pinned to `cpus[i % len]`; empty: not pinned.
    pub cpus: Vec<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 1,
            canary_period_us: 0,
            poll_mode: PollMode::Blocking,
            spin_budget_us: 0,
            shard: ShardMode::RoundRobin,
            cpus: Vec::new(),
        }
    }
}

/// A running engine.
pub struct Engine {
    serial: u64,
    config: Config,
    state: Mutex<State>,
    bars: BarTable,
    monitor: Arc<Monitor>,
}

static SERIAL: AtomicU64 = AtomicU64::new(1);

impl Engine {
    /// Starts `config.workers` (0 ⇒ 1) workers and the monitor thread. `EINVAL` for more
    /// than [`MAX_WORKERS`] workers, more than [`sys::CPU_SETSIZE`] CPUs or a CPU id
    /// beyond it ([`EngineError::InvalidConfig`]); a pinning refusal (`sched_setaffinity`)
    /// is returned as is.
    pub fn open(config: Config) -> Result<Engine, EngineError> {
        let mut config = config;
        config.workers = config.workers.max(1);
        if config.workers > MAX_WORKERS
            || config.cpus.len() > sys::CPU_SETSIZE
            || config.cpus.iter().any(|&c| c as usize >= sys::CPU_SETSIZE)
        {
            return Err(EngineError::InvalidConfig);
        }
        let _ = sys::raise_nofile_limit();
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let mut shareds = Vec::new();
        for _ in 0..config.workers {
            shareds.push(Arc::new(WorkerShared::new()?));
        }
        let monitor = Arc::new(Monitor::new(shareds.clone(), config.canary_period_us)?);
        let mut state = State::new();
        let mut failure = None;
        for (i, shared) in shareds.into_iter().enumerate() {
            let name = format!("iov{serial}w{i}");
            let cpu = (!config.cpus.is_empty()).then(|| config.cpus[i % config.cpus.len()]);
            match worker::spawn(
                name,
                shared.clone(),
                config.poll_mode,
                config.spin_budget_us,
                cpu,
            ) {
                Ok(t) => state.workers.push(WorkerHandle {
                    shared,
                    thread: Some(t),
                }),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_none() {
            match monitor::spawn(format!("iov{serial}mon"), monitor.clone()) {
                Ok(t) => state.monitor_thread = Some(t),
                Err(e) => failure = Some(e),
            }
        }
        let engine = Engine {
            serial,
            config,
            state: Mutex::new(state),
            bars: BarTable::default(),
            monitor,
        };
        if let Some(e) = failure {
            engine.close();
            return Err(EngineError::Sys(e));
        }
        Ok(engine)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open_state(&self) -> Result<MutexGuard<'_, State>, Closed> {
        let g = self.lock();
        if g.closed {
            Err(Closed)
        } else {
            Ok(g)
        }
    }

    /// Process-unique serial number (thread names are `iov<serial>w<i>`, `iov<serial>mon`).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Stops everything: workers (dropping their registrations: eventfds closed, BAR
    /// references dropped), the monitor, the tables. Idempotent. Wakes `events_wait`.
    pub fn close(&self) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        self.monitor.events.close();
        for w in &st.workers {
            let _ = w.shared.send(ControlOp::Stop);
        }
        for w in &mut st.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
        self.monitor.stop();
        if let Some(t) = st.monitor_thread.take() {
            let _ = t.join();
        }
        st.regs.clear();
        st.watched.clear();
        st.kernel_served.clear();
        st.held.clear();
        st.workers.clear();
        self.bars.clear();
        self.monitor.clear();
    }

    /// Every registration's counters now, sorted by id.
    pub fn registration_stats(&self) -> Result<Vec<RegistrationStats>, EngineError> {
        let st = self.open_state()?;
        let mut v: Vec<RegistrationStats> = st
            .regs
            .iter()
            .map(|(&id, r)| RegistrationStats {
                id,
                counters: r.stats.snapshot(),
            })
            .collect();
        v.sort_unstable_by_key(|r| r.id);
        Ok(v)
    }

    /// The counters of just `ids`, in their order; `None` for an id not registered. What one
    /// GetIoeventfd or one page of ListIoeventfds needs, without a snapshot of every
    /// registration.
    pub fn registration_stats_of(
        &self,
        ids: impl Iterator<Item = u64>,
    ) -> Result<Vec<Option<RegistrationStats>>, EngineError> {
        let st = self.open_state()?;
        Ok(ids
            .map(|id| {
                st.regs.get(&id).map(|r| RegistrationStats {
                    id,
                    counters: r.stats.snapshot(),
                })
            })
            .collect())
    }

    /// The `stats_workers` layout, all workers in order.
    pub fn worker_stats(&self) -> Result<Vec<u64>, EngineError> {
        let st = self.open_state()?;
        let mut v = Vec::with_capacity(st.workers.len() * WORKER_U64S);
        for w in &st.workers {
            w.shared.stats.snapshot_into(&mut v);
        }
        Ok(v)
    }

    /// `[workers, registrations, bar_mappings, watched_pids, poll_mode, canary_period_us,
    /// alive, shard, pinned_cpus, watched_eventfds, read_fallback]`.
    pub fn info(&self) -> Result<[u64; INFO_U64S], EngineError> {
        let st = self.open_state()?;
        let alive = st
            .workers
            .iter()
            .all(|w| w.shared.running.load(Ordering::Acquire))
            && self.monitor.running.load(Ordering::Acquire);
        Ok([
            st.workers.len() as u64,
            st.regs.len() as u64,
            self.bars.len() as u64,
            self.monitor.watched() as u64,
            u64::from(self.config.poll_mode.as_u32()),
            u64::from(self.config.canary_period_us),
            u64::from(alive),
            u64::from(self.config.shard.as_u32()),
            self.config.cpus.len() as u64,
            st.watched.len() as u64,
            u64::from(sys::nowait_unsupported()),
        ])
    }

    /// Waits up to `timeout_ms` (negative: forever) for events; [`EngineError::Closed`]
    /// after close.
    pub fn events_wait(&self, out: &mut [Event], timeout_ms: i32) -> Result<usize, EngineError> {
        Ok(self.monitor.events.wait(out, timeout_ms)?)
    }
}

/// Values in `info` (`ioeventd_engine_info`).
pub(crate) const INFO_U64S: usize = crate::abi_layout::info::LEN;

impl Drop for Engine {
    fn drop(&mut self) {
        self.close();
    }
}
