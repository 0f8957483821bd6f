//! The worker's side of the control channel: applying a batch of watch / attach / detach
//! operations to its slots, between two batches of epoll events.

use super::{Slot, WatchedEventfd, Worker};
use crate::control::{BatchResult, ControlError, ControlOp, ControlResult, Op, Target, WatchedRef};
use crate::slot_token::{self, token, MAX_SLOTS};
use crate::sys;
use std::os::fd::{AsRawFd, RawFd};

impl Worker {
    /// Processes every queued control operation; true when asked to stop.
    pub(super) fn process_control(&mut self) -> bool {
        // Drain the eventfd first: an op queued after this read comes with a new signal.
        let _ = sys::read_u64(self.shared.control_efd.as_raw_fd());
        while let Some(op) = self.shared.pop() {
            match op {
                ControlOp::Batch(ops, reply) => {
                    let results = self.apply(ops);
                    reply.send(results);
                }
                ControlOp::Stop => return true,
            }
        }
        false
    }

    fn apply(&mut self, ops: Vec<Op>) -> BatchResult {
        let mut results: BatchResult = Vec::with_capacity(ops.len());
        for op in ops {
            let r = match op {
                Op::Watch { efd, target } => self.watch(efd, target),
                Op::Attach { to, target } => {
                    let token = match to {
                        WatchedRef::Token(t) => Ok(t),
                        // The watch it depends on failed: so does the attach.
                        WatchedRef::Item(k) => results
                            .get(k)
                            .copied()
                            .unwrap_or(Err(ControlError::BadReference)),
                    };
                    token.and_then(|t| self.attach(t, target).map(|()| t))
                }
                Op::Detach { token, id } => self.detach(token, id),
            };
            results.push(r);
        }
        results
    }

    fn slot_mut(&mut self, token: u64) -> ControlResult<&mut Slot> {
        let (index, generation) = (slot_token::index(token), slot_token::generation(token));
        match self.slots.get_mut(index) {
            Some(s) if s.generation == generation && s.watched.is_some() => Ok(s),
            _ => Err(ControlError::UnknownTarget),
        }
    }

    fn watch(&mut self, efd: RawFd, target: Target) -> ControlResult<u64> {
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None if self.slots.len() < MAX_SLOTS => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
            None => return Err(ControlError::NoSlot),
        };
        let slot = &mut self.slots[index];
        let t = token(index as u32, slot.generation);
        // Level-triggered: a counter that is already non-zero is served at once.
        if let Err(e) = sys::epoll_add(self.epfd.as_raw_fd(), efd, sys::EPOLLIN, t) {
            self.free.push(index as u32);
            return Err(ControlError::Sys(e));
        }
        slot.watched = Some(WatchedEventfd {
            efd: sys::own_fd(efd),
            nonblocking: sys::is_nonblocking(efd).unwrap_or(false),
            targets: vec![target],
        });
        Ok(t)
    }

    fn attach(&mut self, token: u64, target: Target) -> ControlResult<()> {
        let slot = self.slot_mut(token)?;
        if let Some(src) = &mut slot.watched {
            src.targets.push(target);
        }
        Ok(())
    }

    fn detach(&mut self, token: u64, id: u64) -> ControlResult<u64> {
        let index = (token & 0xFFFF_FFFF) as u32;
        let epfd = self.epfd.as_raw_fd();
        let slot = self.slot_mut(token)?;
        let Some(src) = &mut slot.watched else {
            return Err(ControlError::UnknownTarget);
        };
        let at = src
            .targets
            .iter()
            .position(|t| t.id == id)
            .ok_or(ControlError::UnknownTarget)?;
        // Drops this target's reference to its BAR.
        drop(src.targets.remove(at));
        if !src.targets.is_empty() {
            return Ok(0);
        }
        if let Some(src) = slot.watched.take() {
            let _ = sys::epoll_del(epfd, src.efd.as_raw_fd());
            // Closes the eventfd.
            drop(src);
        }
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        Ok(1)
    }
}
