//! Helpers shared by the crate's unit tests (the integration tests have theirs in
//! `tests/common/`): temporary files standing in for BARs, and what this process maps.

use crate::bar::Mapping;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary directory entry name unique to this process and call: `ioeventd-unit-…`.
pub(crate) fn temp_path(name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ioeventd-unit-{}-{n}-{name}", std::process::id()))
}

/// A temporary file of `len` bytes of `fill`, standing in for a BAR (the caller removes it).
pub(crate) fn temp_file(name: &str, len: usize, fill: u8) -> PathBuf {
    let p = temp_path(name);
    std::fs::write(&p, vec![fill; len]).unwrap();
    p
}

/// [`temp_file`], mapped.
pub(crate) fn temp_bar(name: &str, len: usize, fill: u8) -> (PathBuf, Arc<Mapping>) {
    let p = temp_file(name, len, fill);
    let m = Mapping::open(&p).unwrap();
    (p, m)
}

/// How many mappings of `p` this process has (`/proc/self/maps`).
pub(crate) fn mapped_in_self(p: &Path) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let needle = std::fs::canonicalize(p).unwrap();
    let needle = needle.to_str().unwrap();
    maps.lines().filter(|l| l.ends_with(needle)).count()
}
