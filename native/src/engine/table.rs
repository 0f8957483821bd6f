//! The registration table: every registration by id, every eventfd the workers watch (a
//! [`WatchedEventfd`]: one epoll entry, fanning out to several writes) and every eventfd
//! the kernel serves, by eventfd key; and the hand-over of control batches to workers.

use super::backend::Backend;
use super::request::SourceProcess;
use crate::bar::Mapping;
use crate::control::{ControlError, ControlResult};
use crate::stats::RegStats;
use crate::sys;
use crate::vfio::KernelIoeventfd;
use crate::worker::{BatchResult, Op, WorkerShared};
use std::collections::{HashMap, HashSet};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Identifies an eventfd across descriptors: the kernel's `eventfd-id`; without one (older
/// kernels) the key of a watched eventfd that is the same open file (`kcmp`), else a key
/// of its own (with [`NO_ID_KEY`] set, so never equal to an id).
pub(crate) type EventfdKey = u64;

/// Set in the keys of eventfds whose fdinfo has no `eventfd-id`.
pub(crate) const NO_ID_KEY: u64 = 1 << 63;

/// Who serves a registration.
pub(crate) enum Served {
    /// An engine worker writes through `bar`, as one of the writes of a watched eventfd.
    Worker {
        worker: usize,
        /// The slot token of the watched eventfd in that worker.
        token: u64,
        bar: Arc<Mapping>,
        key: EventfdKey,
    },
    /// The kernel writes; dropping the value de-assigns it and closes the eventfd.
    Kernel {
        entry: KernelIoeventfd,
        key: EventfdKey,
    },
}

/// One registration.
pub(crate) struct RegInfo {
    pub served: Served,
    pub backend: Backend,
    pub source_process: Option<SourceProcess>,
    pub stats: Arc<RegStats>,
}

/// The engine's view of one eventfd the workers watch.
pub(crate) struct WatchedEventfd {
    pub worker: usize,
    pub token: u64,
    /// The descriptor the worker watches (the first one handed over for this eventfd).
    pub fd: RawFd,
    /// Registrations writing on its wake-ups.
    pub writes: usize,
}

/// A worker thread and the state it shares with the engine.
pub(crate) struct WorkerHandle {
    pub shared: Arc<WorkerShared>,
    pub thread: Option<JoinHandle<()>>,
}

/// Everything the control path changes, under the engine's one mutex.
pub(crate) struct State {
    pub closed: bool,
    pub workers: Vec<WorkerHandle>,
    pub monitor_thread: Option<JoinHandle<()>>,
    pub regs: HashMap<u64, RegInfo>,
    /// Eventfds served by workers.
    pub watched: HashMap<EventfdKey, WatchedEventfd>,
    /// Eventfds served by the kernel: how many registrations each.
    pub kernel_served: HashMap<EventfdKey, usize>,
    /// Every descriptor the engine holds (watched eventfds, kernel-served eventfds).
    pub held: HashSet<RawFd>,
    pub next_id: u64,
    pub next_worker: usize,
}

impl State {
    pub(crate) fn new() -> State {
        State {
            closed: false,
            workers: Vec::new(),
            monitor_thread: None,
            regs: HashMap::new(),
            watched: HashMap::new(),
            kernel_served: HashMap::new(),
            held: HashSet::new(),
            next_id: 1,
            next_worker: 0,
        }
    }

    /// A new registration id (ids are never reused within an engine).
    pub(crate) fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// One empty op batch per worker.
    pub(crate) fn no_ops(&self) -> Vec<Vec<Op>> {
        (0..self.workers.len()).map(|_| Vec::new()).collect()
    }

    /// Hands each worker its batch of control ops (empty batches are skipped), then waits
    /// for every answer: the workers apply their batches in parallel.
    pub(crate) fn submit_all(&self, ops: Vec<Vec<Op>>) -> Vec<Option<ControlResult<BatchResult>>> {
        let replies: Vec<_> = ops
            .into_iter()
            .enumerate()
            .map(|(w, ops)| (!ops.is_empty()).then(|| self.workers[w].shared.submit(ops)))
            .collect();
        replies
            .into_iter()
            .enumerate()
            .map(|(w, r)| r.map(|r| r.and_then(|reply| self.workers[w].shared.wait(&reply))))
            .collect()
    }

    /// The key of eventfd `efd` whose fdinfo says `id` (see [`EventfdKey`]); `pending` are
    /// the eventfds a batch is about to watch, `(key, fd)`.
    pub(crate) fn eventfd_key(
        &self,
        pending: impl Iterator<Item = (EventfdKey, RawFd)>,
        efd: RawFd,
        id: Option<u64>,
    ) -> EventfdKey {
        if let Some(id) = id {
            return id;
        }
        let same = |fd: RawFd| sys::same_file(fd, efd).unwrap_or(false);
        if let Some((k, _)) = self.watched.iter().find(|(_, w)| same(w.fd)) {
            return *k;
        }
        if let Some((k, _)) = pending.into_iter().find(|(_, fd)| same(*fd)) {
            return k;
        }
        NO_ID_KEY | u64::from(efd.unsigned_abs())
    }
}

/// The answer to op `item` of worker `worker`'s batch ([`ControlError::NoAnswer`] when
/// there is none).
pub(crate) fn answer(
    answers: &[Option<ControlResult<BatchResult>>],
    worker: usize,
    item: usize,
) -> ControlResult<u64> {
    match &answers[worker] {
        Some(Ok(results)) => results
            .get(item)
            .copied()
            .unwrap_or(Err(ControlError::NoAnswer)),
        Some(Err(e)) => Err(*e),
        None => Err(ControlError::NoAnswer),
    }
}
