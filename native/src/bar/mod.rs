//! BAR mappings: a shared read-write `mmap` of a whole `resourceN` file (or any regular
//! file standing in for one), or of a whole VFIO BAR region, ref-counted per BAR.
//!
//! For a real sysfs `resourceN` file, `st_size` is the BAR's length and the file expects
//! `O_SYNC`. A VFIO region is mapped at its region offset with its size
//! (`VFIO_DEVICE_GET_REGION_INFO`); the mapping keeps a duplicate of the device descriptor,
//! so the device stays open while it is mapped. A mapping lives as long as any `Arc` to it;
//! the table drops its own `Arc` when the last registration using the BAR is released, so
//! the BAR is unmapped then. The table is in `table.rs`.

use crate::sys::{self, Errno};
use crate::vfio::{self, VfioError};
use std::fmt;
use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod table;

pub(crate) use table::BarTable;

/// Why a BAR cannot be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarError {
    /// The file cannot be resolved or opened (its errno: `ENOENT`, `EACCES`, ...).
    Open(Errno),
    /// A zero-length file or a zero-size (absent) BAR region (`EINVAL`).
    Empty,
    /// Longer than the address space (`EINVAL`).
    TooLarge,
    /// The VFIO region cannot be mmapped: no `VFIO_REGION_INFO_FLAG_MMAP` (`EOPNOTSUPP`).
    NotMappable,
    /// The VFIO device or region lookup failed.
    Vfio(VfioError),
    /// `fstat`, `mmap` or `dup` failed.
    Sys(Errno),
}

impl BarError {
    /// The errno the C ABI reports.
    pub fn errno(&self) -> Errno {
        match self {
            BarError::Open(e) | BarError::Sys(e) => *e,
            BarError::Empty | BarError::TooLarge => Errno::EINVAL,
            BarError::NotMappable => Errno::EOPNOTSUPP,
            BarError::Vfio(e) => e.errno(),
        }
    }
}

impl From<BarError> for Errno {
    fn from(e: BarError) -> Errno {
        e.errno()
    }
}

impl fmt::Display for BarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarError::Open(e) => write!(f, "cannot open the BAR: {e}"),
            BarError::Empty => f.write_str("the BAR is empty"),
            BarError::TooLarge => f.write_str("the BAR is larger than the address space"),
            BarError::NotMappable => f.write_str("the VFIO region cannot be mmapped"),
            BarError::Vfio(e) => write!(f, "VFIO: {e}"),
            BarError::Sys(e) => write!(f, "system call failed: {e}"),
        }
    }
}

impl std::error::Error for BarError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BarError::Open(e) | BarError::Sys(e) => Some(e),
            BarError::Vfio(e) => Some(e),
            _ => None,
        }
    }
}

/// Where a mapping comes from.
pub(crate) enum Origin {
    /// A `resourceN` file (or a regular file), by canonical path.
    File(PathBuf),
    /// A BAR region of a VFIO device (a duplicate of the caller's device descriptor).
    Vfio {
        /// The duplicate of the device descriptor (keeps the device open while mapped).
        device: OwnedFd,
        /// The BAR region index.
        region: u32,
    },
}

/// One mapped BAR.
pub struct Mapping {
    origin: Origin,
    map: sys::Mmap,
    device: u64,
}

/// FNV-1a (64 bit): a stable hash, the same in every process and build.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The device a BAR file belongs to: the canonical directory holding it (for a sysfs
/// `resourceN`, the PCI device's directory under `/sys/devices`).
fn file_device_key(canonical: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    canonical
        .parent()
        .unwrap_or(canonical)
        .as_os_str()
        .as_bytes()
        .to_vec()
}

/// The device a VFIO device descriptor belongs to: its sysfs directory
/// (`vfio-device-syspath:` in fdinfo, newer kernels), the same key as its `resourceN`
/// files; else what `/proc/self/fd/<fd>` names (`/dev/vfio/devices/vfioN` for a cdev
/// open; group-opened devices all read `anon_inode:[vfio-device]` and so share one key).
fn vfio_device_key(device: RawFd) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let syspath = crate::procfs::read(format!("/proc/self/fdinfo/{device}"))
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("vfio-device-syspath:"))
                .map(|p| p.trim().to_owned())
        });
    if let Some(p) = syspath {
        let canonical = std::fs::canonicalize(&p).unwrap_or_else(|_| PathBuf::from(&p));
        return canonical.as_os_str().as_bytes().to_vec();
    }
    std::fs::read_link(format!("/proc/self/fd/{device}"))
        .map(|t| t.as_os_str().as_bytes().to_vec())
        .unwrap_or_default()
}

/// The canonical form of `path` (a BAR is known by it).
pub(crate) fn canonical(path: &Path) -> Result<PathBuf, BarError> {
    std::fs::canonicalize(path).map_err(|e| BarError::Open(Errno::from_io(&e)))
}

impl Mapping {
    /// Opens `path` (`O_RDWR|O_SYNC|O_CLOEXEC`) and maps all of it. The descriptor is
    /// closed once mapped. A zero-length file is [`BarError::Empty`].
    pub fn open(path: &Path) -> Result<Arc<Mapping>, BarError> {
        let path = canonical(path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(sys::O_SYNC)
            .open(&path)
            .map_err(|e| BarError::Open(Errno::from_io(&e)))?;
        let st = sys::fstat(file.as_raw_fd()).map_err(BarError::Sys)?;
        let len = usize::try_from(st.size).map_err(|_| BarError::TooLarge)?;
        if len == 0 {
            return Err(BarError::Empty);
        }
        let map = sys::Mmap::map_shared(file.as_raw_fd(), len).map_err(BarError::Sys)?;
        let device = fnv1a(&file_device_key(&path));
        Ok(Arc::new(Mapping {
            origin: Origin::File(path),
            map,
            device,
        }))
    }

    /// Maps BAR region `region` (0..=5) of the VFIO device `device` whole. Not a vfio-pci
    /// device or not a BAR: [`BarError::Vfio`]; a zero-size (absent) BAR:
    /// [`BarError::Empty`]; no `VFIO_REGION_INFO_FLAG_MMAP`: [`BarError::NotMappable`].
    pub fn open_vfio(device: RawFd, region: u32) -> Result<Arc<Mapping>, BarError> {
        vfio::check_device(device).map_err(BarError::Vfio)?;
        let info = vfio::bar_region(device, region).map_err(BarError::Vfio)?;
        if info.size == 0 {
            return Err(BarError::Empty);
        }
        if info.flags & vfio::REGION_FLAG_MMAP == 0 {
            return Err(BarError::NotMappable);
        }
        let len = usize::try_from(info.size).map_err(|_| BarError::TooLarge)?;
        let map = sys::Mmap::map_shared_at(device, len, info.offset).map_err(BarError::Sys)?;
        let key = fnv1a(&vfio_device_key(device));
        let device = sys::dup(device).map_err(BarError::Sys)?;
        Ok(Arc::new(Mapping {
            origin: Origin::Vfio { device, region },
            map,
            device: key,
        }))
    }

    /// The canonical path this mapping was made from (`None` for a VFIO region).
    pub(crate) fn path(&self) -> Option<&Path> {
        match &self.origin {
            Origin::File(p) => Some(p),
            Origin::Vfio { .. } => None,
        }
    }

    /// Hash of the device this BAR belongs to (`shard = device` picks a worker with it):
    /// FNV-1a of the directory holding the BAR file, or of a VFIO device's sysfs path.
    pub(crate) fn device_hash(&self) -> u64 {
        self.device
    }

    /// Base address of the mapping.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// Length in bytes (the file's size, or the region's, when mapped).
    #[inline]
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Always false: empty files are refused.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether this mapping is region `region` of the device open as `device` (the same
    /// open file: `kcmp`; an unknown answer counts as "no", which only costs a mapping).
    fn is_vfio(&self, device: RawFd, region: u32) -> bool {
        match &self.origin {
            Origin::Vfio {
                device: d,
                region: r,
                ..
            } => *r == region && sys::same_file(d.as_raw_fd(), device).unwrap_or(false),
            Origin::File(_) => false,
        }
    }
}
