//! Phase 1, `user-mmap`: the device has no driver; sysfs `resource2` is registered.

use super::device::sysfs_write;
use super::report::{data_for, Ctx, BAR, WIDTHS};
use ioeventd_native::bar::Mapping;
use ioeventd_native::*;
use std::ffi::CString;
use std::path::Path;

pub(crate) fn user_mmap_phase(cx: &mut Ctx, dev: &Path) -> Result<(), String> {
    // No driver: enable memory decoding the documented way.
    sysfs_write(&dev.join("enable"), "1")?;
    let res = dev.join(format!("resource{BAR}"));
    let view = Mapping::open(&res).map_err(|e| format!("map {}: {e}", res.display()))?;
    cx.report.note("resource2 length", &view.len().to_string());
    let path = CString::new(res.to_str().unwrap()).unwrap();
    let mut ids = Vec::new();
    for (i, &w) in WIDTHS.iter().enumerate() {
        let off = 0x1000 + 0x10 * i as u64;
        let data = data_for(1, w);
        let e = cx.engine;
        if let Some(id) = cx.write_case("sysfs", "user-mmap", &view, off, w, data, |efd| {
            ioeventd_register(e, path.as_ptr().cast(), off, w, data, efd, 0, 0)
        }) {
            ids.push(id);
        }
    }
    // The engine's own rules for this backend (the kernel is not involved).
    let efd = ioeventd_eventfd_create(0);
    let len = view.len();
    let reg =
        |off: u64, w: u32| ioeventd_register(cx.engine, path.as_ptr().cast(), off, w, 1, efd, 0, 0);
    let (end, end8, mis) = (reg(len, 1), reg(u64::MAX - 7, 8), reg(0x1002, 4));
    cx.report
        .fact("user-mmap", "bounds: offset = BAR length", "ERANGE", end);
    cx.report.fact(
        "user-mmap",
        "bounds: offset + width overflows",
        "ERANGE",
        end8,
    );
    cx.report
        .fact("user-mmap", "alignment: 4 bytes at 0x1002", "EINVAL", mis);
    // The same eventfd twice: the engine refuses (it would close it twice).
    let first = ioeventd_register(cx.engine, path.as_ptr().cast(), 0x1100, 4, 1, efd, 0, 0);
    let again = ioeventd_register(cx.engine, path.as_ptr().cast(), 0x1104, 4, 1, efd, 0, 0);
    cx.report
        .fact("user-mmap", "duplicate eventfd", "EEXIST", again);
    if first > 0 {
        ids.push(first as u64);
    }
    for id in ids {
        ioeventd_unregister(cx.engine, id, std::ptr::null_mut());
    }
    drop(view);
    sysfs_write(&dev.join("enable"), "0")?;
    Ok(())
}
