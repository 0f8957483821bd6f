//! One registration at a time: register (resource file, VFIO region), unregister, and
//! which backend and worker serve it.

use super::{ret_i32, ret_i64};
use crate::abi_layout as layout;
use crate::engine::{Bar, RegisterRequest, VfioMode};
use crate::sys::{self, Errno};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

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
        let e = crate::engine(engine)?;
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
        Ok(e.register(&req)? as i64)
    })())
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
        let e = crate::engine(engine)?;
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
        Ok(e.register(&req)? as i64)
    })())
}

/// Barrier: disarms `id`; writes its final counters (`counters` layout) to `out` unless NULL.
#[no_mangle]
pub extern "C" fn ioeventd_unregister(engine: u64, id: u64, out: *mut u64) -> i32 {
    ret_i32((|| {
        let e = crate::engine(engine)?;
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
        Ok(0)
    })())
}

/// The worker serving `id`; `-EOPNOTSUPP` when the kernel serves it.
#[no_mangle]
pub extern "C" fn ioeventd_registration_worker(engine: u64, id: u64) -> i32 {
    ret_i32((|| Ok(crate::engine(engine)?.worker_of(id)? as i32))())
}

/// The backend code (1 user-mmap, 2 vfio-mmap, 3 kernel) of `id`.
#[no_mangle]
pub extern "C" fn ioeventd_registration_backend(engine: u64, id: u64) -> i32 {
    ret_i32((|| Ok(crate::engine(engine)?.backend(id)? as i32))())
}
