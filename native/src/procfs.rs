//! Reading `/proc` files. They report a size of 0, so `std::fs::read_to_string` starts with a
//! 32-byte probe and grows its buffer: a 1.3 KB `/proc/<pid>/status` took 8 `read`s and a
//! `statx`. Read into a buffer that fits the usual file instead: one `read` and the one that
//! says end of file. On every create's path (the source's start time, its fdinfo, the caller's
//! process facts), so the syscalls count.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// What the `/proc` files read here usually need (status is ~1.3 KB; larger ones still work).
const TYPICAL_BYTES: usize = 4096;

/// The whole text of a `/proc` file.
pub fn read(path: impl AsRef<Path>) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut text = String::with_capacity(TYPICAL_BYTES);
    file.read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_proc_file_whole() {
        let status = super::read("/proc/self/status").unwrap();
        assert!(status.starts_with("Name:"));
        assert!(status.contains("\nPPid:") && status.ends_with('\n'));
        let limits = super::read("/proc/self/limits").unwrap();
        assert!(limits.contains("Max open files"));
        assert!(super::read("/proc/self/no-such-file").is_err());
    }
}
