//! The engine's BAR table: one [`Mapping`] per canonical path or per (VFIO device,
//! region), ref-counted by the registrations using it.

use super::{BarError, Mapping};
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

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

    /// Takes a reference on the mapping of `canonical`, mapping it if it is the first: the
    /// path in canonical form ([`canonical`](super::canonical)), by which a BAR is known (the
    /// engine resolves each path once per batch).
    pub(crate) fn acquire(&self, canonical: &Path) -> Result<Arc<Mapping>, BarError> {
        self.take_or_insert(|m| m.path() == Some(canonical), || Mapping::open(canonical))
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
    /// As the engine does: the path resolved first.
    fn acquire(t: &BarTable, p: impl AsRef<Path>) -> Result<Arc<Mapping>, BarError> {
        t.acquire(&crate::bar::canonical(p.as_ref())?)
    }
    use super::*;
    use crate::bar::fnv1a;
    use crate::sys::Errno;
    use crate::test_support::{mapped_in_self, temp_file, temp_path};
    use std::os::fd::AsRawFd;

    #[test]
    fn refcount_maps_once_and_unmaps_on_last_release() {
        let p = temp_file("refcount", 8192, 0);
        let t = BarTable::default();
        let a = acquire(&t, &p).unwrap();
        let b = acquire(&t, &p).unwrap();
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
        let a = acquire(&t, &p).unwrap();
        let b = acquire(&t, &alias).unwrap();
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
        let a = acquire(&t, dir.join("resource0")).unwrap();
        let b = acquire(&t, dir.join("resource2")).unwrap();
        let c = acquire(&t, &other).unwrap();
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
        assert_eq!(acquire(&t, &p).err().map(Errno::from), Some(Errno::EINVAL));
        assert!(t.is_empty());
        std::fs::remove_file(&p).unwrap();
        assert_eq!(acquire(&t, &p).err().map(Errno::from), Some(Errno::ENOENT));
    }
}
