//! The driver's output: one `IOEVENTD-VM {json}` line per observation (facts, writes,
//! notes), errno names from the crate's table, and the one write case every backend runs.

use ioeventd_native::bar::Mapping;
use ioeventd_native::mmio::MmioCell;
use ioeventd_native::*;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The widths every backend is driven at.
pub(crate) const WIDTHS: [u32; 4] = [1, 2, 4, 8];
/// The ivshmem BAR (a host file) every write lands in.
pub(crate) const BAR: u32 = 2;

/// "OK" for a non-negative return value, else the errno's name from the crate's table.
pub(crate) fn errno_name(rc: i64) -> String {
    if rc >= 0 {
        return "OK".to_string();
    }
    let errno = i32::try_from(-rc).map(sys::Errno).ok();
    match errno.and_then(sys::Errno::name) {
        Some(name) => name.to_string(),
        None => format!("errno{}", -rc),
    }
}

pub(crate) struct Report {
    pub(crate) failures: u32,
}

impl Report {
    pub(crate) fn line(&self, json: String) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "IOEVENTD-VM {json}");
        let _ = out.flush();
    }

    /// A rule observed: `got` (a return code) against the expected errno name.
    pub(crate) fn fact(&mut self, backend: &str, name: &str, expect: &str, rc: i64) {
        let got = errno_name(rc);
        let ok = got == expect;
        if !ok {
            self.failures += 1;
        }
        self.line(format!(
            r#"{{"kind":"fact","backend":"{backend}","name":"{name}","expect":"{expect}","got":"{got}","ok":{ok}}}"#
        ));
    }

    pub(crate) fn note(&self, name: &str, value: &str) {
        self.line(format!(
            r#"{{"kind":"note","name":"{name}","value":"{}"}}"#,
            value.replace('"', "'")
        ));
    }

    pub(crate) fn fail(&mut self, what: &str) {
        self.failures += 1;
        self.note("failure", what);
    }
}

/// The backend codes of `ioeventd_registration_backend`.
pub(crate) fn backend_name(code: i32) -> &'static str {
    match code {
        1 => "user-mmap",
        2 => "vfio-mmap",
        3 => "kernel",
        _ => "unknown",
    }
}

pub(crate) fn data_for(code: u64, width: u32) -> u64 {
    0x8877_6655_4433_2200 + (code << 4) + u64::from(width)
}

pub(crate) fn truncate(width: u32, v: u64) -> u64 {
    if width == 8 {
        v
    } else {
        v & ((1u64 << (8 * width)) - 1)
    }
}

pub(crate) fn wait_value(cell: &MmioCell, want: u64) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if cell.load() == want {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    None
}

pub(crate) struct Ctx {
    pub(crate) engine: u64,
    pub(crate) report: Report,
}

impl Ctx {
    /// Registers (through `register`), signals, checks the write landed in `view`, and
    /// reports it. Returns the registration id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_case(
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
