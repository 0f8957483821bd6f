//! BAR mappings: a shared read-write `mmap` of a whole `resourceN` file (or any regular
//! file standing in for one), ref-counted per canonical path.
//!
//! For a real sysfs `resourceN` file, `st_size` is the BAR's length and the file expects
//! `O_SYNC`. A mapping lives as long as any `Arc` to it; the table drops its own `Arc` when
//! the last registration using the path is released, so the BAR is unmapped then.

use crate::sys::{self, Errno, SysResult};
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// One mapped BAR.
pub struct Mapping {
    path: PathBuf,
    map: sys::Mmap,
}

impl Mapping {
    /// Opens `path` (`O_RDWR|O_SYNC|O_CLOEXEC`) and maps all of it. The descriptor is
    /// closed once mapped. A zero-length file gives `EINVAL`.
    pub fn open(path: &Path) -> SysResult<Arc<Mapping>> {
        let path = std::fs::canonicalize(path).map_err(|e| Errno::from_io(&e))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(sys::O_SYNC)
            .open(&path)
            .map_err(|e| Errno::from_io(&e))?;
        let st = sys::fstat(file.as_raw_fd())?;
        let len = usize::try_from(st.size).map_err(|_| Errno::EINVAL)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let map = sys::Mmap::map_shared(file.as_raw_fd(), len)?;
        Ok(Arc::new(Mapping { path, map }))
    }

    /// The canonical path this mapping was made from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Base address of the mapping.
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// Length in bytes (the file's size when mapped).
    #[inline]
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Always false: empty files are refused.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

struct Entry {
    map: Arc<Mapping>,
    refs: usize,
}

/// The engine's BAR table: one mapping per canonical path, ref-counted.
#[derive(Default)]
pub struct BarTable {
    entries: Mutex<HashMap<PathBuf, Entry>>,
}

impl BarTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a reference on the mapping of `path`, mapping it if it is the first.
    pub fn acquire(&self, path: &Path) -> SysResult<Arc<Mapping>> {
        let canonical = std::fs::canonicalize(path).map_err(|e| Errno::from_io(&e))?;
        let mut entries = self.lock();
        if let Some(e) = entries.get_mut(&canonical) {
            e.refs += 1;
            return Ok(e.map.clone());
        }
        let map = Mapping::open(&canonical)?;
        entries.insert(
            canonical,
            Entry {
                map: map.clone(),
                refs: 1,
            },
        );
        Ok(map)
    }

    /// Drops one reference; the table forgets the mapping with its last reference (it is
    /// unmapped as soon as no other `Arc` to it remains).
    pub fn release(&self, map: &Arc<Mapping>) {
        let mut entries = self.lock();
        if let Some(e) = entries.get_mut(map.path()) {
            if Arc::ptr_eq(&e.map, map) {
                e.refs -= 1;
                if e.refs == 0 {
                    entries.remove(map.path());
                }
            }
        }
    }

    /// Number of paths currently mapped.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets every mapping (engine close).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(name: &str, len: usize) -> PathBuf {
        let p = std::env::temp_dir().join(format!("ioeventd-bar-{}-{name}", std::process::id()));
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(&vec![0u8; len]).unwrap();
        p
    }

    fn mapped_in_self(p: &Path) -> usize {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let needle = std::fs::canonicalize(p).unwrap();
        let needle = needle.to_str().unwrap();
        maps.lines().filter(|l| l.ends_with(needle)).count()
    }

    #[test]
    fn refcount_maps_once_and_unmaps_on_last_release() {
        let p = temp_file("refcount", 8192);
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
        let p = temp_file("alias", 4096);
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
    fn zero_length_and_missing_files_are_errors() {
        let p = temp_file("empty", 0);
        let t = BarTable::default();
        assert_eq!(t.acquire(&p).err(), Some(Errno::EINVAL));
        assert!(t.is_empty());
        std::fs::remove_file(&p).unwrap();
        assert_eq!(t.acquire(&p).err(), Some(Errno::ENOENT));
    }
}
