//! Registering: each request is checked and planned (a refusal or a kernel entry is
//! finished at once), the planned ops go to their workers in one batch per worker, and
//! each answer is committed to the table. What a request has taken (a BAR reference, a
//! source-process watch) is held by a guard that gives it back unless the registration is
//! committed, so no error path releases anything by hand.

use super::backend::{self, Backend};
use super::msix_guard::MsixLayouts;
use super::request::{Bar, RegisterRequest, SourceProcess};
use super::table::{answer, EventfdKey, RegInfo, Served, State, WatchedEventfd};
use super::{Engine, RegisterError, ShardMode, MAX_BATCH};
use crate::bar::{BarError, BarTable, Mapping};
use crate::control::ControlResult;
use crate::mmio::{MmioCell, MmioError, Width};
use crate::monitor::Monitor;
use crate::source;
use crate::stats::RegStats;
use crate::sys;
use crate::vfio::{self, KernelIoeventfd};
use crate::worker::{Op, Target, WatchedRef};
use std::collections::{HashMap, HashSet};
use std::os::fd::{IntoRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A BAR reference taken for a registration: released on drop unless kept.
struct BarRef<'e> {
    bars: &'e BarTable,
    map: Option<Arc<Mapping>>,
}

impl BarRef<'_> {
    fn map(&self) -> &Arc<Mapping> {
        self.map.as_ref().expect("held until kept")
    }

    fn keep(mut self) -> Arc<Mapping> {
        self.map.take().expect("held until kept")
    }
}

impl Drop for BarRef<'_> {
    fn drop(&mut self) {
        if let Some(m) = self.map.take() {
            self.bars.release(&m);
        }
    }
}

/// A source-process watch taken for a registration: dropped on drop unless kept.
struct Watch<'e> {
    monitor: &'e Monitor,
    process: Option<SourceProcess>,
}

impl<'e> Watch<'e> {
    /// Watches `pid` (when > 0) for exit; refused when gone or not started at `pid_start`.
    fn take(monitor: &'e Monitor, pid: i32, pid_start: u64) -> Result<Watch<'e>, RegisterError> {
        let process = if pid > 0 {
            let start = monitor.watch(pid, pid_start)?;
            Some(SourceProcess { pid, start })
        } else {
            None
        };
        Ok(Watch { monitor, process })
    }

    fn keep(mut self) -> Option<SourceProcess> {
        self.process.take()
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.process.take() {
            self.monitor.unwatch(p.pid, p.start);
        }
    }
}

/// A registration checked and ready for its worker.
struct Planned<'e> {
    id: u64,
    worker: usize,
    /// Index of its op in the worker's batch.
    item: usize,
    bar: BarRef<'e>,
    watch: Watch<'e>,
    backend: Backend,
    stats: Arc<RegStats>,
    efd: RawFd,
    key: EventfdKey,
    /// It starts watching a new eventfd (else it joins one).
    new_eventfd: bool,
}

enum Plan<'e> {
    /// Finished while planning: refused, or served by the kernel.
    Done(Result<u64, RegisterError>),
    Worker(Planned<'e>),
}

/// What one batch has planned so far.
struct Batch {
    /// Ops per worker.
    ops: Vec<Vec<Op>>,
    /// Eventfds this batch starts watching: key → (worker, item, fd).
    pending: HashMap<EventfdKey, (usize, usize, RawFd)>,
    /// Descriptors handed over in this batch (the same one twice is `EEXIST`).
    fds: HashSet<RawFd>,
    /// The MSI-X layouts of the devices this batch writes, read from their config space.
    msix: MsixLayouts,
    /// The canonical path of each BAR file this batch names (resolved once: each
    /// resolution is a `readlink` per path component).
    canonical: HashMap<PathBuf, PathBuf>,
}

impl Batch {
    /// The canonical form of `path`, resolved once per batch.
    fn canonical(&mut self, path: &Path) -> Result<PathBuf, BarError> {
        if let Some(c) = self.canonical.get(path) {
            return Ok(c.clone());
        }
        let c = crate::bar::canonical(path)?;
        self.canonical.insert(path.to_path_buf(), c.clone());
        Ok(c)
    }
}

impl Engine {
    /// Arms a write; returns the registration id. See the ABI table for the errors.
    ///
    /// On a VFIO device's BAR (`req.bar` is [`Bar::Vfio`]) the same checks come first
    /// (width, alignment, eventfd, bounds against the region's size), so every backend
    /// accepts the same requests; then the mode picks the backend
    /// ([`backend::kernel_first`], [`backend::may_fall_back`]).
    pub fn register(&self, req: &RegisterRequest<'_>) -> Result<u64, RegisterError> {
        self.register_batch(std::slice::from_ref(req))[0]
    }

    /// Registers every request, each as `register` would, with one control operation per
    /// worker (sent to all workers before waiting for any). One result per request, in
    /// order; a refusal affects only its own request. [`RegisterError::Closed`] for each
    /// after close, [`RegisterError::TooMany`] for each beyond [`MAX_BATCH`]. Requests on
    /// the same eventfd (even within the batch) share its epoll entry.
    pub fn register_batch(&self, reqs: &[RegisterRequest<'_>]) -> Vec<Result<u64, RegisterError>> {
        if reqs.len() > MAX_BATCH {
            return vec![Err(RegisterError::TooMany); reqs.len()];
        }
        let mut st = match self.open_state() {
            Ok(st) => st,
            Err(e) => return vec![Err(e.into()); reqs.len()],
        };
        let mut batch = Batch {
            ops: st.no_ops(),
            pending: HashMap::new(),
            fds: HashSet::new(),
            msix: MsixLayouts::default(),
            canonical: HashMap::new(),
        };
        let plans: Vec<Plan<'_>> = reqs
            .iter()
            .map(|r| {
                self.plan(&mut st, &mut batch, r)
                    .unwrap_or_else(|e| Plan::Done(Err(e)))
            })
            .collect();
        let answers = st.submit_all(batch.ops);
        plans
            .into_iter()
            .map(|plan| match plan {
                Plan::Done(r) => r,
                Plan::Worker(p) => {
                    let r = answer(&answers, p.worker, p.item);
                    Self::commit(&mut st, p, r)
                }
            })
            .collect()
    }

    /// Checks one request and plans its op (or finishes it: a refusal, a kernel entry).
    fn plan<'e>(
        &'e self,
        st: &mut State,
        batch: &mut Batch,
        req: &RegisterRequest<'_>,
    ) -> Result<Plan<'e>, RegisterError> {
        let key = Self::precheck(st, batch, req)?;
        let watched = st.watched.contains_key(&key) || batch.pending.contains_key(&key);
        let kernel_served = st.kernel_served.contains_key(&key);
        let (map, backend) = match req.bar {
            Bar::File(path) => {
                if kernel_served {
                    return Err(RegisterError::Busy);
                }
                let path = batch.canonical(path)?;
                batch.msix.check(&Bar::File(&path), req.offset, req.width)?;
                (self.bars.acquire(&path)?, Backend::UserMmap)
            }
            Bar::Vfio {
                device,
                region,
                mode,
            } => {
                // Not a VFIO device: `NotVfioDevice` (see `From<VfioError>`).
                vfio::check_device(device)?;
                let info = vfio::bar_region(device, region)?;
                match req.offset.checked_add(u64::from(req.width)) {
                    Some(end) if end <= info.size => {}
                    _ => return Err(MmioError::OutOfRange.into()),
                }
                batch.msix.check(&req.bar, req.offset, req.width)?;
                if backend::kernel_first(mode, watched)? {
                    match self.arm_kernel(st, req, device, &info, key) {
                        Ok(id) => {
                            batch.fds.insert(req.efd);
                            return Ok(Plan::Done(Ok(id)));
                        }
                        Err(e) if mode == backend::VfioMode::Kernel => return Err(e),
                        Err(e) => {
                            if !backend::may_fall_back(&e, device, &info, req.offset, req.width) {
                                return Err(e);
                            }
                        }
                    }
                }
                if kernel_served {
                    return Err(RegisterError::Busy);
                }
                (self.bars.acquire_vfio(device, region)?, Backend::VfioMmap)
            }
        };
        let bar = BarRef {
            bars: &self.bars,
            map: Some(map),
        };
        self.plan_worker(st, batch, bar, req, backend, key)
            .map(Plan::Worker)
    }

    /// The checks every backend shares; returns the eventfd's key.
    fn precheck(
        st: &State,
        batch: &Batch,
        req: &RegisterRequest<'_>,
    ) -> Result<EventfdKey, RegisterError> {
        let width = Width::from_bytes(req.width)?;
        if !req.offset.is_multiple_of(width.bytes()) {
            return Err(MmioError::Misaligned.into());
        }
        let efd = req.efd;
        if efd < 0 {
            return Err(RegisterError::FdNotOpen);
        }
        sys::fstat(efd).map_err(RegisterError::Sys)?;
        let id = source::eventfd_fdinfo(efd).ok_or(RegisterError::NotEventfd)?;
        // The same descriptor twice would be closed twice (another descriptor of the same
        // eventfd is fine: it joins the registrations of that eventfd).
        if st.held.contains(&efd) || batch.fds.contains(&efd) {
            return Err(RegisterError::DuplicateFd);
        }
        let pending = batch.pending.iter().map(|(k, p)| (*k, p.2));
        Ok(st.eventfd_key(pending, efd, id))
    }

    /// Hands the eventfd to the kernel (`VFIO_DEVICE_IOEVENTFD`) and records it.
    fn arm_kernel(
        &self,
        st: &mut State,
        req: &RegisterRequest<'_>,
        device: RawFd,
        region: &sys::VfioRegionInfo,
        key: EventfdKey,
    ) -> Result<u64, RegisterError> {
        let watch = Watch::take(&self.monitor, req.pid, req.pid_start)?;
        // The engine owns the eventfd from here on; the kernel takes its own reference.
        let efd = sys::own_fd(req.efd);
        match KernelIoeventfd::assign(device, region, req.offset, req.width, req.data, efd) {
            Ok(entry) => {
                let _ = sys::set_cloexec(entry.efd());
                st.held.insert(entry.efd());
                *st.kernel_served.entry(key).or_default() += 1;
                let id = st.take_id();
                let info = RegInfo {
                    served: Served::Kernel { entry, key },
                    backend: Backend::Kernel,
                    source_process: watch.keep(),
                    stats: Arc::new(RegStats::default()),
                };
                st.regs.insert(id, info);
                Ok(id)
            }
            Err((e, efd)) => {
                // Not ours after all: hand the descriptor back without closing it.
                let _ = efd.into_raw_fd();
                Err(e.into())
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
            // The remainder is < n, a usize.
            ShardMode::Device => usize::try_from(bar.device_hash() % n as u64).unwrap_or(0),
        }
    }

    fn plan_worker<'e>(
        &'e self,
        st: &mut State,
        batch: &mut Batch,
        bar: BarRef<'e>,
        req: &RegisterRequest<'_>,
        backend: Backend,
        key: EventfdKey,
    ) -> Result<Planned<'e>, RegisterError> {
        let cell = MmioCell::new(bar.map().clone(), req.offset, req.width)?;
        let watch = Watch::take(&self.monitor, req.pid, req.pid_start)?;
        // Close-on-exec is per descriptor; the file status flags (O_NONBLOCK), shared with
        // the process the eventfd came from, are left alone: reads use RWF_NOWAIT.
        sys::set_cloexec(req.efd).map_err(RegisterError::Sys)?;
        let id = st.take_id();
        let stats = Arc::new(RegStats::default());
        let target = Target {
            id,
            cell,
            data: req.data,
            stats: stats.clone(),
        };
        let (worker, op, new_eventfd) = if let Some(w) = st.watched.get(&key) {
            let to = WatchedRef::Token(w.token);
            (w.worker, Op::Attach { to, target }, false)
        } else if let Some(&(w, item, _)) = batch.pending.get(&key) {
            let to = WatchedRef::Item(item);
            (w, Op::Attach { to, target }, false)
        } else {
            let w = self.pick_worker(st, bar.map());
            let item = batch.ops[w].len();
            batch.pending.insert(key, (w, item, req.efd));
            let efd = req.efd;
            (w, Op::Watch { efd, target }, true)
        };
        let item = batch.ops[worker].len();
        batch.ops[worker].push(op);
        batch.fds.insert(req.efd);
        Ok(Planned {
            id,
            worker,
            item,
            bar,
            watch,
            backend,
            stats,
            efd: req.efd,
            key,
            new_eventfd,
        })
    }

    /// Records a planned registration once its worker has answered (`r`: the watched
    /// eventfd's token). On a refusal the guards give back what was taken and the
    /// descriptor stays with the caller.
    fn commit(st: &mut State, p: Planned<'_>, r: ControlResult<u64>) -> Result<u64, RegisterError> {
        let token = r?;
        if p.new_eventfd {
            let watched = WatchedEventfd {
                worker: p.worker,
                token,
                fd: p.efd,
                writes: 1,
            };
            st.watched.insert(p.key, watched);
            st.held.insert(p.efd);
        } else {
            if let Some(w) = st.watched.get_mut(&p.key) {
                w.writes += 1;
            }
            // Another descriptor of an eventfd already watched: not needed.
            let _ = sys::close_raw(p.efd);
        }
        let served = Served::Worker {
            worker: p.worker,
            token,
            bar: p.bar.keep(),
            key: p.key,
        };
        let info = RegInfo {
            served,
            backend: p.backend,
            source_process: p.watch.keep(),
            stats: p.stats,
        };
        st.regs.insert(p.id, info);
        Ok(p.id)
    }
}
