//! The guest's PCI devices: finding one, binding it to vfio-pci, and a holder process
//! that keeps it open as a VMM would.

use super::report::errno_name;
use ioeventd_native::*;
use std::ffi::CString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) fn find_device(vendor: &str, devices: &[&str]) -> Option<String> {
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

pub(crate) fn sysfs_write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("write {value} to {}: {e}", path.display()))
}

/// Binds `addr` to vfio-pci (driver_override + drivers_probe) and waits for its group node.
pub(crate) fn bind_vfio(addr: &str) -> Result<(), String> {
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

/// A process holding a VFIO device open, as a VMM would: this binary run as
/// `ioeventd-vm-driver hold <addr>`, which opens the device, prints `fd <n>` and waits for
/// its stdin to close.
pub(crate) struct Holder {
    child: std::process::Child,
    pub(crate) fd: i32,
}

impl Holder {
    pub(crate) fn spawn(addr: &str) -> Result<Holder, String> {
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

    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

pub(crate) fn hold(addr: &str) {
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
