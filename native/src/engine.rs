//! The engine: worker threads, the monitor thread, the registration table and the control
//! path (register / unregister / close). Control operations are serialised by one mutex
//! and handed to the owning worker through its control channel, one batch per worker per
//! call; the caller waits for the worker's acknowledgement, which makes `unregister` a
//! barrier.
//!
//! Registrations are grouped by their eventfd (the kernel's `eventfd-id`, or `kcmp` where
//! fdinfo lacks it): one epoll entry per eventfd on one worker, every registration of it a
//! target written on each wake-up — as the kernel does, where each virqfd on an eventfd
//! gets the wake-up. The first descriptor handed over for an eventfd is the one watched;
//! later duplicates of it are closed once their registration succeeds.

use crate::bar::{BarTable, Mapping};
use crate::mmio::MmioCell;
use crate::monitor::{self, Event, Monitor};
use crate::source;
use crate::stats::{Counters, RegStats, WORKER_U64S};
use crate::sys::{self, Errno, SysResult};
use crate::vfio::{self, KernelIoeventfd};
use crate::worker::{self, ControlOp, Group, Op, PollMode, Target, WorkerShared};
use std::collections::{HashMap, HashSet};
use std::os::fd::{IntoRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Upper bound on `workers` (far beyond any sensible value).
pub const MAX_WORKERS: u32 = 256;

/// Registrations per `register_batch` call at most.
pub const MAX_BATCH: usize = 65_536;

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
    pub fn from_u32(v: u32) -> Option<ShardMode> {
        match v {
            0 => Some(ShardMode::RoundRobin),
            1 => Some(ShardMode::Device),
            _ => None,
        }
    }

    /// The ABI number of the mode.
    pub fn as_u32(self) -> u32 {
        match self {
            ShardMode::RoundRobin => 0,
            ShardMode::Device => 1,
        }
    }
}

/// Engine parameters (see `ioeventd_engine_open` / `ioeventd_engine_open2`).
#[derive(Debug, Clone)]
pub struct Config {
    pub workers: u32,
    pub canary_period_us: u32,
    pub poll_mode: PollMode,
    pub spin_budget_us: u32,
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

/// One registration request of either kind (`register_batch`).
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    File(RegisterRequest<'a>),
    Vfio(VfioRegisterRequest),
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
    /// An engine worker writes through `bar`, as a target of the eventfd `group`.
    User {
        worker: usize,
        token: u64,
        bar: Arc<Mapping>,
        group: u64,
    },
    /// The kernel writes; dropping the value de-assigns it and closes the eventfd.
    Kernel { k: KernelIoeventfd, key: u64 },
}

struct RegInfo {
    served: Served,
    backend: Backend,
    /// Watched source process `(pid, start)`, if any.
    source: Option<(i32, u64)>,
    stats: Arc<RegStats>,
}

/// One eventfd the workers watch, and how many registrations write on its wake-ups.
struct GroupInfo {
    worker: usize,
    token: u64,
    /// The descriptor the worker watches (the first one handed over for this eventfd).
    fd: RawFd,
    targets: usize,
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
    /// Eventfds served by workers, by source key (see `source_key`).
    groups: HashMap<u64, GroupInfo>,
    /// Eventfds served by the kernel: source key → registrations.
    kernel_sources: HashMap<u64, usize>,
    /// Every descriptor the engine holds (watched eventfds, kernel-served eventfds).
    held: HashSet<RawFd>,
    next_id: u64,
    next_worker: usize,
}

/// Hands each worker its batch of control ops (empty batches are skipped), then waits for
/// every answer: the workers apply their batches in parallel.
fn submit_all(st: &State, ops: Vec<Vec<Op>>) -> Vec<Option<SysResult<worker::BatchResult>>> {
    let replies: Vec<_> = ops
        .into_iter()
        .enumerate()
        .map(|(w, ops)| (!ops.is_empty()).then(|| st.workers[w].shared.submit(ops)))
        .collect();
    replies
        .into_iter()
        .enumerate()
        .map(|(w, r)| r.map(|r| r.and_then(|reply| st.workers[w].shared.wait(&reply))))
        .collect()
}

/// Source keys of eventfds whose fdinfo has no `eventfd-id` (never equal to an id).
const NO_ID_KEY: u64 = 1 << 63;

/// The per-request values every backend uses.
struct Common {
    offset: u64,
    width: u32,
    data: u64,
    efd: RawFd,
    pid: i32,
    pid_start: u64,
}

/// A registration checked and ready for its worker (`register_batch`'s first phase).
struct Planned {
    id: u64,
    worker: usize,
    /// Index of its op in the worker's batch.
    item: usize,
    bar: Arc<Mapping>,
    source: Option<(i32, u64)>,
    backend: Backend,
    stats: Arc<RegStats>,
    efd: RawFd,
    key: u64,
    /// It starts watching a new eventfd (else it joins one).
    new_group: bool,
}

enum Plan {
    /// Finished in the first phase: refused, or served by the kernel.
    Done(SysResult<u64>),
    User(Planned),
}

/// What one `register_batch` call has planned so far.
struct BatchPlan {
    /// Ops per worker.
    ops: Vec<Vec<Op>>,
    /// Eventfds this batch starts watching: key → (worker, item, fd).
    pending: HashMap<u64, (usize, usize, RawFd)>,
    /// Descriptors handed over in this batch (the same one twice is `EEXIST`).
    fds: HashSet<RawFd>,
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
    /// beyond it; a pinning refusal (`sched_setaffinity`) is returned as is.
    pub fn open(config: Config) -> SysResult<Engine> {
        let mut config = config;
        config.workers = config.workers.max(1);
        if config.workers > MAX_WORKERS
            || config.cpus.len() > sys::CPU_SETSIZE
            || config.cpus.iter().any(|&c| c as usize >= sys::CPU_SETSIZE)
        {
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
            groups: HashMap::new(),
            kernel_sources: HashMap::new(),
            held: HashSet::new(),
            next_id: 1,
            next_worker: 0,
        };
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
        self.config.clone()
    }

    /// Arms a write; returns the registration id. See the ABI table for the errors.
    pub fn register(&self, req: &RegisterRequest<'_>) -> SysResult<u64> {
        self.register_batch(&[Request::File(*req)])[0]
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
    ///
    /// The kernel's wake-up callback consumes the eventfd's counter (drivers/vfio/virqfd.c),
    /// so the kernel and the workers cannot both serve one eventfd: `Auto` on an eventfd the
    /// workers already watch joins them (`VfioMmap`), and `KernelOnly` there — or a
    /// user-space registration on an eventfd the kernel serves — is `EBUSY`.
    pub fn register_vfio(&self, req: &VfioRegisterRequest) -> SysResult<u64> {
        self.register_batch(&[Request::Vfio(*req)])[0]
    }

    /// Registers every request, each as `register` / `register_vfio` would, with one
    /// control operation per worker (sent to all workers before waiting for any). Returns
    /// one result per request, in order; a refusal affects only its own request. `EBADF`
    /// for each after close, `EINVAL` for each when there are more than [`MAX_BATCH`].
    /// Requests on the same eventfd (even within the batch) share its epoll entry.
    pub fn register_batch(&self, reqs: &[Request<'_>]) -> Vec<SysResult<u64>> {
        if reqs.len() > MAX_BATCH {
            return vec![Err(Errno::EINVAL); reqs.len()];
        }
        let mut st = match self.open_state() {
            Ok(st) => st,
            Err(e) => return vec![Err(e); reqs.len()],
        };
        let mut batch = BatchPlan {
            ops: (0..st.workers.len()).map(|_| Vec::new()).collect(),
            pending: HashMap::new(),
            fds: HashSet::new(),
        };
        let plans: Vec<Plan> = reqs
            .iter()
            .map(|r| match self.plan(&mut st, &mut batch, r) {
                Ok(p) => p,
                Err(e) => Plan::Done(Err(e)),
            })
            .collect();
        // One batch per worker: hand them all over, then collect the answers.
        let answers = submit_all(&st, batch.ops);
        plans
            .into_iter()
            .map(|plan| match plan {
                Plan::Done(r) => r,
                Plan::User(p) => {
                    let r = match &answers[p.worker] {
                        Some(Ok(results)) => {
                            results.get(p.item).copied().unwrap_or(Err(Errno::EIO))
                        }
                        Some(Err(e)) => Err(*e),
                        None => Err(Errno::EIO),
                    };
                    self.commit(&mut st, p, r)
                }
            })
            .collect()
    }

    /// Checks one request and plans its op (or finishes it: a refusal, a kernel entry).
    fn plan(&self, st: &mut State, batch: &mut BatchPlan, req: &Request<'_>) -> SysResult<Plan> {
        let (common, offset, width, efd) = match req {
            Request::File(r) => (Self::common_file(r), r.offset, r.width, r.efd),
            Request::Vfio(r) => (Self::common_vfio(r), r.offset, r.width, r.efd),
        };
        let key = Self::precheck(st, batch, offset, width, efd)?;
        let user_watched = st.groups.contains_key(&key) || batch.pending.contains_key(&key);
        let kernel_served = st.kernel_sources.contains_key(&key);
        let (bar, backend) = match req {
            Request::File(r) => {
                if kernel_served {
                    return Err(Errno::EBUSY);
                }
                (self.bars.acquire(r.bar_path)?, Backend::UserMmap)
            }
            Request::Vfio(r) => {
                vfio::check_device(r.device).map_err(|e| match e {
                    Errno::EMEDIUMTYPE => Errno::ENODEV,
                    e => e,
                })?;
                let region = vfio::bar_region(r.device, r.region)?;
                match r.offset.checked_add(u64::from(r.width)) {
                    Some(end) if end <= region.size => {}
                    _ => return Err(Errno::ERANGE),
                }
                let kernel_first = match r.mode {
                    VfioMode::UserSpace => false,
                    VfioMode::KernelOnly if user_watched => return Err(Errno::EBUSY),
                    VfioMode::KernelOnly => true,
                    // Joins the workers already serving this eventfd.
                    VfioMode::Auto => !user_watched,
                };
                if kernel_first {
                    match self.arm_kernel(st, r, &region, &common, key) {
                        Ok(id) => {
                            batch.fds.insert(efd);
                            return Ok(Plan::Done(Ok(id)));
                        }
                        Err(e) if r.mode == VfioMode::KernelOnly => return Err(e),
                        Err(e) if !Self::may_fall_back(e, r, &region) => return Err(e),
                        Err(_) => {}
                    }
                }
                if kernel_served {
                    return Err(Errno::EBUSY);
                }
                (
                    self.bars.acquire_vfio(r.device, r.region)?,
                    Backend::VfioMmap,
                )
            }
        };
        self.plan_user(st, batch, bar, &common, backend, key)
            .map(Plan::User)
    }

    fn common_file(r: &RegisterRequest<'_>) -> Common {
        Common {
            offset: r.offset,
            width: r.width,
            data: r.data,
            efd: r.efd,
            pid: r.pid,
            pid_start: r.pid_start,
        }
    }

    fn common_vfio(r: &VfioRegisterRequest) -> Common {
        Common {
            offset: r.offset,
            width: r.width,
            data: r.data,
            efd: r.efd,
            pid: r.pid,
            pid_start: r.pid_start,
        }
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

    /// The checks every backend shares; returns the eventfd's source key.
    fn precheck(
        st: &State,
        batch: &BatchPlan,
        offset: u64,
        width: u32,
        efd: RawFd,
    ) -> SysResult<u64> {
        let width = crate::mmio::Width::from_bytes(width)?;
        if !offset.is_multiple_of(width.bytes()) {
            return Err(Errno::EINVAL);
        }
        if efd < 0 {
            return Err(Errno::EBADF);
        }
        sys::fstat(efd)?;
        let id = source::eventfd_fdinfo(efd).ok_or(Errno::EMEDIUMTYPE)?;
        // The same descriptor twice would be closed twice (another descriptor of the same
        // eventfd is fine: it joins the registrations of that eventfd).
        if st.held.contains(&efd) || batch.fds.contains(&efd) {
            return Err(Errno::EEXIST);
        }
        Ok(Self::source_key(st, batch, efd, id))
    }

    /// The key grouping registrations by eventfd: the kernel's `eventfd-id`; without one
    /// (older kernels), the key of a watched eventfd that is the same open file (`kcmp`),
    /// else a key of its own.
    fn source_key(st: &State, batch: &BatchPlan, efd: RawFd, id: Option<u64>) -> u64 {
        if let Some(id) = id {
            return id;
        }
        let same = |fd: RawFd| sys::same_file(fd, efd).unwrap_or(false);
        if let Some((k, _)) = st.groups.iter().find(|(_, g)| same(g.fd)) {
            return *k;
        }
        if let Some((k, _)) = batch.pending.iter().find(|(_, p)| same(p.2)) {
            return *k;
        }
        NO_ID_KEY | efd as u64
    }

    fn watch_source(&self, c: &Common) -> SysResult<Option<(i32, u64)>> {
        if c.pid > 0 {
            let start = self.monitor.watch(c.pid, c.pid_start)?;
            Ok(Some((c.pid, start)))
        } else {
            Ok(None)
        }
    }

    fn unwatch_source(&self, source: Option<(i32, u64)>) {
        if let Some((pid, start)) = source {
            self.monitor.unwatch(pid, start);
        }
    }

    fn arm_kernel(
        &self,
        st: &mut State,
        req: &VfioRegisterRequest,
        region: &sys::VfioRegionInfo,
        c: &Common,
        key: u64,
    ) -> SysResult<u64> {
        let source = self.watch_source(c)?;
        // The engine owns the eventfd from here on; the kernel takes its own reference.
        let efd = sys::own_fd(c.efd);
        match KernelIoeventfd::assign(req.device, region, c.offset, c.width, c.data, efd) {
            Ok(k) => {
                let _ = sys::set_cloexec(k.efd());
                st.held.insert(k.efd());
                *st.kernel_sources.entry(key).or_default() += 1;
                let info = RegInfo {
                    served: Served::Kernel { k, key },
                    backend: Backend::Kernel,
                    source,
                    stats: Arc::new(RegStats::default()),
                };
                let id = st.next_id;
                st.next_id += 1;
                st.regs.insert(id, info);
                Ok(id)
            }
            Err((e, efd)) => {
                // Not ours after all: hand the descriptor back without closing it.
                let _ = efd.into_raw_fd();
                self.unwatch_source(source);
                Err(e)
            }
        }
    }

    /// The worker a new eventfd goes to.
    fn pick_worker(&self, st: &mut State, bar: &Mapping) -> usize {
        let n = st.workers.len();
        match self.config.shard {
            ShardMode::RoundRobin => {
                let w = st.next_worker % n;
                st.next_worker = st.next_worker.wrapping_add(1);
                w
            }
            ShardMode::Device => (bar.device_hash() % n as u64) as usize,
        }
    }

    fn plan_user(
        &self,
        st: &mut State,
        batch: &mut BatchPlan,
        bar: Arc<Mapping>,
        c: &Common,
        backend: Backend,
        key: u64,
    ) -> SysResult<Planned> {
        let cell = match MmioCell::new(bar.clone(), c.offset, c.width) {
            Ok(cell) => cell,
            Err(e) => {
                self.bars.release(&bar);
                return Err(e);
            }
        };
        let source = match self.watch_source(c) {
            Ok(s) => s,
            Err(e) => {
                self.bars.release(&bar);
                return Err(e);
            }
        };
        // Close-on-exec is per descriptor; the file status flags (O_NONBLOCK), shared with
        // the process the eventfd came from, are left alone: reads use RWF_NOWAIT.
        if let Err(e) = sys::set_cloexec(c.efd) {
            self.bars.release(&bar);
            self.unwatch_source(source);
            return Err(e);
        }
        let id = st.next_id;
        st.next_id += 1;
        let stats = Arc::new(RegStats::default());
        let target = Target {
            id,
            cell,
            data: c.data,
            stats: stats.clone(),
        };
        let (worker, op, new_group) = if let Some(g) = st.groups.get(&key) {
            let op = Op::Attach {
                group: Group::Token(g.token),
                target,
            };
            (g.worker, op, false)
        } else if let Some(&(w, item, _)) = batch.pending.get(&key) {
            let op = Op::Attach {
                group: Group::Item(item),
                target,
            };
            (w, op, false)
        } else {
            let w = self.pick_worker(st, &bar);
            let item = batch.ops[w].len();
            batch.pending.insert(key, (w, item, c.efd));
            (w, Op::Watch { efd: c.efd, target }, true)
        };
        let item = batch.ops[worker].len();
        batch.ops[worker].push(op);
        batch.fds.insert(c.efd);
        Ok(Planned {
            id,
            worker,
            item,
            bar,
            source,
            backend,
            stats,
            efd: c.efd,
            key,
            new_group,
        })
    }

    /// Records a planned registration once its worker has answered.
    fn commit(&self, st: &mut State, p: Planned, r: SysResult<u64>) -> SysResult<u64> {
        let token = match r {
            Ok(t) => t,
            Err(e) => {
                // The descriptor stays with the caller.
                self.bars.release(&p.bar);
                self.unwatch_source(p.source);
                return Err(e);
            }
        };
        if p.new_group {
            st.groups.insert(
                p.key,
                GroupInfo {
                    worker: p.worker,
                    token,
                    fd: p.efd,
                    targets: 1,
                },
            );
            st.held.insert(p.efd);
        } else {
            if let Some(g) = st.groups.get_mut(&p.key) {
                g.targets += 1;
            }
            // Another descriptor of an eventfd already watched: not needed.
            let _ = sys::close_raw(p.efd);
        }
        st.regs.insert(
            p.id,
            RegInfo {
                served: Served::User {
                    worker: p.worker,
                    token,
                    bar: p.bar,
                    group: p.key,
                },
                backend: p.backend,
                source: p.source,
                stats: p.stats,
            },
        );
        Ok(p.id)
    }

    /// Which backend serves `id`; `ENOENT` if unknown.
    pub fn backend(&self, id: u64) -> SysResult<Backend> {
        let st = self.open_state()?;
        st.regs.get(&id).map(|r| r.backend).ok_or(Errno::ENOENT)
    }

    /// Index of the worker serving `id`; `ENOENT` if unknown, `EOPNOTSUPP` when the kernel
    /// serves it (no worker).
    pub fn worker_of(&self, id: u64) -> SysResult<usize> {
        let st = self.open_state()?;
        match st.regs.get(&id).map(|r| &r.served) {
            Some(Served::User { worker, .. }) => Ok(*worker),
            Some(Served::Kernel { .. }) => Err(Errno::EOPNOTSUPP),
            None => Err(Errno::ENOENT),
        }
    }

    /// Barrier: disarms `id` (its eventfd's other registrations go on), closes the eventfd
    /// with its last registration, releases its BAR. Returns the registration's final
    /// counters, read after the barrier (no write can follow). `ENOENT` if unknown.
    pub fn unregister(&self, id: u64) -> SysResult<Counters> {
        self.unregister_batch(&[id])[0]
    }

    /// `unregister` for each id, with one control operation per worker. One result per id,
    /// in order (an id given twice: `ENOENT` the second time).
    pub fn unregister_batch(&self, ids: &[u64]) -> Vec<SysResult<Counters>> {
        let mut st = match self.open_state() {
            Ok(st) => st,
            Err(e) => return vec![Err(e); ids.len()],
        };
        let mut ops: Vec<Vec<Op>> = (0..st.workers.len()).map(|_| Vec::new()).collect();
        // Per id: done, or (worker, item, info) waiting for its worker.
        let mut plans: Vec<Result<(usize, usize, RegInfo), SysResult<Counters>>> =
            Vec::with_capacity(ids.len());
        for &id in ids {
            let Some(info) = st.regs.remove(&id) else {
                plans.push(Err(Err(Errno::ENOENT)));
                continue;
            };
            match &info.served {
                Served::User { worker, token, .. } => {
                    let (w, token) = (*worker, *token);
                    ops[w].push(Op::Detach { token, id });
                    plans.push(Ok((w, ops[w].len() - 1, info)));
                }
                Served::Kernel { .. } => {
                    let r = self.finish_unregister(&mut st, info, Ok(0));
                    plans.push(Err(r));
                }
            }
        }
        let answers = submit_all(&st, ops);
        plans
            .into_iter()
            .map(|p| match p {
                Err(done) => done,
                Ok((w, item, info)) => {
                    let r = match &answers[w] {
                        Some(Ok(results)) => results.get(item).copied().unwrap_or(Err(Errno::EIO)),
                        Some(Err(e)) => Err(*e),
                        None => Err(Errno::EIO),
                    };
                    self.finish_unregister(&mut st, info, r)
                }
            })
            .collect()
    }

    /// The engine's side of an unregistration, once the worker has answered (`r`: 1 when
    /// the eventfd went with it).
    fn finish_unregister(
        &self,
        st: &mut State,
        info: RegInfo,
        r: SysResult<u64>,
    ) -> SysResult<Counters> {
        let res = match info.served {
            Served::User { bar, group, .. } => {
                self.bars.release(&bar);
                let last = match r {
                    Ok(n) => n == 1,
                    // The worker is gone: its registrations went with it.
                    Err(_) => true,
                };
                if let Some(g) = st.groups.get_mut(&group) {
                    g.targets = g.targets.saturating_sub(1);
                    if last || g.targets == 0 {
                        let fd = g.fd;
                        st.groups.remove(&group);
                        st.held.remove(&fd);
                    }
                }
                // After the worker's answer: it has dropped the target, so these are final.
                r.map(|_| info.stats.snapshot())
            }
            // De-assigned in the kernel (no write from now on) and the eventfd closed.
            Served::Kernel { k, key } => {
                st.held.remove(&k.efd());
                if let Some(n) = st.kernel_sources.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        st.kernel_sources.remove(&key);
                    }
                }
                drop(k);
                Ok(info.stats.snapshot())
            }
        };
        self.unwatch_source(info.source);
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
        st.groups.clear();
        st.kernel_sources.clear();
        st.held.clear();
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
                let [t, s, l] = r.stats.snapshot().as_words();
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
    /// alive, shard, pinned_cpus, watched_eventfds, read_fallback]`.
    pub fn info(&self) -> SysResult<[u64; INFO_U64S]> {
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
            st.groups.len() as u64,
            u64::from(sys::nowait_unsupported()),
        ])
    }

    /// Waits up to `timeout_ms` (negative: forever) for events. `EBADF` after close.
    pub fn events_wait(&self, out: &mut [Event], timeout_ms: i32) -> SysResult<usize> {
        self.monitor.events.wait(out, timeout_ms)
    }
}

/// Values in `info` (`ioeventd_engine_info`).
pub const INFO_U64S: usize = crate::abi_layout::info::LEN;

impl Drop for Engine {
    fn drop(&mut self) {
        self.close();
    }
}
