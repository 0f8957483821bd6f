//! This process's figures for the process metrics (`process_stats`).

use super::ret_i64;
use crate::abi_layout as layout;
use crate::process_stats;
use crate::sys::{self, Errno};

/// Writes the `process` record of this process into `out` (`u64::MAX` for a value the kernel
/// did not give); returns the number of words written.
#[no_mangle]
pub extern "C" fn ioeventd_process_stats(out: *mut u64) -> i64 {
    ret_i64((|| {
        let out = sys::abi_slice_mut(out, layout::process::LEN as u64).ok_or(Errno::EFAULT)?;
        let s = process_stats::read();
        let word = |v: Option<u64>| v.unwrap_or(u64::MAX);
        out[layout::process::OPEN_FDS] = word(s.open_fds);
        out[layout::process::MAX_FDS] = word(s.max_fds);
        out[layout::process::THREADS] = word(s.threads);
        out[layout::process::VIRTUAL_BYTES] = word(s.virtual_bytes);
        out[layout::process::START_TICKS] = word(s.start_ticks);
        out[layout::process::BOOT_TIME] = word(s.boot_time);
        Ok(layout::process::LEN as i64)
    })())
}
