//! The control channel of a worker: the operations (watch / attach / detach, stop) the
//! engine queues for it, and the reply slot of a batch. The worker processes its queue
//! only between two batches of epoll events, so an acknowledged detach is a barrier.
//!
//! Protocol: (1) the engine pushes `ControlOp::Batch(ops, replier)` on the queue and
//! signals the control eventfd; (2) the worker, woken, drains the eventfd, then pops and
//! applies every queued batch in order; (3) it answers each batch once through its
//! [`Replier`] (dropped unanswered: [`ControlError::WorkerGone`]); (4) the engine spins on [`Reply`]'s `done`
//! flag for up to [`REPLY_SPIN`], then sleeps on its condvar.

use crate::mmio::MmioCell;
use crate::stats::RegStats;
use crate::sys::Errno;
use std::fmt;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// Why a worker did not apply an operation (or a batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlError {
    /// The worker thread is not running, or dropped the batch unanswered (`EBADF`).
    WorkerGone,
    /// No answer for this operation in the worker's reply (`EIO`).
    NoAnswer,
    /// The worker watches as many eventfds as its tokens can name (`ENOMEM`).
    NoSlot,
    /// No such watched eventfd or target in this worker (`ENOENT`).
    UnknownTarget,
    /// An attach names an operation of its batch that does not exist (`EINVAL`).
    BadReference,
    /// A system call failed (`epoll_ctl`, signalling the control eventfd).
    Sys(Errno),
}

impl ControlError {
    /// The errno the C ABI reports.
    pub fn errno(&self) -> Errno {
        match self {
            ControlError::WorkerGone => Errno::EBADF,
            ControlError::NoAnswer => Errno::EIO,
            ControlError::NoSlot => Errno::ENOMEM,
            ControlError::UnknownTarget => Errno::ENOENT,
            ControlError::BadReference => Errno::EINVAL,
            ControlError::Sys(e) => *e,
        }
    }
}

impl From<ControlError> for Errno {
    fn from(e: ControlError) -> Errno {
        e.errno()
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::WorkerGone => f.write_str("the worker is gone"),
            ControlError::NoAnswer => f.write_str("the worker gave no answer"),
            ControlError::NoSlot => f.write_str("the worker has no free slot"),
            ControlError::UnknownTarget => f.write_str("no such watched eventfd or target"),
            ControlError::BadReference => f.write_str("the attach names no watch of its batch"),
            ControlError::Sys(e) => write!(f, "system call failed: {e}"),
        }
    }
}

impl std::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ControlError::Sys(e) => Some(e),
            _ => None,
        }
    }
}

/// The result of one control operation.
pub(crate) type ControlResult<T> = Result<T, ControlError>;

/// One write performed on every wake-up of a watched eventfd: a registration.
pub(crate) struct Target {
    /// The engine's registration id.
    pub id: u64,
    pub cell: MmioCell,
    pub data: u64,
    pub stats: Arc<RegStats>,
}

/// Which watched eventfd an [`Op::Attach`] adds to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WatchedRef {
    /// One this worker already watches (its token).
    Token(u64),
    /// The one an [`Op::Watch`] earlier in the same batch starts (its index in the batch).
    Item(usize),
}

/// One control operation; a batch of them is applied in order between two batches of
/// epoll events. Each yields a `ControlResult<u64>`.
pub(crate) enum Op {
    /// Watch a new eventfd with its first target; yields the eventfd's token. The worker
    /// owns `efd` once it is in its epoll set (on failure it stays with the caller).
    Watch { efd: RawFd, target: Target },
    /// Add a target to a watched eventfd (written after the ones before it); yields the
    /// eventfd's token.
    Attach { to: WatchedRef, target: Target },
    /// Remove target `id` from eventfd `token`: yields 1 when it was the last (the epoll
    /// entry is deleted and the eventfd closed), else 0. Once acknowledged, no write for
    /// `id` is in flight and none will happen again.
    Detach { token: u64, id: u64 },
}

/// Control messages, processed by the worker between batches of events.
pub(crate) enum ControlOp {
    /// Apply the ops in order; reply with one result per op.
    Batch(Vec<Op>, Replier),
    /// Leave the loop (dropping every registration).
    Stop,
}

/// One result per op of a batch, in order.
pub(crate) type BatchResult = Vec<ControlResult<u64>>;

/// How long a caller spins on [`Reply::done`] before it sleeps on the condvar: longer than
/// a wake-up of an idle worker plus a batch, so that the answer usually arrives while
/// spinning (a sleeping caller costs a second futex wake-up). Not on a single CPU.
pub(crate) const REPLY_SPIN: Duration = Duration::from_micros(100);

pub(crate) fn spin_allowed() -> bool {
    static MULTI_CPU: OnceLock<bool> = OnceLock::new();
    *MULTI_CPU.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() > 1)
            .unwrap_or(false)
    })
}

/// The answer slot of one batch: written once by the worker, waited for by the caller.
pub(crate) struct Reply {
    pub(crate) done: AtomicBool,
    pub(crate) value: Mutex<Option<ControlResult<BatchResult>>>,
    pub(crate) cv: Condvar,
}

impl Reply {
    pub(crate) fn new() -> Arc<Reply> {
        Arc::new(Reply {
            done: AtomicBool::new(false),
            value: Mutex::new(None),
            cv: Condvar::new(),
        })
    }

    pub(crate) fn set(&self, v: ControlResult<BatchResult>) {
        let mut g = self.value.lock().unwrap_or_else(|e| e.into_inner());
        *g = Some(v);
        self.done.store(true, Ordering::Release);
        self.cv.notify_all();
    }
}

/// The worker's end of a [`Reply`]: answers [`ControlError::WorkerGone`] if dropped
/// unanswered.
pub(crate) struct Replier(pub(crate) Option<Arc<Reply>>);

impl Replier {
    pub(crate) fn send(mut self, v: BatchResult) {
        if let Some(r) = self.0.take() {
            r.set(Ok(v));
        }
    }
}

impl Drop for Replier {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            r.set(Err(ControlError::WorkerGone));
        }
    }
}
