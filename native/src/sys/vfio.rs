//! The VFIO ioctls (include/uapi/linux/vfio.h; every request is `_IO(';', 100 + n)`), and
//! opening the VFIO character devices.

use super::fd::{set_cloexec, O_CLOEXEC};
use super::ffi;
use super::{check, new_fd, Errno, SysResult};
use std::ffi::{c_int, c_ulong};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

const fn vfio_io(n: c_ulong) -> c_ulong {
    // _IO(type, nr) = type << 8 | nr (no direction, no size bits).
    (0x3B << 8) | (100 + n)
}
const VFIO_GET_API_VERSION: c_ulong = vfio_io(0);
const VFIO_CHECK_EXTENSION: c_ulong = vfio_io(1);
const VFIO_SET_IOMMU: c_ulong = vfio_io(2);
const VFIO_GROUP_GET_STATUS: c_ulong = vfio_io(3);
const VFIO_GROUP_SET_CONTAINER: c_ulong = vfio_io(4);
const VFIO_GROUP_GET_DEVICE_FD: c_ulong = vfio_io(6);
const VFIO_DEVICE_GET_INFO: c_ulong = vfio_io(7);
const VFIO_DEVICE_GET_REGION_INFO: c_ulong = vfio_io(8);
const VFIO_DEVICE_IOEVENTFD: c_ulong = vfio_io(16);

const _: () = assert!(VFIO_GET_API_VERSION == 0x3B64);
const _: () = assert!(VFIO_DEVICE_GET_REGION_INFO == 0x3B6C);
const _: () = assert!(VFIO_DEVICE_IOEVENTFD == 0x3B74);

/// `struct vfio_group_status`.
#[repr(C)]
struct VfioGroupStatus {
    argsz: u32,
    flags: u32,
}

/// `struct vfio_device_info` (with the 5.x `cap_offset` and its padding).
#[repr(C)]
#[derive(Default)]
struct VfioDeviceInfoRaw {
    argsz: u32,
    flags: u32,
    num_regions: u32,
    num_irqs: u32,
    cap_offset: u32,
    pad: u32,
}

/// `struct vfio_region_info` (fixed part; capability chains are not requested).
#[repr(C)]
#[derive(Default)]
struct VfioRegionInfoRaw {
    argsz: u32,
    flags: u32,
    index: u32,
    cap_offset: u32,
    size: u64,
    offset: u64,
}

/// `struct vfio_device_ioeventfd` (28 bytes of fields, 32 with the tail padding).
#[repr(C)]
#[derive(Default)]
struct VfioIoeventfdRaw {
    argsz: u32,
    flags: u32,
    offset: u64,
    data: u64,
    fd: i32,
}

const _: () = assert!(std::mem::size_of::<VfioRegionInfoRaw>() == 32);
const _: () = assert!(std::mem::size_of::<VfioIoeventfdRaw>() == 32);
const _: () = assert!(std::mem::size_of::<VfioDeviceInfoRaw>() == 24);

/// `VFIO_GROUP_FLAGS_VIABLE`.
pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;

/// What `VFIO_DEVICE_GET_INFO` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfioDeviceInfo {
    /// `VFIO_DEVICE_FLAGS_*`.
    pub flags: u32,
    /// Regions of the device.
    pub num_regions: u32,
    /// Interrupt indexes of the device.
    pub num_irqs: u32,
}

/// What `VFIO_DEVICE_GET_REGION_INFO` tells about one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfioRegionInfo {
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Size in bytes.
    pub size: u64,
    /// Offset of the region within the device fd (for `mmap`/`pread` and ioeventfds).
    pub offset: u64,
}

/// `ioctl(fd, request, arg)` with an integer argument.
fn ioctl_int(fd: RawFd, request: c_ulong, arg: c_ulong) -> SysResult<c_int> {
    // SAFETY: the requests passed here (API version, check extension, set IOMMU) take an
    // integer argument, not a pointer; nothing in this process is read or written.
    check(unsafe { ffi::ioctl(fd, request, arg) })
}

/// `VFIO_GET_API_VERSION` on a container (`/dev/vfio/vfio`): 0 for the only version.
pub fn vfio_api_version(container: RawFd) -> SysResult<c_int> {
    ioctl_int(container, VFIO_GET_API_VERSION, 0)
}

/// `VFIO_CHECK_EXTENSION(ext)` on a container: whether the IOMMU type `ext` is usable.
pub fn vfio_check_extension(container: RawFd, ext: u32) -> SysResult<bool> {
    ioctl_int(container, VFIO_CHECK_EXTENSION, c_ulong::from(ext)).map(|r| r > 0)
}

/// `VFIO_SET_IOMMU(type)` on a container (after a group was attached).
pub fn vfio_set_iommu(container: RawFd, iommu_type: u32) -> SysResult<()> {
    ioctl_int(container, VFIO_SET_IOMMU, c_ulong::from(iommu_type)).map(|_| ())
}

/// `VFIO_GROUP_GET_STATUS`: the group's flags.
pub fn vfio_group_status(group: RawFd) -> SysResult<u32> {
    let mut st = VfioGroupStatus {
        argsz: std::mem::size_of::<VfioGroupStatus>() as u32,
        flags: 0,
    };
    // SAFETY: the request reads and writes one `struct vfio_group_status`, which `st` is
    // (repr(C), argsz set to its size); it lives for the duration of the call.
    check(unsafe {
        ffi::ioctl(
            group,
            VFIO_GROUP_GET_STATUS,
            &mut st as *mut VfioGroupStatus,
        )
    })?;
    Ok(st.flags)
}

/// `VFIO_GROUP_SET_CONTAINER`: attaches the group to the container.
pub fn vfio_group_set_container(group: RawFd, container: RawFd) -> SysResult<()> {
    let c: c_int = container;
    // SAFETY: the request reads one `__s32` (the container fd) through the pointer; `c`
    // is a live local int.
    check(unsafe { ffi::ioctl(group, VFIO_GROUP_SET_CONTAINER, &c as *const c_int) }).map(|_| ())
}

/// `VFIO_GROUP_GET_DEVICE_FD(name)`: a new device descriptor (close-on-exec is set here).
pub fn vfio_group_get_device_fd(group: RawFd, name: &[u8]) -> SysResult<OwnedFd> {
    let name = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the request reads a NUL-terminated string through the pointer; `name` is a
    // live CString for the duration of the call. The result is a new descriptor or -1.
    let fd = new_fd(unsafe { ffi::ioctl(group, VFIO_GROUP_GET_DEVICE_FD, name.as_ptr()) })?;
    set_cloexec(fd.as_raw_fd())?;
    Ok(fd)
}

/// `VFIO_DEVICE_GET_INFO` (`ENOTTY`/`EINVAL` when `fd` is not a VFIO device).
pub fn vfio_device_info(device: RawFd) -> SysResult<VfioDeviceInfo> {
    let mut info = VfioDeviceInfoRaw {
        argsz: 16, // the 4.x size: no capability chain is wanted
        ..Default::default()
    };
    // SAFETY: the kernel reads `argsz` and writes at most `argsz` (16) bytes of
    // `struct vfio_device_info` into `info`, a live repr(C) local of 24 bytes.
    check(unsafe {
        ffi::ioctl(
            device,
            VFIO_DEVICE_GET_INFO,
            &mut info as *mut VfioDeviceInfoRaw,
        )
    })?;
    Ok(VfioDeviceInfo {
        flags: info.flags,
        num_regions: info.num_regions,
        num_irqs: info.num_irqs,
    })
}

/// `VFIO_DEVICE_GET_REGION_INFO(index)`.
pub fn vfio_region_info(device: RawFd, index: u32) -> SysResult<VfioRegionInfo> {
    let mut info = VfioRegionInfoRaw {
        argsz: std::mem::size_of::<VfioRegionInfoRaw>() as u32,
        index,
        ..Default::default()
    };
    // SAFETY: the kernel reads and writes one fixed-size `struct vfio_region_info` (argsz
    // = its 32 bytes, so no capability chain is written past it) in the live local `info`.
    check(unsafe {
        ffi::ioctl(
            device,
            VFIO_DEVICE_GET_REGION_INFO,
            &mut info as *mut VfioRegionInfoRaw,
        )
    })?;
    Ok(VfioRegionInfo {
        flags: info.flags,
        size: info.size,
        offset: info.offset,
    })
}

/// `VFIO_DEVICE_IOEVENTFD`: asks the kernel to write `data` (`flags` = the width in bytes,
/// passed through unchecked: the kernel's own rules apply) at device-fd offset `offset`
/// whenever `efd` is signalled; `efd` = -1 removes the entry with that exact key.
pub fn vfio_device_ioeventfd(
    device: RawFd,
    offset: u64,
    flags: u32,
    data: u64,
    efd: i32,
) -> SysResult<()> {
    let req = VfioIoeventfdRaw {
        argsz: std::mem::size_of::<VfioIoeventfdRaw>() as u32,
        flags,
        offset,
        data,
        fd: efd,
    };
    // SAFETY: the kernel reads one `struct vfio_device_ioeventfd` (28 bytes, within the
    // 32 of `req`, a live repr(C) local) and writes nothing back.
    check(unsafe {
        ffi::ioctl(
            device,
            VFIO_DEVICE_IOEVENTFD,
            &req as *const VfioIoeventfdRaw,
        )
    })
    .map(|_| ())
}

/// Opens `path` read-write, close-on-exec (the VFIO character devices).
pub fn open_rw(path: &std::path::Path) -> SysResult<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| Errno::from_io(&e))
}
