//! Engine lifetime and introspection: version, layout table, open/close, info, events.

use super::{ret_i32, ret_i64};
use crate::abi_layout as layout;
use crate::engine::{Config, Engine, ShardMode};
use crate::monitor::Event;
use crate::sys::{self, Errno};
use crate::worker::PollMode;
use crate::{insert_engine, take_engine, ABI_VERSION};

/// The ABI version implemented ([`ABI_VERSION`]).
#[no_mangle]
pub extern "C" fn ioeventd_abi_version() -> u32 {
    ABI_VERSION
}

/// Writes the record layout table ([`crate::abi_layout`]: `record.word=index` lines and
/// `record.len=N`, UTF-8, no NUL) into `buf` when it fits in `cap` bytes (else nothing),
/// and returns its length in bytes.
#[no_mangle]
pub extern "C" fn ioeventd_abi_layout(buf: *mut u8, cap: u64) -> i64 {
    ret_i64((|| {
        let table = layout::table();
        let len = table.len() as u64;
        if cap >= len {
            let out = sys::abi_bytes_mut(buf, len).ok_or(Errno::EFAULT)?;
            out.copy_from_slice(table.as_bytes());
        }
        Ok(len as i64)
    })())
}

/// Starts an engine (`workers` epoll threads, the monitor thread) with every option; returns its handle.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn ioeventd_engine_open(
    workers: u32,
    canary_period_us: u32,
    poll_mode: u32,
    spin_budget_us: u32,
    shard: u32,
    cpus: *const u32,
    cpus_len: u64,
) -> i64 {
    ret_i64((|| {
        let poll_mode = PollMode::from_u32(poll_mode).ok_or(Errno::EINVAL)?;
        let shard = ShardMode::from_u32(shard).ok_or(Errno::EINVAL)?;
        if cpus_len > sys::CPU_SETSIZE as u64 {
            return Err(Errno::EINVAL);
        }
        let cpus = sys::abi_slice_u32(cpus, cpus_len).ok_or(Errno::EFAULT)?;
        let e = Engine::open(Config {
            workers,
            canary_period_us,
            poll_mode,
            spin_budget_us,
            shard,
            cpus: cpus.to_vec(),
        })?;
        Ok(insert_engine(e) as i64)
    })())
}

/// Unregisters everything, stops and joins the threads, releases every BAR and fd.
#[no_mangle]
pub extern "C" fn ioeventd_engine_close(engine: u64) -> i32 {
    ret_i32((|| {
        take_engine(engine).ok_or(Errno::EBADF)?.close();
        Ok(0)
    })())
}

/// Up to `cap` words of the `info` layout; returns how many were written.
#[no_mangle]
pub extern "C" fn ioeventd_engine_info(engine: u64, buf: *mut u64, cap: u64) -> i64 {
    ret_i64((|| {
        let e = crate::engine(engine)?;
        let info = e.info()?;
        let n = info.len().min(usize::try_from(cap).unwrap_or(usize::MAX));
        let out = sys::abi_slice_mut(buf, n as u64).ok_or(Errno::EFAULT)?;
        out.copy_from_slice(&info[..n]);
        Ok(n as i64)
    })())
}

/// Waits up to `timeout_ms` for events (`event` layout); returns how many were written.
#[no_mangle]
pub extern "C" fn ioeventd_events_wait(
    engine: u64,
    buf: *mut u64,
    cap: u64,
    timeout_ms: i32,
) -> i64 {
    ret_i64((|| {
        let e = crate::engine(engine)?;
        let n = usize::try_from(cap).unwrap_or(usize::MAX).min(1024);
        let len = layout::event::LEN;
        let out = sys::abi_slice_mut(buf, (n * len) as u64).ok_or(Errno::EFAULT)?;
        let mut events = vec![Event::default(); n];
        let got = e.events_wait(&mut events, timeout_ms)?;
        for (dst, ev) in out.chunks_exact_mut(len).zip(&events[..got]) {
            dst.copy_from_slice(&ev.as_words());
        }
        Ok(got as i64)
    })())
}
