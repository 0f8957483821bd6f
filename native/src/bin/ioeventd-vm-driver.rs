//! ioeventd-vm-driver: the guest half of the VM tier (`test/vm/`). Runs inside a QEMU
//! guest as a static binary, against a real ivshmem-plain device whose BAR2 is a host file,
//! and drives the native plugin through its C ABI, one backend after another:
//!
//! 1. `user-mmap`: the device has no driver; `resource2` of sysfs is registered.
//! 2. `vfio-mmap`: the device is bound to vfio-pci; a child process (this binary run as
//!    `hold <addr>`, standing in for the VMM) opens it (`ioeventd_vfio_open`) and the
//!    driver takes its descriptor with `ioeventd_vfio_acquire` (pidfd_getfd); the engine
//!    writes through an mmap of the VFIO BAR region.
//! 3. `kernel`: `VFIO_DEVICE_IOEVENTFD`, through the engine (mode kernel-only and auto) and
//!    raw, to show the kernel's own rules (duplicate key, bounds, widths, BAR-only, no
//!    alignment rule, the 1000-per-device limit and the engine's fallback past it).
//! 4. With a virtio-rng-pci device present: the MSI-X table rule, and that auto mode does
//!    not route around it.
//!
//! Every write's location follows a fixed plan the host test knows too (see
//! `test/vm/vm_test.ts`): `offset = base(backend) + 0x10 * i` for widths 1, 2, 4, 8, and
//! `data = 0x8877_6655_4433_2200 + (code << 4) + width`. Each result is one line
//! `IOEVENTD-VM {json}` on stdout (the serial console); the last is `{"kind":"done",...}`.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

use ioeventd_native::bar::Mapping;
use ioeventd_native::mmio::MmioCell;
use ioeventd_native::*;
use std::ffi::CString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WIDTHS: [u32; 4] = [1, 2, 4, 8];
const BAR: u32 = 2;

/// "OK" for a non-negative return value, else the errno's name from the crate's table.
fn errno_name(rc: i64) -> String {
    if rc >= 0 {
        return "OK".to_string();
    }
    let errno = i32::try_from(-rc).map(sys::Errno).ok();
    match errno.and_then(sys::Errno::name) {
        Some(name) => name.to_string(),
        None => format!("errno{}", -rc),
    }
}

struct Report {
    failures: u32,
}

impl Report {
    fn line(&self, json: String) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "IOEVENTD-VM {json}");
        let _ = out.flush();
    }

    /// A rule observed: `got` (a return code) against the expected errno name.
    fn fact(&mut self, backend: &str, name: &str, expect: &str, rc: i64) {
        let got = errno_name(rc);
        let ok = got == expect;
        if !ok {
            self.failures += 1;
        }
        self.line(format!(
            r#"{{"kind":"fact","backend":"{backend}","name":"{name}","expect":"{expect}","got":"{got}","ok":{ok}}}"#
        ));
    }

    fn note(&self, name: &str, value: &str) {
        self.line(format!(
            r#"{{"kind":"note","name":"{name}","value":"{}"}}"#,
            value.replace('"', "'")
        ));
    }

    fn fail(&mut self, what: &str) {
        self.failures += 1;
        self.note("failure", what);
    }
}

/// The backend codes of `ioeventd_registration_backend`.
fn backend_name(code: i32) -> &'static str {
    match code {
        1 => "user-mmap",
        2 => "vfio-mmap",
        3 => "kernel",
        _ => "unknown",
    }
}

fn data_for(code: u64, width: u32) -> u64 {
    0x8877_6655_4433_2200 + (code << 4) + u64::from(width)
}

fn truncate(width: u32, v: u64) -> u64 {
    if width == 8 {
        v
    } else {
        v & ((1u64 << (8 * width)) - 1)
    }
}

fn find_device(vendor: &str, devices: &[&str]) -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir("/sys/bus/pci/devices")
        .ok()?
        .flatten()
        .filter(|e| {
            let read = |f: &str| std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
            read("vendor").trim() == vendor && devices.contains(&read("device").trim())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    found.into_iter().next()
}

fn sysfs_write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("write {value} to {}: {e}", path.display()))
}

/// Binds `addr` to vfio-pci (driver_override + drivers_probe) and waits for its group node.
fn bind_vfio(addr: &str) -> Result<(), String> {
    let dev = PathBuf::from("/sys/bus/pci/devices").join(addr);
    sysfs_write(&dev.join("driver_override"), "vfio-pci")?;
    if let Ok(drv) = std::fs::read_link(dev.join("driver")) {
        if !drv.ends_with("vfio-pci") {
            sysfs_write(&dev.join("driver/unbind"), addr)?;
        }
    }
    let _ = std::fs::write("/sys/bus/pci/drivers_probe", addr);
    let t0 = Instant::now();
    loop {
        let bound = std::fs::read_link(dev.join("driver"))
            .map(|d| d.ends_with("vfio-pci"))
            .unwrap_or(false);
        let group = vfio::iommu_group(addr).ok();
        if bound
            && group
                .as_ref()
                .is_some_and(|g| Path::new("/dev/vfio").join(g).exists())
        {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(5) {
            return Err(format!("{addr}: not bound to vfio-pci (group {group:?})"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_value(cell: &MmioCell, want: u64) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if cell.load() == want {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    None
}

struct Ctx {
    engine: u64,
    report: Report,
}

impl Ctx {
    /// Registers (through `register`), signals, checks the write landed in `view`, and
    /// reports it. Returns the registration id.
    #[allow(clippy::too_many_arguments)]
    fn write_case(
        &mut self,
        label: &str,
        expect_backend: &str,
        view: &Arc<Mapping>,
        offset: u64,
        width: u32,
        data: u64,
        register: impl FnOnce(i32) -> i64,
    ) -> Option<u64> {
        let efd = ioeventd_eventfd_create(0);
        let id = register(efd);
        if id <= 0 {
            self.report.fail(&format!(
                "{label}: register width {width} at {offset:#x}: {}",
                errno_name(id)
            ));
            ioeventd_source_close(efd);
            return None;
        }
        let backend = backend_name(ioeventd_registration_backend(self.engine, id as u64));
        let cell = MmioCell::new(view.clone(), offset, width).expect("cell");
        let want = truncate(width, data);
        cell.store(!want);
        ioeventd_eventfd_signal(efd, 1);
        let landed = wait_value(&cell, want);
        let ok = landed.is_some() && backend == expect_backend;
        if !ok {
            self.report.failures += 1;
        }
        self.report.line(format!(
            r#"{{"kind":"write","case":"{label}","backend":"{backend}","expect_backend":"{expect_backend}","offset":{offset},"width":{width},"data":"{data:#x}","landed":{},"us":{},"ok":{ok}}}"#,
            landed.is_some(),
            landed.map(|d| d.as_micros()).unwrap_or(0)
        ));
        Some(id as u64)
    }
}

fn run(report: Report) -> Report {
    let engine = ioeventd_engine_open(1, 0, 0, 0, 0, std::ptr::null(), 0);
    if engine <= 0 {
        let mut r = report;
        r.fail(&format!("engine_open: {}", errno_name(engine)));
        return r;
    }
    let mut cx = Ctx {
        engine: engine as u64,
        report,
    };
    let Some(addr) = find_device("0x1af4", &["0x1110"]) else {
        cx.report.fail("no ivshmem-plain device (1af4:1110)");
        return cx.report;
    };
    cx.report.note("ivshmem", &addr);
    let dev = PathBuf::from("/sys/bus/pci/devices").join(&addr);
    if let Err(e) = user_mmap_phase(&mut cx, &dev) {
        cx.report.fail(&e);
    }
    match bind_vfio(&addr) {
        Err(e) => cx.report.fail(&e),
        Ok(()) => match Holder::spawn(&addr) {
            // As in production: another process (standing in for the VMM) opened the
            // device; the engine's side takes its descriptor with pidfd_getfd.
            Ok(holder) => {
                cx.report
                    .fact("vfio-mmap", "holder: vfio_open ivshmem", "OK", 0);
                let fd = ioeventd_vfio_acquire(holder.pid(), holder.fd);
                cx.report.fact(
                    "vfio-mmap",
                    "vfio_acquire from the holder (pidfd_getfd)",
                    "OK",
                    i64::from(fd),
                );
                let not_vfio = ioeventd_vfio_acquire(holder.pid(), 0);
                cx.report.fact(
                    "vfio-mmap",
                    "vfio_acquire of its stdin",
                    "EMEDIUMTYPE",
                    i64::from(not_vfio),
                );
                if fd >= 0 {
                    vfio_phases(&mut cx, fd);
                    ioeventd_source_close(fd);
                }
                drop(holder);
            }
            Err(e) => cx.report.fail(&e),
        },
    }
    if let Some(rng) = find_device("0x1af4", &["0x1005", "0x1044"]) {
        cx.report.note("virtio-rng", &rng);
        if let Err(e) = msix_phase(&mut cx, &rng) {
            cx.report.fail(&e);
        }
    }
    cx.report.fact(
        "all",
        "engine_close",
        "OK",
        i64::from(ioeventd_engine_close(cx.engine)),
    );
    cx.report
}

fn user_mmap_phase(cx: &mut Ctx, dev: &Path) -> Result<(), String> {
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

fn vfio_phases(cx: &mut Ctx, fd: i32) {
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
    let size = info[0];
    let view = match Mapping::open_vfio(fd, BAR) {
        Ok(v) => v,
        Err(e) => {
            cx.report.fail(&format!("mmap VFIO BAR2: {e}"));
            return;
        }
    };
    let e = cx.engine;
    let reg = move |mode: u32, off: u64, w: u32, data: u64, efd: i32| {
        ioeventd_register_vfio(e, fd, BAR, off, w, data, efd, 0, 0, mode)
    };

    // vfio-mmap: the engine writes through the VFIO region mapping.
    let mut ids = Vec::new();
    for (i, &w) in WIDTHS.iter().enumerate() {
        let off = 0x2000 + 0x10 * i as u64;
        let data = data_for(2, w);
        ids.extend(
            cx.write_case("vfio-mmap", "vfio-mmap", &view, off, w, data, |efd| {
                reg(2, off, w, data, efd)
            }),
        );
    }
    let efd = ioeventd_eventfd_create(0);
    cx.report.fact(
        "vfio-mmap",
        "bounds: offset = region size",
        "ERANGE",
        reg(2, size, 1, 1, efd),
    );
    cx.report.fact(
        "vfio-mmap",
        "alignment: 8 bytes at 0x2004",
        "EINVAL",
        reg(2, 0x2004, 8, 1, efd),
    );
    cx.report
        .fact("vfio-mmap", "region 6 (ROM) is not a BAR", "EINVAL", {
            ioeventd_register_vfio(e, fd, 6, 0, 4, 1, efd, 0, 0, 2)
        });

    // Does this kernel take 8-byte ioeventfds? (Refused where the platform lacks 64-bit
    // MMIO, and reported refused on some kernels since 6.14.) Ask it, at a spare offset.
    let probe8 = ioeventd_eventfd_create(0);
    let rc8 = ioeventd_kernel_ioeventfd(fd, BAR, 0x3f00, 8, 0x77, probe8);
    if rc8 == 0 {
        ioeventd_kernel_ioeventfd(fd, BAR, 0x3f00, 8, 0x77, -1);
    }
    ioeventd_source_close(probe8);
    let kernel8 = rc8 == 0;
    cx.report.note(
        "kernel 8-byte ioeventfd",
        if kernel8 { "accepted" } else { "refused" },
    );
    cx.report.fact(
        "kernel",
        "raw: 8-byte ioeventfd (probe)",
        if kernel8 { "OK" } else { "EINVAL" },
        i64::from(rc8),
    );
    // Where the kernel refuses a width, the kernel case goes through auto and must fall
    // back to vfio-mmap (the write still lands).
    let kernel_for = |w: u32| -> (u32, &'static str) {
        if w == 8 && !kernel8 {
            (0, "vfio-mmap")
        } else {
            (3, "kernel")
        }
    };

    // kernel (kernel-only mode): VFIO_DEVICE_IOEVENTFD at every width.
    for (i, &w) in WIDTHS.iter().enumerate() {
        let off = 0x3000 + 0x10 * i as u64;
        let data = data_for(3, w);
        let (mode, expect) = kernel_for(w);
        ids.extend(cx.write_case("kernel", expect, &view, off, w, data, |efd| {
            reg(mode, off, w, data, efd)
        }));
    }
    // The same key again through the engine: the kernel's duplicate rule, in both modes
    // (auto does not fall back on EEXIST: that key is served already).
    let dup_rc = reg(3, 0x3000 + 0x10 * 2, 4, data_for(3, 4), efd);
    cx.report.fact(
        "kernel",
        "engine: duplicate key (kernel-only)",
        "EEXIST",
        dup_rc,
    );
    let dup_auto = reg(0, 0x3000 + 0x10 * 2, 4, data_for(3, 4), efd);
    cx.report
        .fact("kernel", "engine: duplicate key (auto)", "EEXIST", dup_auto);
    // Another value at the same address is another ioeventfd.
    let other = reg(3, 0x3000 + 0x10 * 2, 4, 0x1234, ioeventd_eventfd_create(0));
    cx.report
        .fact("kernel", "engine: same address, other data", "OK", other);
    if other > 0 {
        ids.push(other as u64);
    }
    cx.report.fact(
        "kernel",
        "engine: bounds checked first",
        "ERANGE",
        reg(3, size, 4, 1, efd),
    );

    // The raw kernel call: its rules, unfiltered.
    let scratch = ioeventd_eventfd_create(0);
    let raw = |region: u32, off: u64, w: u32, data: u64, efd: i32| {
        i64::from(ioeventd_kernel_ioeventfd(fd, region, off, w, data, efd))
    };
    cx.report.fact(
        "kernel",
        "raw: assign",
        "OK",
        raw(BAR, 0x3800, 4, 7, scratch),
    );
    cx.report.fact(
        "kernel",
        "raw: same key again",
        "EEXIST",
        raw(BAR, 0x3800, 4, 7, scratch),
    );
    cx.report.fact(
        "kernel",
        "raw: same key, other eventfd",
        "EEXIST",
        raw(BAR, 0x3800, 4, 7, efd),
    );
    cx.report
        .fact("kernel", "raw: de-assign", "OK", raw(BAR, 0x3800, 4, 7, -1));
    cx.report.fact(
        "kernel",
        "raw: de-assign again",
        "ENODEV",
        raw(BAR, 0x3800, 4, 7, -1),
    );
    cx.report.fact(
        "kernel",
        "raw: last 4 bytes of the BAR",
        "OK",
        raw(BAR, size - 4, 4, 7, scratch),
    );
    raw(BAR, size - 4, 4, 7, -1);
    cx.report.fact(
        "kernel",
        "raw: 4 bytes at size-2 (bounds)",
        "EINVAL",
        raw(BAR, size - 2, 4, 7, scratch),
    );
    cx.report.fact(
        "kernel",
        "raw: offset = size (bounds)",
        "EINVAL",
        raw(BAR, size, 1, 7, scratch),
    );
    cx.report.fact(
        "kernel",
        "raw: 8 bytes at size-8",
        if kernel8 { "OK" } else { "EINVAL" },
        raw(BAR, size - 8, 8, 7, scratch),
    );
    raw(BAR, size - 8, 8, 7, -1);
    cx.report.fact(
        "kernel",
        "raw: width 3",
        "EINVAL",
        raw(BAR, 0x3800, 3, 7, scratch),
    );
    cx.report.fact(
        "kernel",
        "raw: width 16",
        "EINVAL",
        raw(BAR, 0x3800, 16, 7, scratch),
    );
    cx.report.fact(
        "kernel",
        "raw: region 7 (config space)",
        "EINVAL",
        raw(7, 0, 4, 7, scratch),
    );
    cx.report.fact(
        "kernel",
        "raw: misaligned 4 bytes at 0x3802 (no alignment rule)",
        "OK",
        raw(BAR, 0x3802, 4, 7, scratch),
    );
    raw(BAR, 0x3802, 4, 7, -1);
    cx.report
        .fact("kernel", "raw: fd -2", "EINVAL", raw(BAR, 0x3800, 4, 7, -2));

    // The 1000-per-device limit, and the fallback past it.
    let mut filled = 0u64;
    let limit_rc = loop {
        let rc = raw(BAR, 0x3900, 4, 0x10_0000 + filled, scratch);
        if rc != 0 || filled > 2000 {
            break rc;
        }
        filled += 1;
    };
    // Only the kernel-served registrations count against the kernel's limit.
    let engine_kernel = ids
        .iter()
        .filter(|&&id| ioeventd_registration_backend(e, id) == 3)
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
    let full = reg(3, 0x4000, 4, 1, efd);
    cx.report
        .fact("kernel", "engine kernel-only at the limit", "ENOSPC", full);
    for (i, &w) in WIDTHS.iter().enumerate() {
        let off = 0x4000 + 0x10 * i as u64;
        let data = data_for(4, w);
        ids.extend(cx.write_case(
            "auto at the kernel limit",
            "vfio-mmap",
            &view,
            off,
            w,
            data,
            |efd| reg(0, off, w, data, efd),
        ));
    }
    for i in 0..filled {
        raw(BAR, 0x3900, 4, 0x10_0000 + i, -1);
    }
    for (i, &w) in WIDTHS.iter().enumerate() {
        let off = 0x4800 + 0x10 * i as u64;
        let data = data_for(5, w);
        ids.extend(cx.write_case(
            "auto below the limit",
            kernel_for(w).1,
            &view,
            off,
            w,
            data,
            |efd| reg(0, off, w, data, efd),
        ));
    }

    // Unregistering a kernel-served one removes it from the kernel: the key is free again.
    let kernel_id = ids[4];
    cx.report.fact(
        "kernel",
        "unregister",
        "OK",
        i64::from(ioeventd_unregister(e, kernel_id, std::ptr::null_mut())),
    );
    cx.report.fact(
        "kernel",
        "raw: key free after unregister",
        "OK",
        raw(BAR, 0x3000, 1, data_for(3, 1), scratch),
    );
    raw(BAR, 0x3000, 1, data_for(3, 1), -1);
    for id in ids.into_iter().filter(|&id| id != kernel_id) {
        ioeventd_unregister(e, id, std::ptr::null_mut());
    }
    ioeventd_source_close(scratch);
    ioeventd_source_close(efd);
}

/// The MSI-X table rule on a device that has one (virtio-rng-pci).
fn msix_phase(cx: &mut Ctx, addr: &str) -> Result<(), String> {
    let dev = PathBuf::from("/sys/bus/pci/devices").join(addr);
    let cfg = std::fs::read(dev.join("config")).map_err(|e| format!("config: {e}"))?;
    let rd16 = |at: usize| u16::from_le_bytes([cfg[at], cfg[at + 1]]);
    let rd32 = |at: usize| u32::from_le_bytes(cfg[at..at + 4].try_into().unwrap());
    let mut cap = usize::from(cfg[0x34] & 0xfc);
    let mut msix = None;
    while cap != 0 && cap + 12 <= cfg.len() {
        if cfg[cap] == 0x11 {
            msix = Some(cap);
            break;
        }
        cap = usize::from(cfg[cap + 1] & 0xfc);
    }
    let cap = msix.ok_or("virtio-rng: no MSI-X capability")?;
    let entries = u64::from(rd16(cap + 2) & 0x7ff) + 1;
    let (table, pba) = (rd32(cap + 4), rd32(cap + 8));
    let bar = table & 7;
    let table_off = u64::from(table & !7);
    let pba_off = u64::from(pba & !7);
    cx.report.note(
        "MSI-X",
        &format!(
            "BAR{bar} table {table_off:#x} x{entries}, PBA BAR{} {pba_off:#x}",
            pba & 7
        ),
    );
    bind_vfio(addr)?;
    let c = CString::new(addr).unwrap();
    let fd = ioeventd_vfio_open(c.as_ptr().cast());
    cx.report
        .fact("msix", "vfio_open virtio-rng", "OK", i64::from(fd));
    if fd < 0 {
        return Ok(());
    }
    let efd = ioeventd_eventfd_create(0);
    let raw = |off: u64, w: u32| i64::from(ioeventd_kernel_ioeventfd(fd, bar, off, w, 1, efd));
    let table_end = table_off + 16 * entries;
    cx.report.fact(
        "msix",
        "raw: first table entry",
        "EINVAL",
        raw(table_off, 4),
    );
    cx.report.fact(
        "msix",
        "raw: last table dword",
        "EINVAL",
        raw(table_end - 4, 4),
    );
    cx.report.fact(
        "msix",
        "raw: 8 bytes over the table's last dword",
        "EINVAL",
        raw(table_end - 4, 8),
    );
    if pba & 7 == bar && pba_off >= table_end {
        cx.report
            .fact("msix", "raw: PBA is not protected", "OK", raw(pba_off, 4));
        ioeventd_kernel_ioeventfd(fd, bar, pba_off, 4, 1, -1);
    }
    // The engine: auto does not route around the table rule (at 4 bytes, nor at 8, where
    // the width probe finds the position refused too).
    let e = cx.engine;
    let reg = |mode: u32, off: u64, w: u32| {
        ioeventd_register_vfio(e, fd, bar, off, w, 1, efd, 0, 0, mode)
    };
    cx.report.fact(
        "msix",
        "engine auto: 4 bytes on the table",
        "EINVAL",
        reg(0, table_off, 4),
    );
    cx.report.fact(
        "msix",
        "engine auto: 8 bytes on the table",
        "EINVAL",
        reg(0, table_off, 8),
    );
    cx.report.fact(
        "msix",
        "engine kernel-only: on the table",
        "EINVAL",
        reg(3, table_off + 4, 4),
    );
    ioeventd_source_close(efd);
    ioeventd_source_close(fd);
    Ok(())
}

/// A process holding a VFIO device open, as a VMM would: this binary run as
/// `ioeventd-vm-driver hold <addr>`, which opens the device, prints `fd <n>` and waits for
/// its stdin to close.
struct Holder {
    child: std::process::Child,
    fd: i32,
}

impl Holder {
    fn spawn(addr: &str) -> Result<Holder, String> {
        use std::io::BufRead;
        let mut child = std::process::Command::new("/proc/self/exe")
            .args(["hold", addr])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn holder: {e}"))?;
        let mut line = String::new();
        let out = child.stdout.take().ok_or("holder stdout")?;
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| format!("holder: {e}"))?;
        match line.trim().strip_prefix("fd ").and_then(|n| n.parse().ok()) {
            Some(fd) => Ok(Holder { child, fd }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("holder: {}", line.trim()))
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn hold(addr: &str) {
    let c = CString::new(addr).unwrap();
    let fd = ioeventd_vfio_open(c.as_ptr().cast());
    if fd < 0 {
        println!("err {}", errno_name(i64::from(fd)));
        return;
    }
    println!("fd {fd}");
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "hold" {
        return hold(&args[2]);
    }
    let t0 = Instant::now();
    let probe = ioeventd_vfio_probe();
    let mut report = Report { failures: 0 };
    // The modules are loaded: the host detection the agent's capabilities use must see a
    // VFIO container with a type1 IOMMU (bit 0) and the vfio-pci driver (bit 1).
    report.fact(
        "all",
        "vfio_probe sees the container and vfio-pci",
        "OK",
        if probe == 3 { 0 } else { -22 },
    );
    let report = run(report);
    report.line(format!(
        r#"{{"kind":"done","ok":{},"failures":{},"ms":{}}}"#,
        report.failures == 0,
        report.failures,
        t0.elapsed().as_millis()
    ));
}
