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
use crate::vfio::{self, KernelIoeventfd};
use crate::worker::{self, ControlOp, NewRegistration, PollMode, WorkerShared};
use std::collections::HashMap;
use std::os::fd::{IntoRawFd, RawFd};
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

/// Which backend serves a registration (`ioeventd_registration_backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The engine writes through an mmap of a `resourceN` file.
    UserMmap = 1,
    /// The engine writes through an mmap of a VFIO device's BAR region.
    VfioMmap = 2,
    /// The kernel writes (`VFIO_DEVICE_IOEVENTFD`); no user-space hop, no counters.
    Kernel = 3,
}

/// Backend selection for a VFIO registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VfioMode {
    /// The kernel, falling back to `VfioMmap` where the kernel refuses for a reason the
    /// user-space engine does not share (see `Engine::register_vfio`).
    Auto,
    /// `VfioMmap` only.
    UserSpace,
    /// The kernel only: its refusal is returned as is.
    KernelOnly,
}

impl VfioMode {
    /// 0 auto, 2 user space (vfio-mmap), 3 kernel only — the backend codes.
    pub fn from_u32(v: u32) -> Option<VfioMode> {
        match v {
            0 => Some(VfioMode::Auto),
            2 => Some(VfioMode::UserSpace),
            3 => Some(VfioMode::KernelOnly),
            _ => None,
        }
    }
}

/// What `register_vfio` needs.
#[derive(Debug, Clone, Copy)]
pub struct VfioRegisterRequest {
    /// A VFIO device descriptor of this process (not taken over; duplicated as needed).
    pub device: RawFd,
    /// BAR region index, 0..=5.
    pub region: u32,
    pub offset: u64,
    pub width: u32,
    pub data: u64,
    /// Eventfd; owned by the engine only once `register_vfio` succeeds.
    pub efd: RawFd,
    pub pid: i32,
    pub pid_start: u64,
    pub mode: VfioMode,
}

enum Served {
    /// An engine worker writes through `bar`.
    User {
        worker: usize,
        token: u64,
        bar: Arc<Mapping>,
    },
    /// The kernel writes; dropping the value de-assigns it and closes the eventfd.
    Kernel(KernelIoeventfd),
}

struct RegInfo {
    served: Served,
    backend: Backend,
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

/// The per-request values every backend uses.
struct Common {
    offset: u64,
    width: u32,
    data: u64,
    efd: RawFd,
    pid: i32,
    pid_start: u64,
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
        let mut st = self.precheck(req.offset, req.width, req.efd)?;
        let bar = self.bars.acquire(req.bar_path)?;
        let common = Common {
            offset: req.offset,
            width: req.width,
            data: req.data,
            efd: req.efd,
            pid: req.pid,
            pid_start: req.pid_start,
        };
        self.arm_user(&mut st, bar, &common, Backend::UserMmap)
    }

    /// Arms a write on BAR `req.region` of a VFIO device. The same checks as `register`
    /// come first (width, alignment, eventfd, bounds against the region's size: `ERANGE`),
    /// so every backend accepts the same requests. Then, by mode:
    /// - `UserSpace`: the engine writes through an mmap of the region (`VfioMmap`).
    /// - `KernelOnly`: `VFIO_DEVICE_IOEVENTFD`; the kernel's refusal is returned as is.
    /// - `Auto`: the kernel first; `EEXIST` (that exact key is already in the kernel) is
    ///   returned; `ENOSPC` (1000 per device), `ENOTTY`/`EOPNOTSUPP`/`ENOSYS` (no support)
    ///   and an `EINVAL` for an 8-byte write whose position the kernel accepts at 4 bytes
    ///   (its width rule) fall back to `VfioMmap`; any other refusal (the MSI-X table) is
    ///   returned, never routed around.
    pub fn register_vfio(&self, req: &VfioRegisterRequest) -> SysResult<u64> {
        let mut st = self.precheck(req.offset, req.width, req.efd)?;
        vfio::check_device(req.device).map_err(|e| match e {
            Errno::EMEDIUMTYPE => Errno::ENODEV,
            e => e,
        })?;
        let region = vfio::bar_region(req.device, req.region)?;
        match req.offset.checked_add(u64::from(req.width)) {
            Some(end) if end <= region.size => {}
            _ => return Err(Errno::ERANGE),
        }
        let common = Common {
            offset: req.offset,
            width: req.width,
            data: req.data,
            efd: req.efd,
            pid: req.pid,
            pid_start: req.pid_start,
        };
        if req.mode != VfioMode::UserSpace {
            match self.arm_kernel(&mut st, req, &region, &common) {
                Ok(id) => return Ok(id),
                Err(e) if req.mode == VfioMode::KernelOnly => return Err(e),
                Err(e) if !Self::may_fall_back(e, req, &region) => return Err(e),
                Err(_) => {}
            }
        }
        let bar = self.bars.acquire_vfio(req.device, req.region)?;
        self.arm_user(&mut st, bar, &common, Backend::VfioMmap)
    }

    fn may_fall_back(e: Errno, req: &VfioRegisterRequest, region: &sys::VfioRegionInfo) -> bool {
        match e {
            Errno::ENOSPC | Errno::ENOTTY | Errno::EOPNOTSUPP | Errno::ENOSYS => true,
            Errno::EINVAL if req.width == 8 => {
                vfio::refused_for_width_only(req.device, region, req.offset)
            }
            _ => false,
        }
    }

    /// The checks every backend shares; returns the locked state.
    fn precheck(&self, offset: u64, width: u32, efd: RawFd) -> SysResult<MutexGuard<'_, State>> {
        let width = crate::mmio::Width::from_bytes(width)?;
        if !offset.is_multiple_of(width.bytes()) {
            return Err(Errno::EINVAL);
        }
        if efd < 0 {
            return Err(Errno::EBADF);
        }
        let st = self.open_state()?;
        sys::fstat(efd)?;
        if !source::is_eventfd(efd) {
            return Err(Errno::EMEDIUMTYPE);
        }
        // The same descriptor twice would be closed twice.
        if st.regs.values().any(|r| r.efd == efd) {
            return Err(Errno::EEXIST);
        }
        Ok(st)
    }

    fn watch_source(&self, c: &Common) -> SysResult<Option<(i32, u64)>> {
        if c.pid > 0 {
            let start = self.monitor.watch(c.pid, c.pid_start)?;
            Ok(Some((c.pid, start)))
        } else {
            Ok(None)
        }
    }

    fn insert(&self, st: &mut State, info: RegInfo) -> u64 {
        let id = st.next_id;
        st.next_id += 1;
        st.regs.insert(id, info);
        id
    }

    fn arm_kernel(
        &self,
        st: &mut State,
        req: &VfioRegisterRequest,
        region: &sys::VfioRegionInfo,
        c: &Common,
    ) -> SysResult<u64> {
        let source = self.watch_source(c)?;
        // The engine owns the eventfd from here on; the kernel takes its own reference.
        let efd = sys::own_fd(c.efd);
        match KernelIoeventfd::assign(req.device, region, c.offset, c.width, c.data, efd) {
            Ok(kernel) => {
                let _ = sys::set_cloexec(kernel.efd());
                let info = RegInfo {
                    efd: kernel.efd(),
                    served: Served::Kernel(kernel),
                    backend: Backend::Kernel,
                    source,
                    stats: Arc::new(RegStats::default()),
                };
                Ok(self.insert(st, info))
            }
            Err((e, efd)) => {
                // Not ours after all: hand the descriptor back without closing it.
                let _ = efd.into_raw_fd();
                if let Some((pid, start)) = source {
                    self.monitor.unwatch(pid, start);
                }
                Err(e)
            }
        }
    }

    fn arm_user(
        &self,
        st: &mut State,
        bar: Arc<Mapping>,
        c: &Common,
        backend: Backend,
    ) -> SysResult<u64> {
        // Everything taken so far is given back by `undo` on any later failure.
        let mut source: Option<(i32, u64)> = None;
        let undo = |source: Option<(i32, u64)>, e: Errno| {
            self.bars.release(&bar);
            if let Some((pid, start)) = source {
                self.monitor.unwatch(pid, start);
            }
            Err(e)
        };
        let cell = match MmioCell::new(bar.clone(), c.offset, c.width) {
            Ok(cell) => cell,
            Err(e) => return undo(source, e),
        };
        match self.watch_source(c) {
            Ok(s) => source = s,
            Err(e) => return undo(source, e),
        }
        if let Err(e) = sys::set_nonblocking(c.efd).and_then(|_| sys::set_cloexec(c.efd)) {
            return undo(source, e);
        }
        let worker = st.next_worker % st.workers.len();
        let stats = Arc::new(RegStats::default());
        let new = NewRegistration {
            efd: c.efd,
            cell,
            data: c.data,
            stats: stats.clone(),
        };
        let shared = st.workers[worker].shared.clone();
        let token = match shared.call(|reply| ControlOp::Add(new, reply)) {
            Ok(t) => t,
            Err(e) => return undo(source, e),
        };
        st.next_worker = st.next_worker.wrapping_add(1);
        let info = RegInfo {
            served: Served::User {
                worker,
                token,
                bar: bar.clone(),
            },
            backend,
            efd: c.efd,
            source,
            stats,
        };
        Ok(self.insert(st, info))
    }

    /// Which backend serves `id`; `ENOENT` if unknown.
    pub fn backend(&self, id: u64) -> SysResult<Backend> {
        let st = self.open_state()?;
        st.regs.get(&id).map(|r| r.backend).ok_or(Errno::ENOENT)
    }

    /// Barrier: disarms `id`, closes its eventfd, releases its BAR. `ENOENT` if unknown.
    pub fn unregister(&self, id: u64) -> SysResult<()> {
        let mut st = self.open_state()?;
        let info = st.regs.remove(&id).ok_or(Errno::ENOENT)?;
        let res = match info.served {
            Served::User { worker, token, bar } => {
                let shared = st.workers[worker].shared.clone();
                let res = shared.call(|reply| ControlOp::Remove(token, reply));
                self.bars.release(&bar);
                res
            }
            // De-assigned in the kernel (no write from now on) and the eventfd closed.
            Served::Kernel(k) => {
                drop(k);
                Ok(())
            }
        };
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
