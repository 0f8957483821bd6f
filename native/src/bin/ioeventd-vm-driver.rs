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
//!
//! Files: this one (the order of the phases), `vm_driver/report.rs` (the output lines and
//! the write case), `vm_driver/device.rs` (PCI devices, vfio-pci binding, the holder), and
//! one file per phase: `user_mmap.rs`, `vfio.rs` (vfio-mmap and kernel), `msix.rs`.

// Casts here are intended: x86_64 only (usize = u64), and every narrowing or sign change
// is either range-checked before or a two's-complement reinterpretation the C ABI defines.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

mod vm_driver;

use ioeventd_native::*;
use std::path::PathBuf;
use std::time::Instant;
use vm_driver::device::{bind_vfio, find_device, hold, Holder};
use vm_driver::report::{errno_name, Ctx, Report};
use vm_driver::{msix::msix_phase, user_mmap::user_mmap_phase, vfio::vfio_phases};

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
