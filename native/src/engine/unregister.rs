//! Unregistering: the barrier. A worker-served registration is detached by its worker (one
//! batch per worker); once the worker has answered, no write for it is in flight and none
//! will happen again, so its counters are final. A kernel-served one is de-assigned.

use super::backend::Backend;
use super::table::{answer, RegInfo, Served, State};
use super::{Engine, EngineError};
use crate::control::ControlResult;
use crate::stats::Counters;
use crate::worker::Op;

/// One id of an unregister batch: finished at once, or waiting for its worker's answer.
enum Pending {
    Done(Result<Counters, EngineError>),
    Worker {
        worker: usize,
        item: usize,
        info: RegInfo,
    },
}

impl Engine {
    /// Which backend serves `id`; [`EngineError::UnknownId`] if unknown.
    pub(crate) fn backend(&self, id: u64) -> Result<Backend, EngineError> {
        let st = self.open_state()?;
        st.regs
            .get(&id)
            .map(|r| r.backend)
            .ok_or(EngineError::UnknownId)
    }

    /// Index of the worker serving `id`; [`EngineError::UnknownId`] if unknown,
    /// [`EngineError::KernelServed`] when the kernel serves it (no worker).
    pub fn worker_of(&self, id: u64) -> Result<usize, EngineError> {
        let st = self.open_state()?;
        match st.regs.get(&id).map(|r| &r.served) {
            Some(Served::Worker { worker, .. }) => Ok(*worker),
            Some(Served::Kernel { .. }) => Err(EngineError::KernelServed),
            None => Err(EngineError::UnknownId),
        }
    }

    /// Barrier: disarms `id` (its eventfd's other registrations go on), closes the eventfd
    /// with its last registration, releases its BAR. Returns the registration's final
    /// counters, read after the barrier (no write can follow). [`EngineError::UnknownId`]
    /// if unknown.
    pub fn unregister(&self, id: u64) -> Result<Counters, EngineError> {
        self.unregister_batch(&[id])[0]
    }

    /// `unregister` for each id, with one control operation per worker. One result per id,
    /// in order (an id given twice: [`EngineError::UnknownId`] the second time).
    pub fn unregister_batch(&self, ids: &[u64]) -> Vec<Result<Counters, EngineError>> {
        let mut st = match self.open_state() {
            Ok(st) => st,
            Err(e) => return vec![Err(e.into()); ids.len()],
        };
        let mut ops = st.no_ops();
        let mut pending = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some(info) = st.regs.remove(&id) else {
                pending.push(Pending::Done(Err(EngineError::UnknownId)));
                continue;
            };
            match info.served {
                Served::Worker { worker, token, .. } => {
                    ops[worker].push(Op::Detach { token, id });
                    let item = ops[worker].len() - 1;
                    pending.push(Pending::Worker { worker, item, info });
                }
                Served::Kernel { .. } => {
                    let r = self.finish(&mut st, info, Ok(0));
                    pending.push(Pending::Done(r));
                }
            }
        }
        let answers = st.submit_all(ops);
        pending
            .into_iter()
            .map(|p| match p {
                Pending::Done(r) => r,
                Pending::Worker { worker, item, info } => {
                    let r = answer(&answers, worker, item);
                    self.finish(&mut st, info, r)
                }
            })
            .collect()
    }

    /// The engine's side of an unregistration, once the worker has answered (`r`: 1 when
    /// the eventfd went with it): the table, the BAR reference, the source-process watch.
    fn finish(
        &self,
        st: &mut State,
        info: RegInfo,
        r: ControlResult<u64>,
    ) -> Result<Counters, EngineError> {
        if let Some(p) = info.source_process {
            self.monitor.unwatch(p.pid, p.start);
        }
        match info.served {
            Served::Worker { bar, key, .. } => {
                self.bars.release(&bar);
                // A worker that is gone took its registrations with it.
                let last = r.map_or(true, |n| n == 1);
                if let Some(w) = st.watched.get_mut(&key) {
                    w.writes = w.writes.saturating_sub(1);
                    if last || w.writes == 0 {
                        let fd = w.fd;
                        st.watched.remove(&key);
                        st.held.remove(&fd);
                    }
                }
                // After the worker's answer: it has dropped the write, so these are final.
                r.map(|_| info.stats.snapshot()).map_err(EngineError::from)
            }
            // De-assigned in the kernel (no write from now on) and the eventfd closed.
            Served::Kernel { entry, key } => {
                st.held.remove(&entry.efd());
                if let Some(n) = st.kernel_served.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        st.kernel_served.remove(&key);
                    }
                }
                drop(entry);
                Ok(info.stats.snapshot())
            }
        }
    }
}
