//! The intake's handle table and its vocabulary: who handed a descriptor over, what a handle
//! stands for, why one cannot be used, the limits and the counters.

use super::wire::Kind;
use crate::sys::Errno;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// Why a handle cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoverError {
    /// No such handle (never issued, expired, or consumed) (`ENOENT`).
    UnknownHandle,
    /// Handed over for another owner (`EACCES`).
    OtherOwner,
    /// Not the kind asked for (an eventfd where a VFIO device is wanted, or the reverse)
    /// (`EMEDIUMTYPE`).
    WrongKind,
    /// The intake is closed, or its handle invalid (`EBADF`).
    Closed,
    /// A system call failed.
    Sys(Errno),
}

impl HandoverError {
    /// The errno the C ABI reports.
    pub fn errno(&self) -> Errno {
        match self {
            HandoverError::UnknownHandle => Errno::ENOENT,
            HandoverError::OtherOwner => Errno::EACCES,
            HandoverError::WrongKind => Errno::EMEDIUMTYPE,
            HandoverError::Closed => Errno::EBADF,
            HandoverError::Sys(e) => *e,
        }
    }
}

impl From<HandoverError> for Errno {
    fn from(e: HandoverError) -> Errno {
        e.errno()
    }
}

impl fmt::Display for HandoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandoverError::UnknownHandle => f.write_str("no such handle (expired or used)"),
            HandoverError::OtherOwner => {
                f.write_str("the handle was handed over for another owner")
            }
            HandoverError::WrongKind => f.write_str("the handle is of another kind"),
            HandoverError::Closed => f.write_str("the hand-over intake is closed"),
            HandoverError::Sys(e) => write!(f, "system call failed: {e}"),
        }
    }
}

impl std::error::Error for HandoverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandoverError::Sys(e) => Some(e),
            _ => None,
        }
    }
}

/// Who handed a descriptor over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// Its pid (from `SO_PEERCRED`).
    pub pid: i32,
    /// Its effective uid at connect time.
    pub uid: u32,
    /// Its start time (clock ticks since boot).
    pub start: u64,
}

/// What a handle stands for (and what [`Server::take`] reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleInfo {
    /// The handle.
    pub handle: String,
    /// The owner it was handed over for.
    pub owner: String,
    /// Eventfd or VFIO device.
    pub kind: Kind,
    /// The sender.
    pub sender: Sender,
    /// The eventfd's identity (as sources report it: the kernel's id + 1); 0 for VFIO.
    pub eventfd_id: u64,
    /// The message it came in (handles of one message share it).
    pub batch: u64,
}

/// A descriptor handed over and not yet used.
pub(super) struct Entry {
    pub(super) fd: OwnedFd,
    pub(super) info: HandleInfo,
    pub(super) expires: Instant,
}

/// One accepted descriptor, as the agent is told of it.
pub type Received = HandleInfo;

/// The intake's counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages accepted.
    pub accepted: AtomicU64,
    /// Messages refused.
    pub refused: AtomicU64,
    /// Handles that expired unused.
    pub expired: AtomicU64,
    /// Descriptors closed on refusal or expiry.
    pub closed_fds: AtomicU64,
}

/// The unused handles, their count per sender uid, and the records the agent has not read.
#[derive(Default)]
pub(super) struct Table {
    pub(super) handles: HashMap<String, Entry>,
    pub(super) per_uid: HashMap<u32, usize>,
    pub(super) received: VecDeque<Received>,
    pub(super) batch: u64,
}

impl Table {
    /// Takes a handle out of the table, and out of its sender's count.
    pub(super) fn remove(&mut self, handle: &str) -> Option<Entry> {
        let e = self.handles.remove(handle)?;
        if let Some(n) = self.per_uid.get_mut(&e.info.sender.uid) {
            *n -= 1;
            if *n == 0 {
                self.per_uid.remove(&e.info.sender.uid);
            }
        }
        Some(e)
    }
}

/// Limits of one intake.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long an unused handle lives.
    pub ttl: Duration,
    /// Most unused handles in all.
    pub max_handles: usize,
    /// Most unused handles per sender uid.
    pub max_per_uid: usize,
}
