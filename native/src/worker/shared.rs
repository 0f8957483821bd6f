//! The state a worker thread shares with the engine: its control queue and eventfd (the
//! engine's end of the channel in `control.rs`), its canary, its statistics, its liveness.

use crate::control::{spin_allowed, ControlOp, Op, Replier, Reply, REPLY_SPIN};
use crate::control::{BatchResult, ControlError, ControlResult};
use crate::stats::WorkerStats;
use crate::sys::{self, SysResult};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The dispatch-latency probe of one worker.
pub(crate) struct Canary {
    pub efd: OwnedFd,
    /// CLOCK_MONOTONIC ns of the outstanding signal, 0 when none.
    pub sent_ns: AtomicU64,
}

/// State shared between a worker thread and the engine.
pub(crate) struct WorkerShared {
    queue: Mutex<VecDeque<ControlOp>>,
    pub(super) control_efd: OwnedFd,
    pub canary: Canary,
    pub stats: WorkerStats,
    pub running: AtomicBool,
}

impl WorkerShared {
    pub(crate) fn new() -> SysResult<WorkerShared> {
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
    pub(crate) fn send(&self, op: ControlOp) -> SysResult<()> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(op);
        sys::write_u64(self.control_efd.as_raw_fd(), 1)
    }

    /// Queues a batch and wakes the worker; [`WorkerShared::wait`] collects the answer, so
    /// that a caller can hand batches to several workers before waiting for any.
    pub(crate) fn submit(&self, ops: Vec<Op>) -> ControlResult<Arc<Reply>> {
        if !self.running.load(Ordering::Acquire) {
            return Err(ControlError::WorkerGone);
        }
        let reply = Reply::new();
        self.send(ControlOp::Batch(ops, Replier(Some(reply.clone()))))
            .map_err(ControlError::Sys)?;
        Ok(reply)
    }

    /// Waits for the answer to a submitted batch: spins on its `done` flag for up to
    /// [`REPLY_SPIN`], then sleeps on its condvar; [`ControlError::WorkerGone`] when the
    /// worker is gone.
    pub(crate) fn wait(&self, reply: &Reply) -> ControlResult<BatchResult> {
        if spin_allowed() {
            let t0 = Instant::now();
            'spin: loop {
                for _ in 0..64 {
                    if reply.done.load(Ordering::Acquire) {
                        break 'spin;
                    }
                    std::hint::spin_loop();
                }
                if t0.elapsed() >= REPLY_SPIN {
                    break;
                }
            }
        }
        let mut g = reply.value.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(v) = g.take() {
                return v;
            }
            let (next, timeout) = reply
                .cv
                .wait_timeout(g, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner());
            g = next;
            // A worker that died never answers; its queued batch is simply left behind.
            if timeout.timed_out() && !self.running.load(Ordering::Acquire) && g.is_none() {
                return Err(ControlError::WorkerGone);
            }
        }
    }

    pub(super) fn pop(&self) -> Option<ControlOp> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}
