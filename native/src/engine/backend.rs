//! The backends and the VFIO backend policy: which backend a VFIO request tries first, and
//! which kernel refusals it may route around (only the kernel's own limits, never a rule
//! the engine shares).

use super::RegisterError;
use crate::sys::{Errno, VfioRegionInfo};
use crate::vfio::{self, VfioError};
use std::os::fd::RawFd;

/// Which backend serves a registration (`ioeventd_registration_backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The engine writes through an mmap of a `resourceN` file.
    UserMmap = 1,
    /// The engine writes through an mmap of a VFIO device's BAR region.
    VfioMmap = 2,
    /// The kernel writes (`VFIO_DEVICE_IOEVENTFD`); no user-space hop, no counters.
    Kernel = 3,
}

impl Backend {
    /// The ABI code (1, 2, 3).
    pub(crate) fn code(self) -> u64 {
        self as u64
    }
}

/// Backend selection for a VFIO registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VfioMode {
    /// The kernel, falling back to `VfioMmap` where the kernel refuses for a reason the
    /// engine does not share (see [`may_fall_back`]).
    Auto,
    /// `VfioMmap` only.
    VfioMmap,
    /// The kernel only: its refusal is returned as is.
    Kernel,
}

impl VfioMode {
    /// 0 auto, 2 vfio-mmap, 3 kernel — the backend codes.
    pub(crate) fn from_u32(v: u32) -> Option<VfioMode> {
        match v {
            0 => Some(VfioMode::Auto),
            2 => Some(VfioMode::VfioMmap),
            3 => Some(VfioMode::Kernel),
            _ => None,
        }
    }
}

/// Whether to ask the kernel first. The kernel's wake-up callback consumes the eventfd's
/// counter (drivers/vfio/virqfd.c), so the kernel and the workers cannot share an eventfd:
/// `Auto` on an eventfd the workers already watch joins them, `Kernel` there is
/// [`RegisterError::Busy`].
pub(crate) fn kernel_first(
    mode: VfioMode,
    watched_by_workers: bool,
) -> Result<bool, RegisterError> {
    match mode {
        VfioMode::VfioMmap => Ok(false),
        VfioMode::Kernel if watched_by_workers => Err(RegisterError::Busy),
        VfioMode::Kernel => Ok(true),
        VfioMode::Auto => Ok(!watched_by_workers),
    }
}

/// Whether `Auto` may fall back to `VfioMmap` after the kernel refused with `e`: `ENOSPC`
/// (1000 per device), `ENOTTY`/`EOPNOTSUPP`/`ENOSYS` (no support), and an `EINVAL` for an
/// 8-byte write at a position the kernel accepts at 4 bytes (its width rule). Anything else
/// (`EEXIST`, the MSI-X table, a refusal that is not the kernel's) is returned, never
/// routed around.
pub(crate) fn may_fall_back(
    e: &RegisterError,
    device: RawFd,
    region: &VfioRegionInfo,
    offset: u64,
    width: u32,
) -> bool {
    let RegisterError::Vfio(VfioError::Kernel(e)) = e else {
        return false;
    };
    match *e {
        Errno::ENOSPC | Errno::ENOTTY | Errno::EOPNOTSUPP | Errno::ENOSYS => true,
        Errno::EINVAL if width == 8 => vfio::refused_for_width_only(device, region, offset),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_first_by_mode() {
        assert_eq!(kernel_first(VfioMode::Auto, false), Ok(true));
        assert_eq!(kernel_first(VfioMode::Auto, true), Ok(false));
        assert_eq!(kernel_first(VfioMode::VfioMmap, false), Ok(false));
        assert_eq!(kernel_first(VfioMode::Kernel, false), Ok(true));
        assert_eq!(
            kernel_first(VfioMode::Kernel, true).map_err(Errno::from),
            Err(Errno::EBUSY)
        );
        assert_eq!(VfioMode::from_u32(1), None);
    }
}
