//! What a registration asks for: one request type for every backend. The BAR it writes is
//! either a resource file or a VFIO device's region ([`Bar`]); everything else (offset,
//! width, data, eventfd, source process) is the same for all of them.

use super::backend::VfioMode;
use std::os::fd::RawFd;
use std::path::Path;

/// Where the BAR of a registration is.
#[derive(Debug, Clone, Copy)]
pub enum Bar<'a> {
    /// A sysfs `resourceN` file (or a regular file standing in for one), mapped whole.
    File(&'a Path),
    /// BAR `region` (0..=5) of a VFIO device; `mode` picks the backend.
    Vfio {
        /// A VFIO device descriptor of this process (not taken over; duplicated as needed).
        device: RawFd,
        /// The BAR region index, 0..=5.
        region: u32,
        /// Kernel, engine, or the kernel with a fallback.
        mode: VfioMode,
    },
}

/// One registration request (`register`, `register_vfio`, `register_batch`).
#[derive(Debug, Clone, Copy)]
pub struct RegisterRequest<'a> {
    /// The BAR written.
    pub bar: Bar<'a>,
    /// Byte offset in the BAR (naturally aligned for `width`).
    pub offset: u64,
    /// Access width in bytes: 1, 2, 4 or 8.
    pub width: u32,
    /// The value written (little-endian, truncated to `width`).
    pub data: u64,
    /// The source: an eventfd, owned by the engine only once registration succeeds.
    pub efd: RawFd,
    /// The source process to watch for exit (0 = none).
    pub pid: i32,
    /// Its expected start time (0 = don't check).
    pub pid_start: u64,
}

impl<'a> RegisterRequest<'a> {
    /// A request on a resource file; `bar` and the rest set as given.
    pub fn file(bar_path: &'a Path, offset: u64, width: u32, data: u64, efd: RawFd) -> Self {
        RegisterRequest {
            bar: Bar::File(bar_path),
            offset,
            width,
            data,
            efd,
            pid: 0,
            pid_start: 0,
        }
    }
}

/// A watched source process: the pid and the start time that make it one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SourceProcess {
    pub pid: i32,
    pub start: u64,
}
