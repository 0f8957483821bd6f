//! The engine's MSI-X rule end to end: a BAR file beside a `config` whose MSI-X capability
//! places the table and PBA in it; the engine reads that file itself.

// The shared helpers (`common`) cast as the other tests do: x86_64 only.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
mod common;

use common::{errno, TempBar};
use ioeventd_native::abi_layout as layout;
use ioeventd_native::engine::{Config, Engine, RegisterError, RegisterRequest};
use ioeventd_native::msix::{ConfigError, MsixStructure};
use ioeventd_native::sys::{self, Errno};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::path::PathBuf;

/// A device directory: `config` (MSI-X at 0x40: 4 entries, table BAR0 0x1000, PBA BAR0
/// 0x2000) and `resource0` (16 KiB). Removed on drop.
struct Device {
    dir: PathBuf,
    bar: PathBuf,
}

fn config(table: u32, pba: u32) -> Vec<u8> {
    let mut c = vec![0u8; 256];
    c[0..4].copy_from_slice(&[0x86, 0x80, 0x21, 0x15]);
    c[0x06] = 0x10; // status: capability list
    c[0x34] = 0x40;
    c[0x40] = 0x11; // MSI-X, next 0
    c[0x42..0x44].copy_from_slice(&3u16.to_le_bytes()); // 4 entries
    c[0x44..0x48].copy_from_slice(&table.to_le_bytes());
    c[0x48..0x4c].copy_from_slice(&pba.to_le_bytes());
    c
}

impl Device {
    fn new(config: &[u8]) -> Device {
        let bar = TempBar::new("dev", 0);
        let dir = bar.path().with_extension("d");
        drop(bar);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config"), config).unwrap();
        let bar = dir.join("resource0");
        std::fs::write(&bar, vec![0u8; 16 << 10]).unwrap();
        Device { dir, bar }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn engine() -> Engine {
    Engine::open(Config {
        workers: 1,
        canary_period_us: 0,
        ..Config::default()
    })
    .unwrap()
}

fn efd() -> OwnedFd {
    sys::eventfd(0, sys::EFD_CLOEXEC | sys::EFD_NONBLOCK).unwrap()
}

fn dup(fd: &OwnedFd) -> i32 {
    sys::dup(fd.as_raw_fd()).unwrap().into_raw_fd()
}

#[test]
fn the_table_and_pba_of_the_devices_config_space_are_refused() {
    let dev = Device::new(&config(0x1000, 0x2000));
    let e = engine();
    let ev = efd();
    let structure = |offset, width| {
        let fd = dup(&ev);
        let r = e.register(&RegisterRequest::file(&dev.bar, offset, width, 1, fd));
        if r.is_err() {
            let _ = sys::close_raw(fd);
        }
        match r {
            Err(RegisterError::Msix(o)) => Some(o.structure),
            Ok(_) => None,
            Err(other) => panic!("{other}"),
        }
    };
    assert_eq!(structure(0x1000, 4), Some(MsixStructure::Table));
    assert_eq!(
        structure(0x1038, 8),
        Some(MsixStructure::Table),
        "entry 3's end"
    );
    assert_eq!(structure(0x2000, 8), Some(MsixStructure::Pba));
    assert_eq!(structure(0x2007, 1), Some(MsixStructure::Pba));
    assert_eq!(e.registration_stats().unwrap().len(), 0);
    let mapped = |e: &Engine| e.info().unwrap()[layout::info::BAR_MAPPINGS];
    assert_eq!(mapped(&e), 0, "a refused request maps nothing");
    for ok in [0xffc, 0x1040, 0x1ff8, 0x2008] {
        assert_eq!(structure(ok, 4), None, "{ok:#x} is a neighbour");
    }
    assert_eq!(e.registration_stats().unwrap().len(), 4);
    assert_eq!(mapped(&e), 1);
    // The errnos of the C ABI.
    let fd = dup(&ev);
    let table = e.register(&RegisterRequest::file(&dev.bar, 0x1010, 4, 1, fd));
    let pba = e.register(&RegisterRequest::file(&dev.bar, 0x2000, 4, 1, fd));
    assert_eq!(errno(table), Err(Errno::EADDRINUSE));
    assert_eq!(errno(pba), Err(Errno::EADDRNOTAVAIL));
    // The batch path: each record on its own.
    let reqs = [0x1000, 0x1100].map(|o| RegisterRequest::file(&dev.bar, o, 4, 2, fd));
    let rs = e.register_batch(&reqs);
    assert!(matches!(rs[0], Err(RegisterError::Msix(_))));
    assert!(rs[1].is_ok());
}

#[test]
fn a_config_space_that_cannot_rule_msix_out_refuses_the_bar() {
    let mut c = config(0x1000, 0x2000);
    c[0x41] = 0x40; // the list loops
    let dev = Device::new(&c);
    let e = engine();
    let fd = dup(&efd());
    let r = e.register(&RegisterRequest::file(&dev.bar, 0x100, 4, 1, fd));
    assert_eq!(r, Err(RegisterError::Config(ConfigError::Malformed)));
    assert_eq!(errno(r), Err(Errno::EIO));
    // Cut to the header (a non-root reader's view): the list points beyond it.
    std::fs::write(dev.dir.join("config"), &c[..0x40]).unwrap();
    let r = e.register(&RegisterRequest::file(&dev.bar, 0x100, 4, 1, fd));
    assert_eq!(r, Err(RegisterError::Config(ConfigError::Truncated)));
    // No config at all: a file standing in for a BAR, not a PCI device's; accepted.
    std::fs::remove_file(dev.dir.join("config")).unwrap();
    assert!(e
        .register(&RegisterRequest::file(&dev.bar, 0x100, 4, 1, fd))
        .is_ok());
}
