//! What a hand-over between agents needs of the engine (README.md, "Upgrades"): the
//! descriptors a registration is served with (to pass them to the successor), leaving the
//! kernel's `VFIO_DEVICE_IOEVENTFD` entries in the kernel when this engine closes, and, on
//! the successor's side, adopting such an entry without assigning its key again (the kernel
//! would answer `EEXIST`: the entry lives as long as the device file, which the VMM holds).

use super::backend::Backend;
use super::request::SourceProcess;
use super::table::{RegInfo, Served};
use super::{Engine, EngineError, RegisterError};
use crate::mmio::{MmioError, Width};
use crate::source;
use crate::stats::RegStats;
use crate::sys;
use crate::vfio::{self, KernelIoeventfd};
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// A kernel entry to adopt: its key, the eventfd it is assigned with and the device.
pub struct Adoption {
    /// The VFIO device descriptor (this process's; duplicated, not taken).
    pub device: RawFd,
    /// BAR index (= VFIO region).
    pub region: u32,
    /// Offset in the BAR.
    pub offset: u64,
    /// 1, 2, 4 or 8.
    pub width: u32,
    /// The value the kernel writes.
    pub data: u64,
    /// The eventfd the entry listens on; the engine owns it once adopted.
    pub efd: RawFd,
    /// Source process to watch for exit (0: none) and its start time.
    pub pid: i32,
    /// Start time of `pid`.
    pub pid_start: u64,
}

impl Engine {
    /// Duplicates of the descriptors registration `id` is served with: its eventfd, and for
    /// a kernel-served one the VFIO device the entry belongs to.
    pub fn registration_fds(&self, id: u64) -> Result<(OwnedFd, Option<OwnedFd>), EngineError> {
        let st = self.open_state()?;
        let r = st.regs.get(&id).ok_or(EngineError::UnknownId)?;
        match &r.served {
            Served::Worker { key, .. } => {
                let w = st.watched.get(key).ok_or(EngineError::UnknownId)?;
                Ok((sys::dup(w.fd)?, None))
            }
            Served::Kernel { entry, .. } => {
                Ok((sys::dup(entry.efd())?, Some(sys::dup(entry.device())?)))
            }
        }
    }

    /// From now on, dropping this engine's kernel entries (unregister, close) leaves them
    /// assigned: a successor adopted them. Returns how many there are.
    pub fn leave_kernel_entries(&self) -> Result<usize, EngineError> {
        let mut st = self.open_state()?;
        let mut n = 0;
        for r in st.regs.values_mut() {
            if let Served::Kernel { entry, .. } = &mut r.served {
                entry.leave_in_kernel();
                n += 1;
            }
        }
        Ok(n)
    }

    /// Records a kernel entry a predecessor left assigned, as a kernel-served registration
    /// of this engine, without an ioctl; returns its id. The same checks as a registration
    /// on a VFIO BAR (width, alignment, eventfd, bounds); an eventfd the workers watch is
    /// `EBUSY` (the kernel and the workers never share one).
    pub fn adopt_kernel(&self, a: &Adoption) -> Result<u64, RegisterError> {
        let width = Width::from_bytes(a.width)?;
        if !a.offset.is_multiple_of(width.bytes()) {
            return Err(MmioError::Misaligned.into());
        }
        if a.efd < 0 {
            return Err(RegisterError::FdNotOpen);
        }
        sys::fstat(a.efd).map_err(RegisterError::Sys)?;
        let id = source::eventfd_fdinfo(a.efd).ok_or(RegisterError::NotEventfd)?;
        vfio::check_device(a.device)?;
        let info = vfio::bar_region(a.device, a.region)?;
        match a.offset.checked_add(u64::from(a.width)) {
            Some(end) if end <= info.size => {}
            _ => return Err(MmioError::OutOfRange.into()),
        }
        let mut st = self.open_state()?;
        if st.held.contains(&a.efd) {
            return Err(RegisterError::DuplicateFd);
        }
        let key = st.eventfd_key(std::iter::empty(), a.efd, id);
        if st.watched.contains_key(&key) {
            return Err(RegisterError::Busy);
        }
        let process = if a.pid > 0 {
            let start = self.monitor.watch(a.pid, a.pid_start)?;
            Some(SourceProcess { pid: a.pid, start })
        } else {
            None
        };
        let efd = sys::own_fd(a.efd);
        match KernelIoeventfd::adopt(a.device, &info, a.offset, a.width, a.data, efd) {
            Ok(entry) => {
                let _ = sys::set_cloexec(entry.efd());
                st.held.insert(entry.efd());
                *st.kernel_served.entry(key).or_default() += 1;
                let id = st.take_id();
                st.regs.insert(
                    id,
                    RegInfo {
                        served: Served::Kernel { entry, key },
                        backend: Backend::Kernel,
                        source_process: process,
                        stats: Arc::new(RegStats::default()),
                    },
                );
                Ok(id)
            }
            Err((e, efd)) => {
                let _ = efd.into_raw_fd(); // the caller's again
                if let Some(p) = process {
                    self.monitor.unwatch(p.pid, p.start);
                }
                Err(e.into())
            }
        }
    }
}
