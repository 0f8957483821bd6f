//! VFIO devices: opening one, taking one from the VMM, region lookup, the raw kernel
//! ioeventfd, and host detection.

use super::ret_i32;
use crate::abi_layout as layout;
use crate::sys::{self, Errno};
use crate::vfio;
use std::os::fd::IntoRawFd;

/// Opens the vfio-pci device at `pci_address` (container + group); returns its device fd.
#[no_mangle]
pub extern "C" fn ioeventd_vfio_open(pci_address: *const u8) -> i32 {
    ret_i32((|| {
        let addr = sys::abi_cstr(pci_address).ok_or(Errno::EFAULT)?;
        let addr = std::str::from_utf8(addr).map_err(|_| Errno::EINVAL)?;
        Ok(vfio::open_device(addr)?.into_raw_fd())
    })())
}

/// Duplicates VFIO device fd `fd` of process `pid` (the VMM) into this process.
#[no_mangle]
pub extern "C" fn ioeventd_vfio_acquire(pid: i32, fd: i32) -> i32 {
    ret_i32((|| Ok(vfio::acquire(pid, fd)?.into_raw_fd()))())
}

/// Region `region` of a VFIO device into `out` (`region` layout).
#[no_mangle]
pub extern "C" fn ioeventd_vfio_region_info(vfio_fd: i32, region: u32, out: *mut u64) -> i32 {
    ret_i32((|| {
        let out = sys::abi_slice_mut(out, layout::region::LEN as u64).ok_or(Errno::EFAULT)?;
        vfio::check_device(vfio_fd)?;
        let info = sys::vfio_region_info(vfio_fd, region)?;
        out[layout::region::SIZE] = info.size;
        out[layout::region::OFFSET] = info.offset;
        out[layout::region::FLAGS] = u64::from(info.flags);
        Ok(0)
    })())
}

/// The raw `VFIO_DEVICE_IOEVENTFD` (`efd` -1 de-assigns): the kernel's rules, unfiltered.
#[no_mangle]
pub extern "C" fn ioeventd_kernel_ioeventfd(
    vfio_fd: i32,
    region: u32,
    offset: u64,
    width: u32,
    data: u64,
    efd: i32,
) -> i32 {
    ret_i32((|| {
        vfio::kernel_ioeventfd(vfio_fd, region, offset, width, data, efd)?;
        Ok(0)
    })())
}

/// Host detection: bit 0 a VFIO type1 container opens, bit 1 vfio-pci is registered.
#[no_mangle]
pub extern "C" fn ioeventd_vfio_probe() -> u32 {
    vfio::probe()
}
