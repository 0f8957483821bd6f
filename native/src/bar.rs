//! BAR mappings: a shared read-write `mmap` of a whole `resourceN` file (or any regular
//! file standing in for one), or of a whole VFIO BAR region, ref-counted per BAR.
//!
//! For a real sysfs `resourceN` file, `st_size` is the BAR's length and the file expects
//! `O_SYNC`. A VFIO region is mapped at its region offset with its size
//! (`VFIO_DEVICE_GET_REGION_INFO`); the mapping keeps a duplicate of the device descriptor,
//! so the device stays open while it is mapped. A mapping lives as long as any `Arc` to it;
//! the table drops its own `Arc` when the last registration using the BAR is released, so
//! the BAR is unmapped then.

use crate::sys::{self, Errno};
use crate::vfio::{self, VfioError};
use std::fmt;
use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

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
    let syspath = std::fs::read_to_string(format!("/proc/self/fdinfo/{device}"))
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
fn canonical(path: &Path) -> Result<PathBuf, BarError> {
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

struct Entry {
    map: Arc<Mapping>,
    refs: usize,
}

/// The engine's BAR table: one mapping per canonical path or per (VFIO device, region),
/// ref-counted. A handful of BARs per host: a linear table.
#[derive(Default)]
pub(crate) struct BarTable {
    entries: Mutex<Vec<Entry>>,
}

impl BarTable {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_or_insert(
        &self,
        found: impl Fn(&Mapping) -> bool,
        open: impl FnOnce() -> Result<Arc<Mapping>, BarError>,
    ) -> Result<Arc<Mapping>, BarError> {
        let mut entries = self.lock();
        if let Some(e) = entries.iter_mut().find(|e| found(&e.map)) {
            e.refs += 1;
            return Ok(e.map.clone());
        }
        let map = open()?;
        entries.push(Entry {
            map: map.clone(),
            refs: 1,
        });
        Ok(map)
    }

    /// Takes a reference on the mapping of `path`, mapping it if it is the first.
    pub(crate) fn acquire(&self, path: &Path) -> Result<Arc<Mapping>, BarError> {
        let canonical = canonical(path)?;
        self.take_or_insert(
            |m| m.path() == Some(canonical.as_path()),
            || Mapping::open(&canonical),
        )
    }

    /// Takes a reference on the mapping of BAR region `region` of the VFIO device open as
    /// `device`, mapping it if it is the first.
    pub(crate) fn acquire_vfio(
        &self,
        device: RawFd,
        region: u32,
    ) -> Result<Arc<Mapping>, BarError> {
        self.take_or_insert(
            |m| m.is_vfio(device, region),
            || Mapping::open_vfio(device, region),
        )
    }

    /// Drops one reference; the table forgets the mapping with its last reference (it is
    /// unmapped as soon as no other `Arc` to it remains).
    pub(crate) fn release(&self, map: &Arc<Mapping>) {
        let mut entries = self.lock();
        if let Some(i) = entries.iter().position(|e| Arc::ptr_eq(&e.map, map)) {
            entries[i].refs -= 1;
            if entries[i].refs == 0 {
                entries.swap_remove(i);
            }
        }
    }

    /// Number of BARs currently mapped.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is mapped.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets every mapping (engine close).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{mapped_in_self, temp_file, temp_path};

    #[test]
    fn refcount_maps_once_and_unmaps_on_last_release() {
        let p = temp_file("refcount", 8192, 0);
        let t = BarTable::default();
        let a = t.acquire(&p).unwrap();
        let b = t.acquire(&p).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.len(), 8192);
        assert_eq!(t.len(), 1);
        assert_eq!(mapped_in_self(&p), 1);
        t.release(&a);
        drop(a);
        assert_eq!(t.len(), 1);
        assert_eq!(mapped_in_self(&p), 1);
        t.release(&b);
        assert_eq!(t.len(), 0);
        assert_eq!(mapped_in_self(&p), 1, "still referenced by `b`");
        drop(b);
        assert_eq!(mapped_in_self(&p), 0);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn same_file_through_another_path_shares_the_mapping() {
        let p = temp_file("alias", 4096, 0);
        let alias = p.parent().unwrap().join(".").join(p.file_name().unwrap());
        let t = BarTable::default();
        let a = t.acquire(&p).unwrap();
        let b = t.acquire(&alias).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        t.release(&a);
        t.release(&b);
        assert!(t.is_empty());
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_non_vfio_descriptor_is_not_a_vfio_bar() {
        let p = temp_file("notvfio", 4096, 0);
        let f = std::fs::File::open(&p).unwrap();
        let t = BarTable::default();
        assert_eq!(
            t.acquire_vfio(f.as_raw_fd(), 0).err().map(Errno::from),
            Some(Errno::EMEDIUMTYPE)
        );
        assert!(t.is_empty());
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn device_hash_is_the_directory_of_the_file() {
        let dir = temp_path("dev");
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["resource0", "resource2"] {
            std::fs::write(dir.join(n), [0u8; 64]).unwrap();
        }
        let other = temp_file("otherdev", 64, 0);
        let t = BarTable::default();
        let a = t.acquire(&dir.join("resource0")).unwrap();
        let b = t.acquire(&dir.join("resource2")).unwrap();
        let c = t.acquire(&other).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(a.device_hash(), b.device_hash(), "two BARs of one device");
        assert_eq!(
            a.device_hash(),
            fnv1a(dir.canonicalize().unwrap().to_str().unwrap().as_bytes())
        );
        assert_ne!(a.device_hash(), c.device_hash());
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_file(&other).unwrap();
    }

    #[test]
    fn zero_length_and_missing_files_are_errors() {
        let p = temp_file("empty", 0, 0);
        let t = BarTable::default();
        assert_eq!(t.acquire(&p).err().map(Errno::from), Some(Errno::EINVAL));
        assert!(t.is_empty());
        std::fs::remove_file(&p).unwrap();
        assert_eq!(t.acquire(&p).err().map(Errno::from), Some(Errno::ENOENT));
    }
}
