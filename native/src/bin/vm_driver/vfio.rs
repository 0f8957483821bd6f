//! Phases 2 and 3 on the ivshmem device bound to vfio-pci: `vfio-mmap` (the engine writes
//! through the VFIO BAR region mapping) and `kernel` (`VFIO_DEVICE_IOEVENTFD` through the
//! engine, kernel-only and auto, and raw, to show the kernel's own rules: duplicate key,
//! bounds, widths, BAR-only, no alignment rule, the 1000-per-device limit and the engine's
//! fallback past it). One function per phase, run in order by [`vfio_phases`].

use super::report::{data_for, truncate, wait_value, Ctx, BAR, WIDTHS};
use ioeventd_native::abi::succession::{ioeventd_adopt_kernel, ioeventd_engine_leave_kernel};
use ioeventd_native::bar::Mapping;
use ioeventd_native::mmio::MmioCell;
use ioeventd_native::*;
use std::sync::Arc;

/// What the phases share: the device, its BAR2, the registrations made so far.
struct Device {
    engine: u64,
    fd: i32,
    size: u64,
    view: Arc<Mapping>,
    /// An eventfd for the refusals (never signalled).
    efd: i32,
    /// An eventfd for the raw kernel entries (made by [`raw_kernel_rules`]).
    scratch: i32,
    /// Whether this kernel takes 8-byte ioeventfds (set by [`kernel_width_probe`]).
    kernel8: bool,
    ids: Vec<u64>,
}

impl Device {
    /// `ioeventd_register_vfio` on BAR2 in `mode`.
    fn reg(&self, mode: u32, off: u64, w: u32, data: u64, efd: i32) -> i64 {
        ioeventd_register_vfio(self.engine, self.fd, BAR, off, w, data, efd, 0, 0, mode)
    }

    /// The raw kernel call on `region`.
    fn raw(&self, region: u32, off: u64, w: u32, data: u64, efd: i32) -> i64 {
        i64::from(ioeventd_kernel_ioeventfd(
            self.fd, region, off, w, data, efd,
        ))
    }

    /// One write case per width at `base + 0x10 * i` with the plan's data `code`;
    /// `plan(width)` gives the mode and the backend expected.
    fn writes(
        &mut self,
        cx: &mut Ctx,
        label: &str,
        base: u64,
        code: u64,
        plan: impl Fn(u32) -> (u32, &'static str),
    ) {
        for (i, &w) in WIDTHS.iter().enumerate() {
            let off = base + 0x10 * i as u64;
            let data = data_for(code, w);
            let (mode, expect) = plan(w);
            let id = cx.write_case(label, expect, &self.view, off, w, data, |efd| {
                self.reg(mode, off, w, data, efd)
            });
            self.ids.extend(id);
        }
    }
}

/// The mode and expected backend of a kernel case at width `w`: where the kernel refuses
/// the width (`kernel8` false), the case goes through auto and must fall back to
/// vfio-mmap (the write still lands).
fn kernel_plan(kernel8: bool, w: u32) -> (u32, &'static str) {
    if w == 8 && !kernel8 {
        (0, "vfio-mmap")
    } else {
        (3, "kernel")
    }
}

/// Runs every VFIO phase on the device descriptor `fd` (taken from the holder).
pub(crate) fn vfio_phases(cx: &mut Ctx, fd: i32) {
    let Some(mut d) = region_and_mapping(cx, fd) else {
        return;
    };
    vfio_mmap_writes(cx, &mut d);
    vfio_mmap_rules(cx, &d);
    kernel_width_probe(cx, &mut d);
    kernel_writes(cx, &mut d);
    kernel_duplicates(cx, &mut d);
    kernel_handover(cx, &d);
    raw_kernel_rules(cx, &mut d);
    kernel_limit(cx, &mut d);
    kernel_unregister(cx, d);
}

/// BAR2's region info, and a mapping of it to watch the writes land.
fn region_and_mapping(cx: &mut Ctx, fd: i32) -> Option<Device> {
    let mut info = [0u64; 3];
    let rc = ioeventd_vfio_region_info(fd, BAR, info.as_mut_ptr());
    cx.report
        .fact("vfio-mmap", "region info BAR2", "OK", i64::from(rc));
    cx.report.note(
        "BAR2 region",
        &format!(
            "size={:#x} offset={:#x} flags={:#x}",
            info[0], info[1], info[2]
        ),
    );
    let view = match Mapping::open_vfio(fd, BAR) {
        Ok(v) => v,
        Err(e) => {
            cx.report.fail(&format!("mmap VFIO BAR2: {e}"));
            return None;
        }
    };
    Some(Device {
        engine: cx.engine,
        fd,
        size: info[0],
        view,
        efd: ioeventd_eventfd_create(0),
        scratch: -1,
        kernel8: false,
        ids: Vec::new(),
    })
}

/// vfio-mmap: the engine writes through the VFIO region mapping.
fn vfio_mmap_writes(cx: &mut Ctx, d: &mut Device) {
    d.writes(cx, "vfio-mmap", 0x2000, 2, |_| (2, "vfio-mmap"));
}

/// The engine's own rules on this backend: bounds, alignment, BARs only.
fn vfio_mmap_rules(cx: &mut Ctx, d: &Device) {
    cx.report.fact(
        "vfio-mmap",
        "bounds: offset = region size",
        "ERANGE",
        d.reg(2, d.size, 1, 1, d.efd),
    );
    cx.report.fact(
        "vfio-mmap",
        "alignment: 8 bytes at 0x2004",
        "EINVAL",
        d.reg(2, 0x2004, 8, 1, d.efd),
    );
    cx.report
        .fact("vfio-mmap", "region 6 (ROM) is not a BAR", "EINVAL", {
            ioeventd_register_vfio(d.engine, d.fd, 6, 0, 4, 1, d.efd, 0, 0, 2)
        });
}

/// A hand-over between agents (issue #19) on the real kernel: an entry the old engine leaves
/// assigned is adopted by the new one without assigning its key again (which the kernel
/// refuses, `EEXIST`), keeps writing once the old engine is closed, and is de-assigned by the
/// adopter's unregister. Clear of the plan's pages (0x1000..0x5000); leaves nothing assigned.
fn kernel_handover(cx: &mut Ctx, d: &Device) {
    const OFF: u64 = 0x5800;
    let (w, data) = (4, data_for(9, 4));
    let old = ioeventd_engine_open(1, 0, 0, 0, 0, std::ptr::null(), 0) as u64;
    let new = ioeventd_engine_open(1, 0, 0, 0, 0, std::ptr::null(), 0) as u64;
    let efd = ioeventd_eventfd_create(0);
    // The doorbell's own end (the engine owns `efd` once registered, as a VMM keeps its own).
    let dup = |fd: i32| {
        sys::dup(fd)
            .map(std::os::fd::IntoRawFd::into_raw_fd)
            .unwrap_or(-1)
    };
    let ring = dup(efd);
    let reg = |engine: u64, efd: i32| {
        ioeventd_register_vfio(engine, d.fd, BAR, OFF, w, data, efd, 0, 0, 3)
    };
    let fact = |cx: &mut Ctx, name: &str, expect: &str, rc: i64| {
        cx.report.fact("kernel", name, expect, rc)
    };
    fact(
        cx,
        "hand-over: the old engine's kernel entry",
        "OK",
        reg(old, efd),
    );
    fact(
        cx,
        "hand-over: the old engine leaves it assigned",
        "OK",
        ioeventd_engine_leave_kernel(old),
    );
    // What SCM_RIGHTS gives the successor: duplicates of the eventfd (and of the device).
    let dup = |fd: i32| {
        sys::dup(fd)
            .map(std::os::fd::IntoRawFd::into_raw_fd)
            .unwrap_or(-1)
    };
    let again = dup(efd);
    fact(
        cx,
        "hand-over: the key registered again",
        "EEXIST",
        reg(new, again),
    );
    ioeventd_source_close(again);
    let adopted = ioeventd_adopt_kernel(new, d.fd, BAR, OFF, w, data, dup(ring), 0, 0);
    fact(cx, "hand-over: the new engine adopts it", "OK", adopted);
    ioeventd_engine_close(old);
    // Still served by the kernel, with the old engine gone.
    let cell = MmioCell::new(d.view.clone(), OFF, w).expect("cell");
    let want = truncate(w, data);
    cell.store(!want);
    ioeventd_eventfd_signal(ring, 1);
    let landed = wait_value(&cell, want).map_or(-i64::from(sys::Errno::EIO.0), |_| 0);
    fact(
        cx,
        "hand-over: a write after the old engine closed",
        "OK",
        landed,
    );
    if adopted > 0 {
        ioeventd_unregister(new, adopted as u64, std::ptr::null_mut());
    }
    let probe = ioeventd_eventfd_create(0);
    fact(
        cx,
        "hand-over: key free after the adopter's unregister",
        "OK",
        d.raw(BAR, OFF, w, data, probe),
    );
    d.raw(BAR, OFF, w, data, -1);
    ioeventd_source_close(probe);
    ioeventd_engine_close(new);
    ioeventd_source_close(ring); // `efd` went with the old engine
}

/// Does this kernel take 8-byte ioeventfds? (Refused where the platform lacks 64-bit
/// MMIO, and reported refused on some kernels since 6.14.) Ask it, at a spare offset.
fn kernel_width_probe(cx: &mut Ctx, d: &mut Device) {
    let probe8 = ioeventd_eventfd_create(0);
    let rc8 = ioeventd_kernel_ioeventfd(d.fd, BAR, 0x3f00, 8, 0x77, probe8);
    if rc8 == 0 {
        ioeventd_kernel_ioeventfd(d.fd, BAR, 0x3f00, 8, 0x77, -1);
    }
    ioeventd_source_close(probe8);
    d.kernel8 = rc8 == 0;
    cx.report.note(
        "kernel 8-byte ioeventfd",
        if d.kernel8 { "accepted" } else { "refused" },
    );
    cx.report.fact(
        "kernel",
        "raw: 8-byte ioeventfd (probe)",
        if d.kernel8 { "OK" } else { "EINVAL" },
        i64::from(rc8),
    );
}

/// kernel (kernel-only mode): VFIO_DEVICE_IOEVENTFD at every width.
fn kernel_writes(cx: &mut Ctx, d: &mut Device) {
    let kernel8 = d.kernel8;
    d.writes(cx, "kernel", 0x3000, 3, |w| kernel_plan(kernel8, w));
}

/// The same key again through the engine: the kernel's duplicate rule, in both modes
/// (auto does not fall back on EEXIST: that key is served already); another value at the
/// same address is another ioeventfd; bounds are checked first.
fn kernel_duplicates(cx: &mut Ctx, d: &mut Device) {
    let dup_rc = d.reg(3, 0x3000 + 0x10 * 2, 4, data_for(3, 4), d.efd);
    cx.report.fact(
        "kernel",
        "engine: duplicate key (kernel-only)",
        "EEXIST",
        dup_rc,
    );
    let dup_auto = d.reg(0, 0x3000 + 0x10 * 2, 4, data_for(3, 4), d.efd);
    cx.report
        .fact("kernel", "engine: duplicate key (auto)", "EEXIST", dup_auto);
    let other = d.reg(3, 0x3000 + 0x10 * 2, 4, 0x1234, ioeventd_eventfd_create(0));
    cx.report
        .fact("kernel", "engine: same address, other data", "OK", other);
    if other > 0 {
        d.ids.push(other as u64);
    }
    cx.report.fact(
        "kernel",
        "engine: bounds checked first",
        "ERANGE",
        d.reg(3, d.size, 4, 1, d.efd),
    );
}

/// The raw kernel call: its rules, unfiltered.
fn raw_kernel_rules(cx: &mut Ctx, d: &mut Device) {
    d.scratch = ioeventd_eventfd_create(0);
    let (size, s, efd) = (d.size, d.scratch, d.efd);
    let r = &mut cx.report;
    r.fact("kernel", "raw: assign", "OK", d.raw(BAR, 0x3800, 4, 7, s));
    r.fact(
        "kernel",
        "raw: same key again",
        "EEXIST",
        d.raw(BAR, 0x3800, 4, 7, s),
    );
    r.fact(
        "kernel",
        "raw: same key, other eventfd",
        "EEXIST",
        d.raw(BAR, 0x3800, 4, 7, efd),
    );
    r.fact(
        "kernel",
        "raw: de-assign",
        "OK",
        d.raw(BAR, 0x3800, 4, 7, -1),
    );
    r.fact(
        "kernel",
        "raw: de-assign again",
        "ENODEV",
        d.raw(BAR, 0x3800, 4, 7, -1),
    );
    r.fact(
        "kernel",
        "raw: last 4 bytes of the BAR",
        "OK",
        d.raw(BAR, size - 4, 4, 7, s),
    );
    d.raw(BAR, size - 4, 4, 7, -1);
    r.fact(
        "kernel",
        "raw: 4 bytes at size-2 (bounds)",
        "EINVAL",
        d.raw(BAR, size - 2, 4, 7, s),
    );
    r.fact(
        "kernel",
        "raw: offset = size (bounds)",
        "EINVAL",
        d.raw(BAR, size, 1, 7, s),
    );
    r.fact(
        "kernel",
        "raw: 8 bytes at size-8",
        if d.kernel8 { "OK" } else { "EINVAL" },
        d.raw(BAR, size - 8, 8, 7, s),
    );
    d.raw(BAR, size - 8, 8, 7, -1);
    r.fact(
        "kernel",
        "raw: width 3",
        "EINVAL",
        d.raw(BAR, 0x3800, 3, 7, s),
    );
    r.fact(
        "kernel",
        "raw: width 16",
        "EINVAL",
        d.raw(BAR, 0x3800, 16, 7, s),
    );
    r.fact(
        "kernel",
        "raw: region 7 (config space)",
        "EINVAL",
        d.raw(7, 0, 4, 7, s),
    );
    r.fact(
        "kernel",
        "raw: misaligned 4 bytes at 0x3802 (no alignment rule)",
        "OK",
        d.raw(BAR, 0x3802, 4, 7, s),
    );
    d.raw(BAR, 0x3802, 4, 7, -1);
    r.fact(
        "kernel",
        "raw: fd -2",
        "EINVAL",
        d.raw(BAR, 0x3800, 4, 7, -2),
    );
}

/// The 1000-per-device limit, and the fallback past it: kernel-only is refused there,
/// auto falls back to vfio-mmap; below the limit again, auto is served by the kernel.
fn kernel_limit(cx: &mut Ctx, d: &mut Device) {
    let mut filled = 0u64;
    let limit_rc = loop {
        let rc = d.raw(BAR, 0x3900, 4, 0x10_0000 + filled, d.scratch);
        if rc != 0 || filled > 2000 {
            break rc;
        }
        filled += 1;
    };
    // Only the kernel-served registrations count against the kernel's limit.
    let engine_kernel = d
        .ids
        .iter()
        .filter(|&&id| ioeventd_registration_backend(d.engine, id) == 3)
        .count() as u64;
    cx.report
        .fact("kernel", "raw: limit reached", "ENOSPC", limit_rc);
    cx.report.note(
        "kernel entries at the limit",
        &format!(
            "{} filler + {engine_kernel} engine = {}",
            filled,
            filled + engine_kernel
        ),
    );
    if filled + engine_kernel != 1000 {
        cx.report.fail("the kernel limit is not 1000 per device");
    }
    let full = d.reg(3, 0x4000, 4, 1, d.efd);
    cx.report
        .fact("kernel", "engine kernel-only at the limit", "ENOSPC", full);
    d.writes(cx, "auto at the kernel limit", 0x4000, 4, |_| {
        (0, "vfio-mmap")
    });
    for i in 0..filled {
        d.raw(BAR, 0x3900, 4, 0x10_0000 + i, -1);
    }
    let kernel8 = d.kernel8;
    d.writes(cx, "auto below the limit", 0x4800, 5, |w| {
        (0, kernel_plan(kernel8, w).1)
    });
}

/// Unregistering a kernel-served one removes it from the kernel: the key is free again.
/// Then everything else is unregistered and the eventfds closed.
fn kernel_unregister(cx: &mut Ctx, d: Device) {
    let kernel_id = d.ids[4];
    cx.report.fact(
        "kernel",
        "unregister",
        "OK",
        i64::from(ioeventd_unregister(
            d.engine,
            kernel_id,
            std::ptr::null_mut(),
        )),
    );
    cx.report.fact(
        "kernel",
        "raw: key free after unregister",
        "OK",
        d.raw(BAR, 0x3000, 1, data_for(3, 1), d.scratch),
    );
    d.raw(BAR, 0x3000, 1, data_for(3, 1), -1);
    for &id in d.ids.iter().filter(|&&id| id != kernel_id) {
        ioeventd_unregister(d.engine, id, std::ptr::null_mut());
    }
    ioeventd_source_close(d.scratch);
    ioeventd_source_close(d.efd);
}
