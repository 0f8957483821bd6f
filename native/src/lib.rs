//! ioeventd native data plane: the C ABI v2 (see README.md), the handle table and the
//! errno mapping — nothing else.
//!
//! Every export returns `-errno` on failure and never panics. Pointer arguments follow the
//! usual C contract (valid for the call, `cap` elements); the conversion to slices lives
//! in `sys::abi_slice_mut` / `sys::abi_cstr`, which also refuse null pointers.

#![deny(missing_docs)]
// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

pub mod abi_layout;
pub mod bar;
mod control;
pub mod engine;
pub mod mmio;
pub mod monitor;
mod slot_token;
pub mod source;
pub mod stats;
pub mod sys;
pub mod vfio;
pub mod worker;

use abi_layout as layout;
use engine::{Bar, Config, Engine, RegisterRequest, ShardMode, VfioMode};
use stats::Counters;
use std::ffi::OsStr;
use std::os::fd::IntoRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use sys::Errno;
use worker::PollMode;

/// The ABI version implemented.
pub const ABI_VERSION: u32 = 2;

/// Open engines; handle = index + 1. Slots are never reused, so a stale handle stays
/// invalid (`EBADF`) forever.
static ENGINES: Mutex<Vec<Option<Arc<Engine>>>> = Mutex::new(Vec::new());

fn engines() -> MutexGuard<'static, Vec<Option<Arc<Engine>>>> {
    ENGINES.lock().unwrap_or_else(|e| e.into_inner())
}

fn engine(handle: u64) -> Result<Arc<Engine>, Errno> {
    let idx = usize::try_from(handle)
        .ok()
        .and_then(|h| h.checked_sub(1))
        .ok_or(Errno::EBADF)?;
    engines()
        .get(idx)
        .and_then(|e| e.clone())
        .ok_or(Errno::EBADF)
}

fn ret_i64(r: Result<i64, Errno>) -> i64 {
    r.unwrap_or_else(Errno::to_abi)
}

fn ret_i32(r: Result<(), Errno>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => -e.0,
    }
}

/// The ABI version implemented ([`ABI_VERSION`]).
#[no_mangle]
pub extern "C" fn ioeventd_abi_version() -> u32 {
    ABI_VERSION
}

/// Writes the record layout table ([`abi_layout`]: `record.word=index` lines and
/// `record.len=N`, UTF-8, no NUL) into `buf` when it fits in `cap` bytes (else nothing),
/// and returns its length in bytes.
#[no_mangle]
pub extern "C" fn ioeventd_abi_layout(buf: *mut u8, cap: u64) -> i64 {
    ret_i64((|| {
        let table = abi_layout::table();
        let len = table.len() as u64;
        if cap >= len {
            let out = sys::abi_bytes_mut(buf, len).ok_or(Errno::EFAULT)?;
            out.copy_from_slice(table.as_bytes());
        }
        Ok(len as i64)
    })())
}

fn open_engine(config: Config) -> Result<i64, Errno> {
    let e = Engine::open(config)?;
    let mut table = engines();
    table.push(Some(Arc::new(e)));
    Ok(table.len() as i64)
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
        open_engine(Config {
            workers,
            canary_period_us,
            poll_mode,
            spin_budget_us,
            shard,
            cpus: cpus.to_vec(),
        })
    })())
}

/// Unregisters everything, stops and joins the threads, releases every BAR and fd.
#[no_mangle]
pub extern "C" fn ioeventd_engine_close(engine: u64) -> i32 {
    let taken = usize::try_from(engine)
        .ok()
        .and_then(|h| h.checked_sub(1))
        .and_then(|i| engines().get_mut(i).and_then(Option::take));
    match taken {
        Some(e) => {
            e.close();
            0
        }
        None => -Errno::EBADF.0,
    }
}

/// Duplicates eventfd `fd` of process `pid` after checking its identity; `out` gets the `source` layout.
#[no_mangle]
pub extern "C" fn ioeventd_source_acquire(
    pid: i32,
    fd: i32,
    expect_start: u64,
    expect_eventfd_id: u64,
    out: *mut u64,
) -> i64 {
    ret_i64((|| {
        let out = sys::abi_slice_mut(out, layout::source::LEN as u64).ok_or(Errno::EFAULT)?;
        let a = source::acquire(pid, fd, expect_start, expect_eventfd_id)?;
        out[layout::source::START_TIME] = a.start;
        out[layout::source::EVENTFD_ID] = a.identity;
        out[layout::source::DEV] = a.dev;
        Ok(i64::from(a.fd.into_raw_fd()))
    })())
}

/// Closes a local fd from `source_acquire` (or any fd this process owns).
#[no_mangle]
pub extern "C" fn ioeventd_source_close(fd: i32) -> i32 {
    if fd < 0 {
        return -Errno::EBADF.0;
    }
    ret_i32(sys::close_raw(fd))
}

/// Arms a write through the mmap of resource file `bar_path` on each signal of `efd`; returns the id.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn ioeventd_register(
    engine: u64,
    bar_path: *const u8,
    offset: u64,
    width: u32,
    data: u64,
    efd: i32,
    pid: i32,
    pid_start: u64,
) -> i64 {
    ret_i64((|| {
        let e = self::engine(engine)?;
        let path = sys::abi_cstr(bar_path).ok_or(Errno::EFAULT)?;
        let req = RegisterRequest {
            bar: Bar::File(Path::new(OsStr::from_bytes(path))),
            offset,
            width,
            data,
            efd,
            pid,
            pid_start,
        };
        let id = e.register(&req)?;
        Ok(id as i64)
    })())
}

/// Barrier: disarms `id`; writes its final counters (`counters` layout) to `out` unless NULL.
#[no_mangle]
pub extern "C" fn ioeventd_unregister(engine: u64, id: u64, out: *mut u64) -> i32 {
    ret_i32((|| {
        let e = self::engine(engine)?;
        // NULL: the caller does not want the counters (any length is then allowed).
        let out = if out.is_null() {
            None
        } else {
            Some(sys::abi_slice_mut(out, layout::counters::LEN as u64).ok_or(Errno::EFAULT)?)
        };
        let last = e.unregister(id)?;
        if let Some(out) = out {
            out.copy_from_slice(&last.as_words());
        }
        Ok(())
    })())
}

/// `u64`s per `ioeventd_register_batch` record (see README.md).
pub const BATCH_RECORD_U64S: usize = layout::register::LEN;
/// Record kinds of `ioeventd_register_batch`.
const BATCH_KIND_FILE: u64 = 1;
const BATCH_KIND_VFIO: u64 = 2;

/// A record word holding an `i32` (sign-extended to 64 bits); `EINVAL` for anything else.
fn batch_i32(v: u64) -> Result<i32, Errno> {
    i32::try_from(v as i64).map_err(|_| Errno::EINVAL)
}

/// The NUL-terminated path at `offset` in `strings`, without its NUL.
fn batch_path(strings: &[u8], offset: u64) -> Result<&[u8], Errno> {
    let rest = usize::try_from(offset)
        .ok()
        .and_then(|o| strings.get(o..))
        .ok_or(Errno::EFAULT)?;
    let end = rest.iter().position(|&b| b == 0).ok_or(Errno::EFAULT)?;
    Ok(&rest[..end])
}

/// Registers `count` records (`register` layout), one control operation per worker.
#[no_mangle]
pub extern "C" fn ioeventd_register_batch(
    engine: u64,
    recs: *mut u64,
    count: u64,
    strings: *const u8,
    strings_len: u64,
) -> i64 {
    ret_i64((|| {
        let e = self::engine(engine)?;
        if count > engine::MAX_BATCH as u64 {
            return Err(Errno::EINVAL);
        }
        let words = count * BATCH_RECORD_U64S as u64;
        let recs = sys::abi_slice_mut(recs, words).ok_or(Errno::EFAULT)?;
        let strings = sys::abi_bytes(strings, strings_len).ok_or(Errno::EFAULT)?;
        // Parse every record; a malformed one is answered at once, the rest go as a batch.
        let mut reqs: Vec<RegisterRequest<'_>> = Vec::with_capacity(count as usize);
        let mut slots: Vec<Result<usize, Errno>> = Vec::with_capacity(count as usize);
        for r in recs.chunks_exact(BATCH_RECORD_U64S) {
            use layout::register as w;
            let parsed = (|| {
                // No word is truncated into a valid value.
                let width = u32::try_from(r[w::WIDTH]).map_err(|_| Errno::EINVAL)?;
                let (efd, pid) = (batch_i32(r[w::EFD])?, batch_i32(r[w::PID])?);
                let bar = match r[w::KIND] {
                    BATCH_KIND_FILE => Bar::File(Path::new(OsStr::from_bytes(batch_path(
                        strings,
                        r[w::PATH_OR_DEVICE],
                    )?))),
                    BATCH_KIND_VFIO => Bar::Vfio {
                        device: batch_i32(r[w::PATH_OR_DEVICE])?,
                        region: u32::try_from(r[w::REGION]).map_err(|_| Errno::EINVAL)?,
                        mode: u32::try_from(r[w::MODE])
                            .ok()
                            .and_then(VfioMode::from_u32)
                            .ok_or(Errno::EINVAL)?,
                    },
                    _ => return Err(Errno::EINVAL),
                };
                Ok(RegisterRequest {
                    bar,
                    offset: r[w::OFFSET],
                    width,
                    data: r[w::DATA],
                    efd,
                    pid,
                    pid_start: r[w::PID_START],
                })
            })();
            slots.push(parsed.map(|req| {
                reqs.push(req);
                reqs.len() - 1
            }));
        }
        let results = e.register_batch(&reqs);
        let mut ok = 0i64;
        for (rec, slot) in recs.chunks_exact_mut(BATCH_RECORD_U64S).zip(slots) {
            use layout::register as w;
            let r = slot.and_then(|i| results[i]);
            match r {
                Ok(id) => {
                    ok += 1;
                    rec[w::RESULT] = id;
                    rec[w::BACKEND] = e.backend(id).map(|b| b.code()).unwrap_or(0);
                    rec[w::WORKER] = e.worker_of(id).map(|w| w as u64).unwrap_or(u64::MAX);
                }
                Err(err) => {
                    rec[w::RESULT] = err.to_abi() as u64;
                    rec[w::BACKEND] = 0;
                    rec[w::WORKER] = u64::MAX;
                }
            }
        }
        Ok(ok)
    })())
}

/// Unregisters `count` records (`unregister` layout), each with its final counters.
#[no_mangle]
pub extern "C" fn ioeventd_unregister_batch(engine: u64, recs: *mut u64, count: u64) -> i64 {
    ret_i64((|| {
        let e = self::engine(engine)?;
        if count > engine::MAX_BATCH as u64 {
            return Err(Errno::EINVAL);
        }
        use layout::unregister as w;
        let recs = sys::abi_slice_mut(recs, count * w::LEN as u64).ok_or(Errno::EFAULT)?;
        let ids: Vec<u64> = recs.chunks_exact(w::LEN).map(|r| r[w::ID]).collect();
        let results = e.unregister_batch(&ids);
        let mut ok = 0i64;
        for (rec, r) in recs.chunks_exact_mut(w::LEN).zip(results) {
            let (result, last) = match r {
                Ok(last) => {
                    ok += 1;
                    (0, last)
                }
                Err(err) => (err.to_abi() as u64, Counters::default()),
            };
            rec[w::RESULT] = result;
            rec[w::TRIGGERS..w::TRIGGERS + layout::counters::LEN].copy_from_slice(&last.as_words());
        }
        Ok(ok)
    })())
}

/// The worker serving `id`; `-EOPNOTSUPP` when the kernel serves it.
#[no_mangle]
pub extern "C" fn ioeventd_registration_worker(engine: u64, id: u64) -> i32 {
    match self::engine(engine).and_then(|e| e.worker_of(id)) {
        Ok(w) => w as i32,
        Err(e) => -e.0,
    }
}

/// Up to `cap` records (`stats` layout), sorted by id; returns the total count.
#[no_mangle]
pub extern "C" fn ioeventd_stats_registrations(engine: u64, buf: *mut u64, cap: u64) -> i64 {
    ret_i64((|| {
        let e = self::engine(engine)?;
        let len = layout::stats::LEN;
        let out = sys::abi_slice_mut(buf, cap.saturating_mul(len as u64)).ok_or(Errno::EFAULT)?;
        let recs = e.registration_stats()?;
        for (dst, rec) in out.chunks_exact_mut(len).zip(&recs) {
            dst.copy_from_slice(rec);
        }
        Ok(recs.len() as i64)
    })())
}

/// The finite histogram bucket bounds in ns; returns how many there are.
#[no_mangle]
pub extern "C" fn ioeventd_histogram_bounds(buf: *mut u64, cap: u64) -> i64 {
    ret_i64((|| {
        let out = sys::abi_slice_mut(buf, cap).ok_or(Errno::EFAULT)?;
        for (dst, b) in out.iter_mut().zip(stats::BOUNDS_NS.iter()) {
            *dst = *b;
        }
        Ok(stats::BOUNDS_NS.len() as i64)
    })())
}

/// Every worker's record (`worker` layout), when `cap` holds them all; returns the words needed.
#[no_mangle]
pub extern "C" fn ioeventd_stats_workers(engine: u64, buf: *mut u64, cap: u64) -> i64 {
    ret_i64((|| {
        let e = self::engine(engine)?;
        let v = e.worker_stats()?;
        if cap >= v.len() as u64 {
            let out = sys::abi_slice_mut(buf, v.len() as u64).ok_or(Errno::EFAULT)?;
            out.copy_from_slice(&v);
        }
        Ok(v.len() as i64)
    })())
}

/// Up to `cap` words of the `info` layout; returns how many were written.
#[no_mangle]
pub extern "C" fn ioeventd_engine_info(engine: u64, buf: *mut u64, cap: u64) -> i64 {
    ret_i64((|| {
        let e = self::engine(engine)?;
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
        let e = self::engine(engine)?;
        let n = usize::try_from(cap).unwrap_or(usize::MAX).min(1024);
        let len = layout::event::LEN;
        let out = sys::abi_slice_mut(buf, (n * len) as u64).ok_or(Errno::EFAULT)?;
        let mut events = vec![[0u64; 4]; n];
        let got = e.events_wait(&mut events, timeout_ms)?;
        for (dst, ev) in out.chunks_exact_mut(len).zip(&events[..got]) {
            dst.copy_from_slice(ev);
        }
        Ok(got as i64)
    })())
}

/// Creates a non-blocking, close-on-exec eventfd in this process (tests, benchmarks).
#[no_mangle]
pub extern "C" fn ioeventd_eventfd_create(initval: u32) -> i32 {
    match sys::eventfd(initval, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK) {
        Ok(fd) => fd.into_raw_fd(),
        Err(e) => -e.0,
    }
}

/// Adds `value` to eventfd `fd` of this process.
#[no_mangle]
pub extern "C" fn ioeventd_eventfd_signal(fd: i32, value: u64) -> i32 {
    if fd < 0 {
        return -Errno::EBADF.0;
    }
    ret_i32(sys::write_u64(fd, value))
}

// ---- VFIO (ABI v1 additions; see README.md) ----

/// Opens the vfio-pci device at `pci_address` (container + group); returns its device fd.
#[no_mangle]
pub extern "C" fn ioeventd_vfio_open(pci_address: *const u8) -> i32 {
    let r = (|| {
        let addr = sys::abi_cstr(pci_address).ok_or(Errno::EFAULT)?;
        let addr = std::str::from_utf8(addr).map_err(|_| Errno::EINVAL)?;
        vfio::open_device(addr)
    })();
    match r {
        Ok(fd) => fd.into_raw_fd(),
        Err(e) => -e.0,
    }
}

/// Duplicates VFIO device fd `fd` of process `pid` (the VMM) into this process.
#[no_mangle]
pub extern "C" fn ioeventd_vfio_acquire(pid: i32, fd: i32) -> i32 {
    match vfio::acquire(pid, fd) {
        Ok(fd) => fd.into_raw_fd(),
        Err(e) => -e.0,
    }
}

/// Region `region` of a VFIO device into `out` (`region` layout).
#[no_mangle]
pub extern "C" fn ioeventd_vfio_region_info(vfio_fd: i32, region: u32, out: *mut u64) -> i32 {
    ret_i32((|| {
        let out = sys::abi_slice_mut(out, layout::region::LEN as u64).ok_or(Errno::EFAULT)?;
        vfio::check_device(vfio_fd)?;
        let info = sys::vfio_region_info(vfio_fd, region)?;
        out[layout::region::SIZE] = info.size;
        out[layout::region::OFFSET] = info.offset;
        out[layout::region::FLAGS] = u64::from(info.flags);
        Ok(())
    })())
}

/// The raw `VFIO_DEVICE_IOEVENTFD` (`efd` -1 de-assigns): the kernel's rules, unfiltered.
#[no_mangle]
pub extern "C" fn ioeventd_kernel_ioeventfd(
    vfio_fd: i32,
    region: u32,
    offset: u64,
    width: u32,
    data: u64,
    efd: i32,
) -> i32 {
    ret_i32(vfio::kernel_ioeventfd(
        vfio_fd, region, offset, width, data, efd,
    ))
}

/// Arms a write on BAR `region` of a VFIO device; `mode` 0 auto, 2 vfio-mmap, 3 kernel.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn ioeventd_register_vfio(
    engine: u64,
    vfio_fd: i32,
    region: u32,
    offset: u64,
    width: u32,
    data: u64,
    efd: i32,
    pid: i32,
    pid_start: u64,
    mode: u32,
) -> i64 {
    ret_i64((|| {
        let e = self::engine(engine)?;
        let mode = VfioMode::from_u32(mode).ok_or(Errno::EINVAL)?;
        let req = RegisterRequest {
            bar: Bar::Vfio {
                device: vfio_fd,
                region,
                mode,
            },
            offset,
            width,
            data,
            efd,
            pid,
            pid_start,
        };
        Ok(e.register_vfio(&req)? as i64)
    })())
}

/// The backend code (1 user-mmap, 2 vfio-mmap, 3 kernel) of `id`.
#[no_mangle]
pub extern "C" fn ioeventd_registration_backend(engine: u64, id: u64) -> i32 {
    match self::engine(engine).and_then(|e| e.backend(id)) {
        Ok(b) => b as i32,
        Err(e) => -e.0,
    }
}

/// Start time of process `pid` (field 22 of `/proc/<pid>/stat`, clock ticks since boot), as
/// `source_acquire` reports it; `-ESRCH` when there is no such process. The agent reads it
/// here because Deno's permissions do not let TypeScript read `/proc` without `--allow-all`.
#[no_mangle]
pub extern "C" fn ioeventd_process_start_time(pid: i32) -> i64 {
    match source::process_start(pid) {
        Ok(start) => start as i64,
        Err(e) => -(e.0 as i64),
    }
}

/// Host detection: bit 0 a VFIO type1 container opens, bit 1 vfio-pci is registered.
#[no_mangle]
pub extern "C" fn ioeventd_vfio_probe() -> u32 {
    vfio::probe()
}
