//! This process's own figures for the process metrics (open fds, threads, memory, start
//! time), read from `/proc/self` here because Deno lets TypeScript read `/proc` only under
//! `--allow-all`, which the agent's narrow start flags do not grant.

use crate::source::stat_field;
use std::fs;

/// What `/proc/self` says; `None` where the kernel did not give a value.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStats {
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors (`None` also when unlimited).
    pub max_fds: Option<u64>,
    /// OS threads.
    pub threads: Option<u64>,
    /// Virtual memory size in bytes.
    pub virtual_bytes: Option<u64>,
    /// Start time (clock ticks since boot).
    pub start_ticks: Option<u64>,
    /// Boot time, seconds since the Unix epoch.
    pub boot_time: Option<u64>,
}

fn open_fds() -> Option<u64> {
    // Linux >= 6.2 reports the count as the directory's size (O(1)); listing otherwise.
    let size = fs::metadata("/proc/self/fd").ok()?.len();
    if size > 0 {
        return Some(size);
    }
    let n = fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(n.saturating_sub(1)) // the directory's own fd, open while it is read
}

fn max_fds() -> Option<u64> {
    let limits = crate::procfs::read("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn boot_time() -> Option<u64> {
    let stat = crate::procfs::read("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// Reads them all now.
pub fn read() -> ProcessStats {
    let stat = crate::procfs::read("/proc/self/stat").ok();
    let field = |n| stat.as_deref().and_then(|s| stat_field(s, n));
    ProcessStats {
        open_fds: open_fds(),
        max_fds: max_fds(),
        threads: field(20),
        virtual_bytes: field(23),
        start_ticks: field(22),
        boot_time: boot_time(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_after_a_name_with_spaces_and_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 9 0 12345 678 9";
        assert_eq!(stat_field(stat, 3), None); // "S" is not a number
        assert_eq!(stat_field(stat, 4), Some(1));
        assert_eq!(stat_field(stat, 20), Some(9));
        assert_eq!(stat_field(stat, 22), Some(12345));
        assert_eq!(stat_field(stat, 23), Some(678));
    }

    #[test]
    fn this_process_has_threads_fds_and_a_start() {
        let s = read();
        assert!(s.threads.unwrap() >= 1);
        assert!(s.open_fds.unwrap() >= 3);
        assert!(s.start_ticks.is_some() && s.boot_time.unwrap() > 1_600_000_000);
    }
}
