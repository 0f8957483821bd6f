//! Phase 4: the MSI-X table rule on a device that has one (virtio-rng-pci): the kernel's
//! own (table only), and the engine's (table and PBA, on every backend).

use super::device::bind_vfio;
use super::report::Ctx;
use ioeventd_native::*;
use std::ffi::CString;
use std::path::PathBuf;

/// The MSI-X table rule on a device that has one (virtio-rng-pci).
pub(crate) fn msix_phase(cx: &mut Ctx, addr: &str) -> Result<(), String> {
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
    // The engine refuses the table and the PBA itself, from the device's config region
    // (read through the device fd), before any backend or the kernel sees the request.
    let e = cx.engine;
    let reg = |mode: u32, off: u64, w: u32| {
        ioeventd_register_vfio(e, fd, bar, off, w, 1, efd, 0, 0, mode)
    };
    for (name, mode, off, w) in [
        ("engine auto: 4 bytes on the table", 0, table_off, 4),
        ("engine auto: 8 bytes on the table", 0, table_off, 8),
        ("engine kernel-only: on the table", 3, table_off + 4, 4),
        ("engine vfio-mmap: on the table", 2, table_end - 4, 4),
    ] {
        cx.report
            .fact("msix", name, "EADDRINUSE", reg(mode, off, w));
    }
    if pba & 7 == bar && pba_off >= table_end {
        for (name, mode) in [
            ("engine auto: on the PBA", 0),
            ("engine vfio-mmap: on the PBA", 2),
        ] {
            cx.report
                .fact("msix", name, "EADDRNOTAVAIL", reg(mode, pba_off, 4));
        }
    }
    ioeventd_source_close(efd);
    ioeventd_source_close(fd);
    Ok(())
}
