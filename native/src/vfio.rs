//! VFIO: opening a vfio-pci device (container + group, for tests and hosts where the agent
//! owns the device), acquiring one from the VMM that holds it (`pidfd_getfd`), BAR region
//! lookup, and the kernel's own ioeventfd (`VFIO_DEVICE_IOEVENTFD`).
//!
//! The kernel's rules for `VFIO_DEVICE_IOEVENTFD` (vfio_pci_rdwr.c): width exactly one of
//! 1/2/4/8 (8 refused where the kernel build has no 64-bit MMIO accessor — reported for
//! some kernels since 6.14, yet Debian's 6.1 and 7.3 both accept it: `test/vm/` asks each);
//! BAR0..5 only; `pos + width` within the BAR; no overlap with the MSI-X table; the key
//! `(BAR, pos, width, data)` is unique per device (`EEXIST`), `fd = -1` removes it (`ENODEV`
//! when absent); at most 1000 per device (`ENOSPC`). No alignment rule. [`KernelIoeventfd`]
//! is one such entry owned by this process: dropping it removes it from the kernel.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

use crate::source::{self, SourceError};
use crate::sys::{self, Errno, VfioRegionInfo};
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Why a VFIO operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VfioError {
    /// The descriptor is not a vfio-pci device (`EMEDIUMTYPE`).
    NotVfioDevice,
    /// The descriptor is not open (`EBADF`).
    BadFd,
    /// A region index beyond BAR5 (`EINVAL`).
    NotABar,
    /// Not a PCI address (empty, `/`, leading `.`; `EINVAL`).
    BadAddress,
    /// No such PCI device (`ENOENT`).
    NoSuchDevice,
    /// The device has no IOMMU group (`ENODEV`).
    NoIommuGroup,
    /// The group is not viable (another of its devices is bound to a host driver; `EBUSY`).
    GroupNotViable,
    /// No VFIO API 0 with a type1 IOMMU (`EOPNOTSUPP`).
    NoType1Iommu,
    /// Taking the device from the process holding it failed.
    Source(SourceError),
    /// The kernel refused `VFIO_DEVICE_IOEVENTFD`: its errno, its rule.
    Kernel(Errno),
    /// Any other failure of a system call.
    Sys(Errno),
}

impl VfioError {
    /// The errno the C ABI reports.
    pub fn errno(&self) -> Errno {
        match self {
            VfioError::NotVfioDevice => Errno::EMEDIUMTYPE,
            VfioError::BadFd => Errno::EBADF,
            VfioError::NotABar | VfioError::BadAddress => Errno::EINVAL,
            VfioError::NoSuchDevice => Errno::ENOENT,
            VfioError::NoIommuGroup => Errno::ENODEV,
            VfioError::GroupNotViable => Errno::EBUSY,
            VfioError::NoType1Iommu => Errno::EOPNOTSUPP,
            VfioError::Source(e) => e.errno(),
            VfioError::Kernel(e) | VfioError::Sys(e) => *e,
        }
    }
}

impl From<VfioError> for Errno {
    fn from(e: VfioError) -> Errno {
        e.errno()
    }
}

impl fmt::Display for VfioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VfioError::NotVfioDevice => f.write_str("not a vfio-pci device"),
            VfioError::BadFd => f.write_str("the device descriptor is not open"),
            VfioError::NotABar => f.write_str("the region is not a BAR (0..=5)"),
            VfioError::BadAddress => f.write_str("not a PCI address"),
            VfioError::NoSuchDevice => f.write_str("no such PCI device"),
            VfioError::NoIommuGroup => f.write_str("the device has no IOMMU group"),
            VfioError::GroupNotViable => f.write_str("the IOMMU group is not viable"),
            VfioError::NoType1Iommu => f.write_str("no VFIO type1 IOMMU"),
            VfioError::Source(e) => write!(f, "taking the device: {e}"),
            VfioError::Kernel(e) => write!(f, "the kernel refused the ioeventfd: {e}"),
            VfioError::Sys(e) => write!(f, "system call failed: {e}"),
        }
    }
}

impl std::error::Error for VfioError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VfioError::Source(e) => Some(e),
            VfioError::Kernel(e) | VfioError::Sys(e) => Some(e),
            _ => None,
        }
    }
}

/// `VFIO_DEVICE_FLAGS_PCI`.
pub(crate) const DEVICE_FLAGS_PCI: u32 = 1 << 1;
/// `VFIO_REGION_INFO_FLAG_MMAP`.
pub(crate) const REGION_FLAG_MMAP: u32 = 1 << 2;
/// `VFIO_TYPE1_IOMMU` and `VFIO_TYPE1v2_IOMMU`.
const TYPE1_IOMMU: u32 = 1;
const TYPE1V2_IOMMU: u32 = 3;
/// The last BAR region index of vfio-pci (`VFIO_PCI_BAR5_REGION_INDEX`).
pub(crate) const LAST_BAR_REGION: u32 = 5;

/// Checks that `fd` is a vfio-pci device descriptor.
pub(crate) fn check_device(fd: RawFd) -> Result<sys::VfioDeviceInfo, VfioError> {
    match sys::vfio_device_info(fd) {
        Ok(info) if info.flags & DEVICE_FLAGS_PCI != 0 => Ok(info),
        Ok(_) => Err(VfioError::NotVfioDevice),
        Err(Errno::EBADF) => Err(VfioError::BadFd),
        Err(_) => Err(VfioError::NotVfioDevice),
    }
}

/// The IOMMU group number of a PCI device (`/sys/bus/pci/devices/<addr>/iommu_group`).
/// [`VfioError::NoSuchDevice`] no such device, [`VfioError::NoIommuGroup`] it has none.
pub fn iommu_group(pci_address: &str) -> Result<String, VfioError> {
    if pci_address.is_empty() || pci_address.contains('/') || pci_address.starts_with('.') {
        return Err(VfioError::BadAddress);
    }
    let dev = Path::new("/sys/bus/pci/devices").join(pci_address);
    if !dev.exists() {
        return Err(VfioError::NoSuchDevice);
    }
    let link = std::fs::read_link(dev.join("iommu_group")).map_err(|_| VfioError::NoIommuGroup)?;
    link.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or(VfioError::NoIommuGroup)
}

/// Opens the vfio-pci device `pci_address` the legacy way: `/dev/vfio/vfio` (API 0, a
/// type1 IOMMU), `/dev/vfio/<group>`, attach, set the IOMMU, `VFIO_GROUP_GET_DEVICE_FD`.
/// The container and group descriptors are closed before returning: the device file holds
/// the group (and through it the container) for as long as it is open. Errors: `ENOENT`
/// no such device or no `/dev/vfio/<group>` (not bound to vfio-pci), `ENODEV` no IOMMU
/// group, `EBUSY` the group is not viable (another device of it is bound to a host driver)
/// or already open (the kernel's `EBUSY`), `EOPNOTSUPP` no type1 IOMMU.
pub(crate) fn open_device(pci_address: &str) -> Result<OwnedFd, VfioError> {
    let group_no = iommu_group(pci_address)?;
    let container = sys::open_rw(Path::new("/dev/vfio/vfio")).map_err(VfioError::Sys)?;
    let c = container.as_raw_fd();
    if sys::vfio_api_version(c).map_err(VfioError::Sys)? != 0 {
        return Err(VfioError::NoType1Iommu);
    }
    let iommu = if sys::vfio_check_extension(c, TYPE1V2_IOMMU).map_err(VfioError::Sys)? {
        TYPE1V2_IOMMU
    } else if sys::vfio_check_extension(c, TYPE1_IOMMU).map_err(VfioError::Sys)? {
        TYPE1_IOMMU
    } else {
        return Err(VfioError::NoType1Iommu);
    };
    let group = sys::open_rw(&Path::new("/dev/vfio").join(&group_no)).map_err(VfioError::Sys)?;
    let g = group.as_raw_fd();
    if sys::vfio_group_status(g).map_err(VfioError::Sys)? & sys::VFIO_GROUP_FLAGS_VIABLE == 0 {
        return Err(VfioError::GroupNotViable);
    }
    sys::vfio_group_set_container(g, c).map_err(VfioError::Sys)?;
    sys::vfio_set_iommu(c, iommu).map_err(VfioError::Sys)?;
    let device =
        sys::vfio_group_get_device_fd(g, pci_address.as_bytes()).map_err(VfioError::Sys)?;
    check_device(device.as_raw_fd())?;
    Ok(device)
}

/// Duplicates the VFIO device descriptor `fd` of process `pid` (the VMM) into this
/// process. `ESRCH`/`EBADF`/`EPERM` as for eventfd sources, `EMEDIUMTYPE` when it is not a
/// vfio-pci device.
pub(crate) fn acquire(pid: i32, fd: i32) -> Result<OwnedFd, VfioError> {
    let pidfd = source::pidfd(pid, fd).map_err(VfioError::Source)?;
    let local = source::getfd(&pidfd, fd).map_err(VfioError::Source)?;
    check_device(local.as_raw_fd())?;
    sys::set_cloexec(local.as_raw_fd()).map_err(VfioError::Sys)?;
    Ok(local)
}

/// Region information of region `index` of a device (any index the device has).
pub(crate) fn region_info(device: RawFd, index: u32) -> Result<VfioRegionInfo, VfioError> {
    sys::vfio_region_info(device, index).map_err(VfioError::Sys)
}

/// Region information of BAR `index` (0..=5): [`VfioError::NotABar`] for any other index.
pub(crate) fn bar_region(device: RawFd, index: u32) -> Result<VfioRegionInfo, VfioError> {
    if index > LAST_BAR_REGION {
        return Err(VfioError::NotABar);
    }
    region_info(device, index)
}

/// `VFIO_PCI_CONFIG_REGION_INDEX`: the device's config space.
const CONFIG_REGION: u32 = 7;

/// Up to `max` bytes of the device's config space, read from its config region through
/// the device descriptor (`pread` at the region's offset, on a duplicate of it). What
/// vfio-pci returns is its virtualized view, whose MSI-X capability reports the device's
/// own table and PBA registers.
pub(crate) fn read_config(device: RawFd, max: usize) -> Result<Vec<u8>, VfioError> {
    use std::os::unix::fs::FileExt;
    let info = region_info(device, CONFIG_REGION)?;
    let len = usize::try_from(info.size).map_or(max, |s| s.min(max));
    let file = std::fs::File::from(sys::dup(device).map_err(VfioError::Sys)?);
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], info.offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(VfioError::Sys(Errno::from_io(&e))),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// The raw kernel call, relative to region `region`: `efd` ≥ 0 assigns, -1 de-assigns.
/// `width` is passed as the kernel's flags unchecked (its flag bits equal the width in
/// bytes), so every refusal is the kernel's own. The eventfd is not taken over: the
/// kernel holds its own reference.
pub(crate) fn kernel_ioeventfd(
    device: RawFd,
    region: u32,
    offset: u64,
    width: u32,
    data: u64,
    efd: i32,
) -> Result<(), VfioError> {
    let info = region_info(device, region)?;
    let at = info
        .offset
        .checked_add(offset)
        .ok_or(VfioError::Kernel(Errno::EINVAL))?;
    sys::vfio_device_ioeventfd(device, at, width, data, efd).map_err(VfioError::Kernel)
}

/// An ioeventfd served by the kernel, owned by this process. Dropping it de-assigns it
/// (`fd = -1` with the same key) and closes the eventfd.
pub(crate) struct KernelIoeventfd {
    device: OwnedFd,
    at: u64,
    width: u32,
    data: u64,
    efd: OwnedFd,
    /// Handed over to a successor agent: dropping it closes the descriptors only, and the
    /// kernel keeps serving the entry (it lives as long as the device file).
    left_in_kernel: bool,
}

impl KernelIoeventfd {
    /// Assigns `(region offset + offset, width, data) ← efd` on a duplicate of `device`
    /// (so the device stays open, and the entry alive, as long as this value). On failure
    /// `efd` is handed back with the error ([`VfioError::Kernel`]: the kernel's refusal).
    pub(crate) fn assign(
        device: RawFd,
        region: &VfioRegionInfo,
        offset: u64,
        width: u32,
        data: u64,
        efd: OwnedFd,
    ) -> Result<KernelIoeventfd, (VfioError, OwnedFd)> {
        let at = match region.offset.checked_add(offset) {
            Some(at) => at,
            None => return Err((VfioError::Kernel(Errno::EINVAL), efd)),
        };
        let device = match sys::dup(device) {
            Ok(d) => d,
            Err(e) => return Err((VfioError::Sys(e), efd)),
        };
        match sys::vfio_device_ioeventfd(device.as_raw_fd(), at, width, data, efd.as_raw_fd()) {
            Ok(()) => Ok(KernelIoeventfd {
                device,
                at,
                width,
                data,
                efd,
                left_in_kernel: false,
            }),
            Err(e) => Err((VfioError::Kernel(e), efd)),
        }
    }

    /// An entry the kernel already serves (a predecessor agent assigned it and left it in
    /// the kernel at hand-over): recorded on a duplicate of `device`, without an ioctl
    /// (assigning the same key again fails with `EEXIST`). Dropping it de-assigns it.
    pub(crate) fn adopt(
        device: RawFd,
        region: &VfioRegionInfo,
        offset: u64,
        width: u32,
        data: u64,
        efd: OwnedFd,
    ) -> Result<KernelIoeventfd, (VfioError, OwnedFd)> {
        let at = match region.offset.checked_add(offset) {
            Some(at) => at,
            None => return Err((VfioError::Kernel(Errno::EINVAL), efd)),
        };
        match sys::dup(device) {
            Ok(device) => Ok(KernelIoeventfd {
                device,
                at,
                width,
                data,
                efd,
                left_in_kernel: false,
            }),
            Err(e) => Err((VfioError::Sys(e), efd)),
        }
    }

    /// The eventfd the kernel listens on.
    pub(crate) fn efd(&self) -> RawFd {
        self.efd.as_raw_fd()
    }

    /// The device descriptor the entry belongs to.
    pub(crate) fn device(&self) -> RawFd {
        self.device.as_raw_fd()
    }

    /// A successor serves this entry now: dropping it must not de-assign it (the key is the
    /// same, so a de-assign would remove the entry the successor adopted).
    pub(crate) fn leave_in_kernel(&mut self) {
        self.left_in_kernel = true;
    }
}

impl Drop for KernelIoeventfd {
    fn drop(&mut self) {
        if self.left_in_kernel {
            return;
        }
        let _ =
            sys::vfio_device_ioeventfd(self.device.as_raw_fd(), self.at, self.width, self.data, -1);
    }
}

/// Whether an 8-byte request the kernel refused with `EINVAL` was refused for its width
/// only: the same position is probed as two 4-byte entries on a scratch eventfd (removed
/// at once). A position the kernel refuses for another reason (the MSI-X table) fails the
/// probe, so the caller does not route around that rule.
pub(crate) fn refused_for_width_only(device: RawFd, region: &VfioRegionInfo, offset: u64) -> bool {
    const PROBE_DATA: u64 = 0x696f_6576_7072_6f62; // "ioevprob"
    let Ok(scratch) = sys::eventfd(0, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK) else {
        return false;
    };
    [offset, offset.wrapping_add(4)].iter().all(|&pos| {
        let Some(at) = region.offset.checked_add(pos) else {
            return false;
        };
        match sys::vfio_device_ioeventfd(device, at, 4, PROBE_DATA, scratch.as_raw_fd()) {
            Ok(()) => {
                let _ = sys::vfio_device_ioeventfd(device, at, 4, PROBE_DATA, -1);
                true
            }
            // The position passed every check that comes before these two.
            Err(Errno::EEXIST) | Err(Errno::ENOSPC) => true,
            Err(_) => false,
        }
    })
}

/// What this host offers, for the agent's capabilities: bit 0 = a VFIO container with a
/// type1 IOMMU can be opened (`/dev/vfio/vfio`), bit 1 = the vfio-pci driver is
/// registered (`/sys/bus/pci/drivers/vfio-pci`).
pub(crate) fn probe() -> u32 {
    let mut bits = 0;
    if let Ok(c) = sys::open_rw(Path::new("/dev/vfio/vfio")) {
        let fd = c.as_raw_fd();
        let type1 = sys::vfio_check_extension(fd, TYPE1V2_IOMMU).unwrap_or(false)
            || sys::vfio_check_extension(fd, TYPE1_IOMMU).unwrap_or(false);
        if sys::vfio_api_version(fd) == Ok(0) && type1 {
            bits |= 1;
        }
    }
    if Path::new("/sys/bus/pci/drivers/vfio-pci").is_dir() {
        bits |= 2;
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_vfio_descriptors_are_refused() {
        let e = sys::eventfd(0, sys::EFD_CLOEXEC).unwrap();
        let errno = |e: Option<VfioError>| e.map(Errno::from);
        assert_eq!(
            errno(check_device(e.as_raw_fd()).err()),
            Some(Errno::EMEDIUMTYPE)
        );
        assert_eq!(errno(check_device(-1).err()), Some(Errno::EBADF));
        assert_eq!(
            errno(kernel_ioeventfd(e.as_raw_fd(), 0, 0, 4, 0, -1).err()),
            Some(Errno::ENOTTY)
        );
        assert_eq!(
            errno(bar_region(e.as_raw_fd(), 6).err()),
            Some(Errno::EINVAL)
        );
        // The config region is read through the device's descriptor: an eventfd has none.
        assert_eq!(
            errno(read_config(e.as_raw_fd(), 256).err()),
            Some(Errno::ENOTTY)
        );
        let me = std::process::id() as i32;
        assert_eq!(
            errno(acquire(me, e.as_raw_fd()).err()),
            Some(Errno::EMEDIUMTYPE)
        );
        assert_eq!(errno(acquire(0, 0).err()), Some(Errno::ESRCH));
        assert_eq!(errno(acquire(me, -1).err()), Some(Errno::EBADF));
    }

    #[test]
    fn open_device_rejects_bad_addresses() {
        let errno = |e: Option<VfioError>| e.map(Errno::from);
        assert_eq!(errno(open_device("").err()), Some(Errno::EINVAL));
        assert_eq!(errno(open_device("../x").err()), Some(Errno::EINVAL));
        assert_eq!(
            errno(open_device("ffff:ff:1f.7").err()),
            Some(Errno::ENOENT)
        );
    }

    #[test]
    fn probe_does_not_fail() {
        assert!(probe() <= 3);
    }
}
