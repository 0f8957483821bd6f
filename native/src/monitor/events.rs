//! The event queue read by `events_wait`: [`Event`]s (the words of the `event` record),
//! bounded, closed with the engine.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

use crate::abi_layout as layout;
use crate::sys::Errno;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Events kept at most; the oldest are dropped beyond (nobody reads them).
const MAX_QUEUED_EVENTS: usize = 65_536;

/// The event queue was closed (the engine is closing; `EBADF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueClosed;

impl From<QueueClosed> for Errno {
    fn from(_: QueueClosed) -> Errno {
        Errno::EBADF
    }
}

impl fmt::Display for QueueClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event queue is closed")
    }
}

impl std::error::Error for QueueClosed {}

/// Event kind: a watched source process exited.
pub const EVENT_SOURCE_EXITED: u64 = 1;

/// One event, as the `event` record of `ioeventd_events_wait` carries it
/// ([`crate::abi_layout::event`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Event {
    /// What happened: [`EVENT_SOURCE_EXITED`].
    pub kind: u64,
    /// The source process's pid.
    pub pid: u64,
    /// Its start time (clock ticks since boot): with the pid, one process.
    pub start_time: u64,
}

impl Event {
    /// A watched source process exited.
    pub(crate) fn source_exited(pid: i32, start_time: u64) -> Event {
        Event {
            kind: EVENT_SOURCE_EXITED,
            pid: pid as u64,
            start_time,
        }
    }

    /// The words of the `event` record, in order (the reserved word is 0).
    pub fn as_words(&self) -> [u64; layout::event::LEN] {
        let mut w = [0u64; layout::event::LEN];
        w[layout::event::KIND] = self.kind;
        w[layout::event::PID] = self.pid;
        w[layout::event::START_TIME] = self.start_time;
        w
    }
}

/// The queue's state under its mutex.
#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    /// Closed: every wait fails from now on.
    closed: bool,
}

/// The event queue read by `events_wait`.
#[derive(Default)]
pub(crate) struct EventQueue {
    inner: Mutex<Queue>,
    cv: Condvar,
}

impl EventQueue {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an event and wakes the waiters.
    pub(crate) fn push(&self, ev: Event) {
        let mut g = self.lock();
        if g.events.len() >= MAX_QUEUED_EVENTS {
            g.events.pop_front();
        }
        g.events.push_back(ev);
        self.cv.notify_all();
    }

    /// Marks the queue closed and wakes every waiter.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.cv.notify_all();
    }

    /// Waits up to `timeout_ms` (negative: forever) for events; moves up to `out.len()` of
    /// them into `out` and returns how many; [`QueueClosed`] once closed.
    pub(crate) fn wait(&self, out: &mut [Event], timeout_ms: i32) -> Result<usize, QueueClosed> {
        let deadline = u64::try_from(timeout_ms)
            .ok()
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let mut g = self.lock();
        loop {
            if g.closed {
                return Err(QueueClosed);
            }
            if !g.events.is_empty() || out.is_empty() {
                break;
            }
            g = match deadline {
                None => self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(0);
                    }
                    self.cv
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        let n = out.len().min(g.events.len());
        for slot in out.iter_mut().take(n) {
            *slot = g.events.pop_front().unwrap_or_default();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn event_queue_wait_timeout_push_close() {
        let q = Arc::new(EventQueue::default());
        let mut out = [Event::default(); 2];
        assert_eq!(q.wait(&mut out, 10), Ok(0));
        q.push(Event::source_exited(2, 3));
        q.push(Event::source_exited(4, 5));
        q.push(Event::source_exited(6, 7));
        assert_eq!(q.wait(&mut out, 0), Ok(2));
        assert_eq!(out[1].as_words(), [1, 4, 5, 0]);
        assert_eq!(q.wait(&mut out, 0), Ok(1));
        assert_eq!(out[0].as_words(), [1, 6, 7, 0]);
        let q2 = q.clone();
        let waiter = std::thread::spawn(move || {
            let mut out = [Event::default(); 1];
            q2.wait(&mut out, -1)
        });
        std::thread::sleep(Duration::from_millis(20));
        q.close();
        assert_eq!(
            waiter.join().unwrap().map_err(Errno::from),
            Err(Errno::EBADF)
        );
    }
}
