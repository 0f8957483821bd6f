//! The engine: worker threads, the monitor thread, the registration table and the control
//! path (register / unregister / close). Control operations are serialised by one mutex
//! and handed to the owning worker through its control channel; the caller waits for the
//! worker's acknowledgement, which makes `unregister` a barrier.

use crate::bar::{BarTable, Mapping};
use crate::mmio::MmioCell;
use crate::monitor::{self, Event, Monitor};
use crate::source;
use crate::stats::{RegStats, WORKER_U64S};
use crate::sys::{self, Errno, SysResult};
use crate::worker::{self, ControlOp, NewRegistration, PollMode, WorkerShared};
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Upper bound on `workers` (far beyond any sensible value).
pub const MAX_WORKERS: u32 = 256;

/// Engine parameters (see `ioeventd_engine_open`).
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub workers: u32,
    pub canary_period_us: u32,
    pub poll_mode: PollMode,
    pub spin_budget_us: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 1,
            canary_period_us: 0,
            poll_mode: PollMode::Blocking,
            spin_budget_us: 0,
        }
    }
}

/// What `register` needs.
#[derive(Debug, Clone, Copy)]
pub struct RegisterRequest<'a> {
    pub bar_path: &'a Path,
    pub offset: u64,
    pub width: u32,
    pub data: u64,
    /// Eventfd; owned by the engine only once `register` succeeds.
    pub efd: RawFd,
    /// Source process to watch (0 = none).
    pub pid: i32,
    /// Its expected start time (0 = don't check).
    pub pid_start: u64,
}

struct RegInfo {
    worker: usize,
    token: u64,
    bar: Arc<Mapping>,
    efd: RawFd,
    /// Watched source process `(pid, start)`, if any.
    source: Option<(i32, u64)>,
    stats: Arc<RegStats>,
}

struct WorkerHandle {
    shared: Arc<WorkerShared>,
    thread: Option<JoinHandle<()>>,
}

struct State {
    closed: bool,
    workers: Vec<WorkerHandle>,
    monitor_thread: Option<JoinHandle<()>>,
    regs: HashMap<u64, RegInfo>,
    next_id: u64,
    next_worker: usize,
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
    /// Starts `config.workers` (0 ⇒ 1) workers and the monitor thread.
    pub fn open(config: Config) -> SysResult<Engine> {
        let mut config = config;
        config.workers = config.workers.max(1);
        if config.workers > MAX_WORKERS {
            return Err(Errno::EINVAL);
        }
        let _ = sys::raise_nofile_limit();
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let mut shareds = Vec::new();
        for _ in 0..config.workers {
            shareds.push(Arc::new(WorkerShared::new()?));
        }
        let monitor = Arc::new(Monitor::new(shareds.clone(), config.canary_period_us)?);
        let mut state = State {
            closed: false,
            workers: Vec::new(),
            monitor_thread: None,
            regs: HashMap::new(),
            next_id: 1,
            next_worker: 0,
        };
        let mut failure = None;
        for (i, shared) in shareds.into_iter().enumerate() {
            let name = format!("iov{serial}w{i}");
            match worker::spawn(
                name,
                shared.clone(),
                config.poll_mode,
                config.spin_budget_us,
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
            return Err(e);
        }
        Ok(engine)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open_state(&self) -> SysResult<MutexGuard<'_, State>> {
        let g = self.lock();
        if g.closed {
            Err(Errno::EBADF)
        } else {
            Ok(g)
        }
    }

    /// Process-unique serial number (thread names are `iov<serial>w<i>`, `iov<serial>mon`).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Arms a write; returns the registration id. See the ABI table for the errors.
    pub fn register(&self, req: &RegisterRequest<'_>) -> SysResult<u64> {
        let width = crate::mmio::Width::from_bytes(req.width)?;
        if !req.offset.is_multiple_of(width.bytes()) {
            return Err(Errno::EINVAL);
        }
        if req.efd < 0 {
            return Err(Errno::EBADF);
        }
        let mut st = self.open_state()?;
        sys::fstat(req.efd)?;
        if !source::is_eventfd(req.efd) {
            return Err(Errno::EMEDIUMTYPE);
        }
        // The same descriptor twice would be closed twice.
        if st.regs.values().any(|r| r.efd == req.efd) {
            return Err(Errno::EEXIST);
        }
        let bar = self.bars.acquire(req.bar_path)?;
        // Everything taken so far is given back by `undo` on any later failure.
        let mut source: Option<(i32, u64)> = None;
        let undo = |source: Option<(i32, u64)>, e: Errno| {
            self.bars.release(&bar);
            if let Some((pid, start)) = source {
                self.monitor.unwatch(pid, start);
            }
            Err(e)
        };
        let cell = match MmioCell::new(bar.clone(), req.offset, req.width) {
            Ok(c) => c,
            Err(e) => return undo(source, e),
        };
        if req.pid > 0 {
            match self.monitor.watch(req.pid, req.pid_start) {
                Ok(start) => source = Some((req.pid, start)),
                Err(e) => return undo(source, e),
            }
        }
        if let Err(e) = sys::set_nonblocking(req.efd).and_then(|_| sys::set_cloexec(req.efd)) {
            return undo(source, e);
        }
        let worker = st.next_worker % st.workers.len();
        let stats = Arc::new(RegStats::default());
        let new = NewRegistration {
            efd: req.efd,
            cell,
            data: req.data,
            stats: stats.clone(),
        };
        let shared = st.workers[worker].shared.clone();
        let token = match shared.call(|reply| ControlOp::Add(new, reply)) {
            Ok(t) => t,
            Err(e) => return undo(source, e),
        };
        st.next_worker = st.next_worker.wrapping_add(1);
        let id = st.next_id;
        st.next_id += 1;
        let info = RegInfo {
            worker,
            token,
            bar: bar.clone(),
            efd: req.efd,
            source,
            stats,
        };
        st.regs.insert(id, info);
        Ok(id)
    }

    /// Barrier: disarms `id`, closes its eventfd, releases its BAR. `ENOENT` if unknown.
    pub fn unregister(&self, id: u64) -> SysResult<()> {
        let mut st = self.open_state()?;
        let info = st.regs.remove(&id).ok_or(Errno::ENOENT)?;
        let shared = st.workers[info.worker].shared.clone();
        let res = shared.call(|reply| ControlOp::Remove(info.token, reply));
        self.bars.release(&info.bar);
        if let Some((pid, start)) = info.source {
            self.monitor.unwatch(pid, start);
        }
        res
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
        st.workers.clear();
        self.bars.clear();
        self.monitor.clear();
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// `[id, triggers, signals, last_trigger_unix_ns]` per registration, by id.
    pub fn registration_stats(&self) -> SysResult<Vec<[u64; 4]>> {
        let st = self.open_state()?;
        let mut v: Vec<[u64; 4]> = st
            .regs
            .iter()
            .map(|(id, r)| {
                let [t, s, l] = r.stats.snapshot();
                [*id, t, s, l]
            })
            .collect();
        v.sort_unstable_by_key(|r| r[0]);
        Ok(v)
    }

    /// The `stats_workers` layout, all workers in order.
    pub fn worker_stats(&self) -> SysResult<Vec<u64>> {
        let st = self.open_state()?;
        let mut v = Vec::with_capacity(st.workers.len() * WORKER_U64S);
        for w in &st.workers {
            w.shared.stats.snapshot_into(&mut v);
        }
        Ok(v)
    }

    /// `[workers, registrations, bar_mappings, watched_pids, poll_mode, canary_period_us,
    /// alive]`.
    pub fn info(&self) -> SysResult<[u64; 7]> {
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
        ])
    }

    /// Waits up to `timeout_ms` (negative: forever) for events. `EBADF` after close.
    pub fn events_wait(&self, out: &mut [Event], timeout_ms: i32) -> SysResult<usize> {
        self.monitor.events.wait(out, timeout_ms)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.close();
    }
}
